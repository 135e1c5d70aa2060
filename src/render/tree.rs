//! The trace as a tree: what `show` prints and what `run` prints when it is done.
//!
//! ```text
//! Customer Support - Initial Inquiry  ok  812.4ms  460 tokens
//!   trace_0192abcd000000000000000000000042
//!   workflow Customer Support · group conv_12345 · customer_id=cust_789 priority=high
//! ├─ custom  Order Validation  ok  12.3ms
//! │  • Validation started  order_id=ORD-1
//! │  └─ command  Inventory Check  ok  5.1ms  exit 0
//! └─ command  notify  error  3.0ms  exit 1
//!    ✗ command exited with status 1: connection refused
//! ```
//!
//! The name leads the header and the id has a line of its own: a 38-character id first would
//! leave a typical name truncated at 80 columns, and on its own line the id is easy to copy.
//! Every line is fitted to the width by characters: names shrink first, then the least
//! important fields at the end of the line go.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::theme::{Style, Theme};
use super::{human_duration, truncate, width_of};
use crate::trace::{Span, SpanId, SpanKind, Status, TraceDoc};

/// The shortest a name is cut to before fields at the end of its line are dropped instead.
const NAME_MIN: usize = 12;
/// The longest an event attribute or metadata value is shown.
const VALUE_MAX: usize = 40;

