//! Progress on stderr while `run` works: one plain line per finished step. (Live multi-line
//! progress for terminals comes later; nothing here ever writes escape codes.)

use std::io::Write;

use crate::trace::{Sink, Span, SpanKind, Status, Trace};

pub struct Progress;

fn line(span: &Span) -> String {
    let mut s = format!("{:>9}  {} {}", span.status.as_str(), span.kind, span.name);
    if let Some(ms) = span.duration_ms() {
        s.push_str(&format!("  {}", crate::render::human_duration(ms)));
    }
    if let Some(usage) = span.usage() {
        s.push_str(&format!("  {} tokens", usage.total_tokens));
    }
    if let Some(error) = &span.error {
        let first = error.message.lines().next().unwrap_or("");
        s.push_str(&format!("  ({first})"));
    }
    s
}

impl Sink for Progress {
    fn trace_started(&self, trace: &Trace) {
        let _ = writeln!(
            std::io::stderr(),
            "trace {}  {}",
            trace.trace_id,
            trace.name
        );
    }

    fn span_started(&self, _span: &Span) {}

    fn span_ended(&self, span: &Span) {
        if span.kind != SpanKind::Generation {
            let _ = writeln!(std::io::stderr(), "{}", line(span));
        }
    }

    fn trace_ended(&self, trace: &Trace) {
        let status = match trace.status {
            Status::Ok => "done",
            other => other.as_str(),
        };
        let _ = writeln!(
            std::io::stderr(),
            "trace {}  {status}  {}",
            trace.trace_id,
            trace
                .duration_ms()
                .map(crate::render::human_duration)
                .unwrap_or_default()
        );
    }
}