/// Renders `doc` as a tree no wider than `width` characters, coloured when `theme.color`.
pub fn tree(doc: &TraceDoc, theme: &Theme, width: usize) -> String {
    let mut lines: Vec<Line> = header(doc, width);
    let spans = &doc.spans;
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_id {
            Some(p) if ids.contains(&p) && p != span.span_id => {
                children.entry(p).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    // Depth-first with an explicit stack: a store could hold a very deep (or damaged) tree.
    let mut seen = vec![false; spans.len()];
    let mut stack: Vec<(usize, String, bool)> = Vec::new();
    let push_siblings = |stack: &mut Vec<(usize, String, bool)>, kids: &[usize], prefix: &str| {
        for (n, &i) in kids.iter().enumerate().rev() {
            stack.push((i, prefix.to_string(), n + 1 == kids.len()));
        }
    };
    push_siblings(&mut stack, &roots, "");
    while let Some((i, prefix, last)) = stack.pop() {
        let (Some(span), Some(seen)) = (spans.get(i), seen.get_mut(i)) else {
            continue;
        };
        if std::mem::replace(seen, true) {
            continue;
        }
        let connector = if last { "└─ " } else { "├─ " };
        let inner = format!("{prefix}{}", if last { "   " } else { "│  " });
        lines.push(span_line(span, &format!("{prefix}{connector}")));
        for event in &span.events {
            lines.push(
                Line::default()
                    .text(&inner, Style::Muted)
                    .text("• ", Style::Muted)
                    .flex(&clean(&event.name), Style::Plain, NAME_MIN)
                    .field_flex(&attributes_text(&event.attributes), Style::Muted),
            );
        }
        if let Some(error) = &span.error
            && span.status != Status::Ok
        {
            lines.push(error_line(&inner, &error.message));
        }
        if let Some(kids) = children.get(&span.span_id) {
            push_siblings(&mut stack, kids, &inner);
        }
    }
    let mut out = String::new();
    for line in lines {
        out.push_str(&line.render(theme, width));
        out.push('\n');
    }
    out
}

fn header(doc: &TraceDoc, width: usize) -> Vec<Line> {
    let t = &doc.trace;
    let mut first = Line::default()
        .flex(&clean(&t.name), Style::Bold, NAME_MIN)
        .field(t.status.as_str(), Style::Status(t.status));
    if let Some(ms) = t.duration_ms() {
        first = first.field(&human_duration(ms), Style::Plain);
    }
    if !t.usage.is_zero() {
        first = first.field(&format!("{} tokens", t.usage.total_tokens), Style::Plain);
    }
    let mut lines = vec![
        first,
        Line::default()
            .text("  ", Style::Plain)
            .text(&t.trace_id.to_string(), Style::Plain),
    ];
    let mut about = Vec::new();
    if t.workflow != t.name {
        about.push(format!("workflow {}", clean(&t.workflow)));
    }
    if let Some(group) = &t.group_id {
        about.push(format!("group {}", clean(group)));
    }
    if !t.metadata.is_empty() {
        about.push(attributes_text(&t.metadata));
    }
    // Packed onto as few lines as the width allows; a piece too long for a line is cut.
    let mut packed: Vec<String> = Vec::new();
    for piece in about {
        match packed.last_mut() {
            Some(last) if 2 + width_of(last) + 3 + width_of(&piece) <= width => {
                last.push_str(" · ");
                last.push_str(&piece);
            }
            _ => packed.push(piece),
        }
    }
    for text in packed {
        lines.push(
            Line::default()
                .text("  ", Style::Plain)
                .flex(&text, Style::Muted, 1),
        );
    }
    // A trace's own error usually repeats the failed span's; show it when it says something
    // the spans cannot (a run that died, a failure outside any span).
    if let Some(error) = &t.error {
        let said_by_a_span = doc.spans.iter().any(|s| s.error.is_some());
        if error.message.starts_with("did not finish") || !said_by_a_span {
            lines.push(error_line("  ", &error.message));
        }
    }
    lines
}

fn span_line(span: &Span, prefix: &str) -> Line {
    let a = &span.attributes;
    let mut line = Line::default()
        .text(prefix, Style::Muted)
        .text(span.kind.as_str(), Style::Muted)
        .text("  ", Style::Plain)
        .flex(&clean(&span.name), Style::Plain, NAME_MIN)
        .field(span.status.as_str(), Style::Status(span.status));
    if let Some(ms) = span.duration_ms() {
        line = line.field(&human_duration(ms), Style::Plain);
    }
    if span.kind == SpanKind::Command
        && let Some(code) = a.get("exit_code").and_then(Value::as_i64)
    {
        line = line.field(&format!("exit {code}"), Style::Plain);
    }
    if span.kind == SpanKind::Generation
        && let Some(model) = a.get("model").and_then(Value::as_str)
        && model != span.name
    {
        line = line.field(&clean(model), Style::Muted);
    }
    if let Some(usage) = span.usage() {
        line = line.field(
            &format!("{}→{} tokens", usage.input_tokens, usage.output_tokens),
            Style::Plain,
        );
    }
    if a.get("offline") == Some(&Value::Bool(true)) {
        line = line.field("offline", Style::Muted);
    }
    if span.status == Status::Skipped
        && let Some(reason) = a.get("skip_reason").and_then(Value::as_str)
    {
        line = line.field_flex(&clean(reason), Style::Muted);
    }
    line
}

fn error_line(prefix: &str, message: &str) -> Line {
    let first = message.lines().next().unwrap_or_default();
    Line::default()
        .text(prefix, Style::Muted)
        .text("✗ ", Style::Error)
        .flex(&clean(first), Style::Error, 1)
}

/// `k=v k=v`: values as compact JSON, strings without quotes, long values cut.
fn attributes_text(attributes: &Map<String, Value>) -> String {
    attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}={}", clean(k), truncate(&clean(&v), VALUE_MAX))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text from the store may hold newlines or escape sequences; neither may reach the terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One piece of a line.
struct Seg {
    text: String,
    style: Style,
    /// How far the piece may shrink (with `…`) before pieces at the end go instead; `None`
    /// for pieces that never shrink.
    min: Option<usize>,
}

/// A line as pieces, so that it can be fitted to the width before colour is added.
#[derive(Default)]
struct Line {
    segs: Vec<Seg>,
}

impl Line {
    fn push(mut self, text: &str, style: Style, min: Option<usize>) -> Line {
        if !text.is_empty() {
            self.segs.push(Seg {
                text: text.to_string(),
                style,
                min,
            });
        }
        self
    }

    fn text(self, text: &str, style: Style) -> Line {
        self.push(text, style, None)
    }

    fn flex(self, text: &str, style: Style, min: usize) -> Line {
        self.push(text, style, Some(min))
    }

    /// A field after two spaces.
    fn field(self, text: &str, style: Style) -> Line {
        if text.is_empty() {
            return self;
        }
        self.text("  ", Style::Plain).text(text, style)
    }

    /// A field after two spaces that may be cut down to `…`.
    fn field_flex(self, text: &str, style: Style) -> Line {
        if text.is_empty() {
            return self;
        }
        self.text("  ", Style::Plain).flex(text, style, 1)
    }

    fn width(&self) -> usize {
        self.segs.iter().map(|s| width_of(&s.text)).sum()
    }

    /// Shrinks the line to `width` characters: flexible pieces first (down to their minimum),
    /// then pieces from the end (fixed fields whole, text cut).
    fn fit(&mut self, width: usize) {
        let mut over = self.width().saturating_sub(width);
        for seg in self.segs.iter_mut().rev() {
            if over == 0 {
                break;
            }
            if let Some(min) = seg.min {
                let len = width_of(&seg.text);
                let target = len.saturating_sub(over).max(min.min(len));
                if target < len {
                    seg.text = truncate(&seg.text, target);
                    over -= len - target;
                }
            }
        }
        while over > 0 {
            let count = self.segs.len();
            let Some(seg) = self.segs.last_mut() else {
                break;
            };
            let len = width_of(&seg.text);
            // A fixed field is dropped whole ("of…" says nothing); text is cut.
            let whole = seg.min.is_none() && count > 1;
            if len <= over || whole {
                over = over.saturating_sub(len);
                self.segs.pop();
            } else {
                seg.text = truncate(&seg.text, len - over);
                over = 0;
            }
        }
        while self.segs.last().is_some_and(|s| s.text.trim().is_empty()) {
            self.segs.pop();
        }
    }

    fn render(mut self, theme: &Theme, width: usize) -> String {
        self.fit(width);
        self.segs
            .iter()
            .map(|s| theme.paint(&s.text, s.style))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::json::tests::sample_doc;
    use crate::trace::{ErrorInfo, Timestamp};

    #[test]
    fn a_small_trace_reads_as_a_tree() {
        let out = tree(&sample_doc(), &Theme::plain(), 80);
        assert_eq!(
            out,
            "\
Customer Support - Initial Inquiry  ok  812.4ms  460 tokens
  trace_0192abcd000000000000000000000042
  workflow Customer Support · group conv_12345
  customer_id=cust_789 priority=high
├─ custom  Order Validation  ok  12.3ms
│  • Validation started  order_id=ORD-1
│  ├─ command  Inventory Check  ok  5.1ms  exit 0
│  └─ agent  researcher  ok  200.1ms  120→340 tokens
│     └─ generation  gpt-4o-mini  ok  199.8ms  120→340 tokens  offline
└─ command  notify  error  3.0ms  exit 1
   ✗ command exited with status 1: connection refused
"
        );
    }

    #[test]
    fn no_line_exceeds_the_width() {
        let mut doc = sample_doc();
        let long = "A very long name that goes on and on ".repeat(5);
        doc.trace.name = long.clone();
        doc.trace
            .metadata
            .insert("note".into(), Value::String(long.clone()));
        for span in &mut doc.spans {
            span.name = long.clone();
        }
        doc.spans[0].events[0]
            .attributes
            .insert("big".into(), serde_json::json!({"k": long}));
        doc.spans[4].error = Some(ErrorInfo::new(long.clone()));
        for width in [80, 60, 40, 20] {
            for color in [false, true] {
                let out = tree(&doc, &Theme { color }, width);
                let plain = tree(&doc, &Theme::plain(), width);
                assert_eq!(out.lines().count(), plain.lines().count());
                for line in plain.lines() {
                    assert!(width_of(line) <= width, "{width}: {line:?}");
                }
                assert!(plain.contains("…"));
            }
        }
        let out = tree(&doc, &Theme::plain(), 80);
        assert!(out.contains(
            "\n├─ custom  A very long name that goes on and on A very long name th…  ok  12.3ms\n"
        ));
        assert!(out.contains(
            "\n│     └─ generation  A very long…  ok  199.8ms  gpt-4o-mini  120→340 tokens\n"
        ));
    }

    #[test]
    fn a_dead_run_says_it_did_not_finish_and_colour_is_optional() {
        let mut doc = sample_doc();
        doc.trace.status = Status::Error;
        doc.trace.error = Some(ErrorInfo::new(
            "did not finish: the run (pid 42) ended without closing its trace",
        ));
        doc.spans[1].status = Status::Skipped;
        doc.spans[1]
            .attributes
            .insert("skip_reason".into(), "an earlier step failed".into());
        doc.spans[2].ended_at = None;
        doc.spans[2].status = Status::Running;
        doc.spans[2].started_at = Timestamp(0);
        let plain = tree(&doc, &Theme::plain(), 80);
        assert!(
            plain.contains(
                "\n  ✗ did not finish: the run (pid 42) ended without closing its trace\n"
            )
        );
        assert!(plain.contains(
            "│  ├─ command  Inventory Check  skipped  5.1ms  exit 0  an earlier step failed\n"
        ));
        assert!(plain.contains("│  └─ agent  researcher  running  120→340 tokens\n"));
        assert!(!plain.contains('\u{1b}'));
        let coloured = tree(&doc, &Theme { color: true }, 80);
        assert!(coloured.contains('\u{1b}'));
    }
}
