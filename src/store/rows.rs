//! What every backend hands back the same way, whatever it keeps underneath: the summary of an
//! ingest, the shape of a list row, and the tree order of a loaded trace. A second backend
//! (see [`super`]) returns these too, so that `list`, `show` and `serve` read the same from
//! either.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::{Map, Value};

use super::StoreError;
use crate::trace::bound::{bound_map, bound_value, truncate_str};
use crate::trace::{
    ErrorInfo, Event, Span, SpanId, SpanKind, Status, Timestamp, Trace, TraceId, Usage,
};

/// What one ingest request changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub traces: Vec<TraceId>,
    pub spans: usize,
}

/// The longest string a list row carries (names, group id, error message, metadata and error
/// data strings), in bytes, and the most entries of its metadata or error data objects and
/// arrays: a list is re-read on every change by the UI, and `show` has the whole trace.
pub const LIST_TEXT: usize = 1024;
pub const LIST_ITEMS: usize = 64;

/// A trace as a list row: every long field cut to [`LIST_TEXT`] / [`LIST_ITEMS`] with a marker.
pub(crate) fn list_row(mut t: Trace) -> Trace {
    truncate_str(&mut t.name, LIST_TEXT);
    truncate_str(&mut t.workflow, LIST_TEXT);
    if let Some(group) = &mut t.group_id {
        truncate_str(group, LIST_TEXT);
    }
    bound_map(&mut t.metadata, LIST_TEXT, LIST_ITEMS);
    if let Some(error) = &mut t.error {
        truncate_str(&mut error.message, LIST_TEXT);
        bound_value(&mut error.data, LIST_TEXT, LIST_ITEMS);
    }
    t
}

/// Parents before children, siblings in the order given; orphans (and anything unreachable,
/// such as a cycle in a damaged store) after, as roots.
pub(crate) fn tree_order(spans: Vec<Span>) -> Vec<Span> {
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    let mut orphans = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_id {
            None => roots.push(i),
            Some(p) if ids.contains(&p) && p != span.span_id => {
                children.entry(p).or_default().push(i)
            }
            Some(_) => orphans.push(i),
        }
    }
    let mut order = Vec::with_capacity(spans.len());
    let mut seen = vec![false; spans.len()];
    let starts = roots
        .into_iter()
        .chain(orphans)
        .chain(0..spans.len())
        .collect::<Vec<_>>();
    for start in starts {
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            order.push(i);
            if let Some(kids) = children.get(&spans[i].span_id) {
                stack.extend(kids.iter().rev().copied());
            }
        }
    }
    let mut slots: Vec<Option<Span>> = spans.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// A trace row as a backend returns it, before its text is checked.
pub(crate) struct TraceRow {
    pub(crate) trace_id: String,
    pub(crate) name: String,
    pub(crate) workflow: String,
    pub(crate) group_id: Option<String>,
    pub(crate) metadata: Option<String>,
    pub(crate) status: String,
    pub(crate) started_at: i64,
    pub(crate) ended_at: Option<i64>,
    pub(crate) tokens: [i64; 3],
    pub(crate) error: Option<String>,
    pub(crate) pid: Option<i64>,
    pub(crate) cost_usd: Option<f64>,
}

impl TraceRow {
    pub(crate) fn into_trace(self, path: &Path) -> Result<Trace, StoreError> {
        let [input, output, total] = self.tokens.map(|n| u64::try_from(n).unwrap_or(0));
        Ok(Trace {
            trace_id: parse_trace_id(path, &self.trace_id)?,
            name: self.name,
            workflow: self.workflow,
            group_id: self.group_id,
            metadata: json_map(self.metadata.as_deref()),
            status: Status::parse(&self.status).ok_or_else(|| StoreError::Malformed {
                path: path.to_path_buf(),
                what: "trace",
                detail: format!("unknown status {:?}", self.status),
            })?,
            started_at: Timestamp(self.started_at),
            ended_at: self.ended_at.map(Timestamp),
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: total,
            },
            cost_usd: self.cost_usd,
            error: json_error(self.error.as_deref()),
            pid: self.pid.and_then(|p| u32::try_from(p).ok()),
        })
    }
}

pub(crate) fn parse_trace_id(path: &Path, text: &str) -> Result<TraceId, StoreError> {
    TraceId::parse(text).ok_or_else(|| StoreError::Malformed {
        path: path.to_path_buf(),
        what: "trace",
        detail: format!("bad trace id {text:?}"),
    })
}

/// A JSON object column; anything unreadable becomes an empty object rather than hiding the
/// whole trace.
pub(crate) fn json_map(text: Option<&str>) -> Map<String, Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// An error column: `{"message", "data"}`, or for anything else the raw text as the message.
pub(crate) fn json_error(text: Option<&str>) -> Option<ErrorInfo> {
    let text = text?;
    Some(serde_json::from_str(text).unwrap_or_else(|_| ErrorInfo::new(text)))
}

/// A span row as a backend returns it, before its text is checked (its events come apart).
pub(crate) struct SpanRow {
    pub(crate) span_id: String,
    pub(crate) parent_id: Option<String>,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) status: String,
    pub(crate) started_at: i64,
    pub(crate) ended_at: Option<i64>,
    pub(crate) attributes: Option<String>,
    pub(crate) error: Option<String>,
}

impl SpanRow {
    pub(crate) fn into_span(self, trace_id: TraceId, path: &Path) -> Result<Span, StoreError> {
        let malformed = |detail: String| StoreError::Malformed {
            path: path.to_path_buf(),
            what: "span",
            detail,
        };
        Ok(Span {
            span_id: SpanId::parse(&self.span_id)
                .ok_or_else(|| malformed(format!("bad span id {:?}", self.span_id)))?,
            trace_id,
            // An unreadable parent id makes the span an orphan, not an error.
            parent_id: self.parent_id.as_deref().and_then(SpanId::parse),
            kind: SpanKind::parse(&self.kind)
                .ok_or_else(|| malformed(format!("unknown span kind {:?}", self.kind)))?,
            name: self.name,
            status: Status::parse(&self.status)
                .ok_or_else(|| malformed(format!("unknown status {:?}", self.status)))?,
            started_at: Timestamp(self.started_at),
            ended_at: self.ended_at.map(Timestamp),
            attributes: json_map(self.attributes.as_deref()),
            events: Vec::new(),
            error: json_error(self.error.as_deref()),
        })
    }
}

/// Events (span id, name, time, attributes) onto their spans, in the order given; events of
/// unknown spans are dropped.
pub(crate) fn attach_events(
    spans: &mut [Span],
    rows: impl IntoIterator<Item = (String, String, i64, Option<String>)>,
) {
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    for (span_id, name, time, attrs) in rows {
        if let Some(&i) = SpanId::parse(&span_id).and_then(|s| index.get(&s))
            && let Some(span) = spans.get_mut(i)
        {
            span.events.push(Event {
                name,
                time: Timestamp(time),
                attributes: json_map(attrs.as_deref()),
            });
        }
    }
}

/// The last record of a run: the latest time any of its spans started or ended or any event
/// happened, and never before the trace started. All a dead run is known to have lived.
pub(crate) fn last_record(trace: &Trace, spans: &[Span]) -> Timestamp {
    spans
        .iter()
        .flat_map(|s| {
            [s.started_at]
                .into_iter()
                .chain(s.ended_at)
                .chain(s.events.iter().map(|e| e.time))
        })
        .max()
        .unwrap_or(trace.started_at)
        .max(trace.started_at)
}

/// Closes a dead run's trace and spans in memory, as every backend's reconcile does before it
/// writes the same: the trace and its running spans become `error` ("did not finish"), ending
/// at the run's [`last_record`], so that a span that hung shows the time known to have elapsed
/// since it started. Returns that end. `spans` must carry their events.
pub(crate) fn close_dead_run(trace: &mut Trace, spans: &mut [Span]) -> Timestamp {
    let pid = trace.pid.unwrap_or_default();
    let ended = last_record(trace, spans);
    let mut usage = Usage::default();
    for span in spans.iter() {
        if span.kind == SpanKind::Generation
            && let Some(u) = span.usage()
        {
            usage.add(u);
        }
    }
    trace.status = Status::Error;
    trace.ended_at = Some(ended);
    trace.usage = usage;
    trace.error = Some(ErrorInfo::new(format!(
        "did not finish: the run (pid {pid}) ended without closing its trace"
    )));
    for span in spans.iter_mut().filter(|s| s.status == Status::Running) {
        span.status = Status::Error;
        span.ended_at = Some(span.ended_at.unwrap_or(ended).max(span.started_at));
        span.error = Some(dead_span_error());
    }
    ended
}

/// The error of a span whose run died before it ended.
pub(crate) fn dead_span_error() -> ErrorInfo {
    ErrorInfo::did_not_finish()
}

/// The status and error of an ingested trace, derived from its spans: `running` while a span is
/// open, `error` when one failed (the first failed span, outermost first, explains it: its
/// name and message), `cancelled` when one was cancelled, `ok` otherwise. The error is the
/// JSON text the `error` column keeps.
pub(crate) fn derived_status(
    open: i64,
    cancelled: i64,
    failed: Option<(String, Option<String>)>,
) -> (&'static str, Option<String>) {
    let status = if open > 0 {
        "running"
    } else if failed.is_some() {
        "error"
    } else if cancelled > 0 {
        "cancelled"
    } else {
        "ok"
    };
    let error = failed.map(|(name, message)| {
        let message = match message {
            Some(m) => format!("span `{name}` failed: {m}"),
            None => format!("span `{name}` failed"),
        };
        serde_json::json!({"message": message, "data": {}}).to_string()
    });
    (status, error)
}

/// What a store holds of one trace, as `store copy` compares a source with its destination:
/// its status and how many spans, events and scores (evaluation events) it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceFingerprint {
    pub status: crate::trace::Status,
    pub spans: u64,
    pub events: u64,
    pub scores: u64,
}

/// One message of a conversation (`session:`) as it is stored, for `store copy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub session: String,
    pub seq: i64,
    /// The trace that said it, as stored (its text form).
    pub trace_id: String,
    /// The message, as stored (JSON text).
    pub message: String,
    pub created_at: crate::trace::Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceId;

    fn span(id: u8, started: i64, ended: Option<i64>) -> Span {
        Span {
            span_id: SpanId([id; 8]),
            trace_id: TraceId([1; 16]),
            parent_id: None,
            kind: SpanKind::Command,
            name: format!("s{id}"),
            status: if ended.is_some() {
                Status::Ok
            } else {
                Status::Running
            },
            started_at: Timestamp(started),
            ended_at: ended.map(Timestamp),
            attributes: Map::new(),
            events: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn a_dead_run_closes_its_open_spans_at_its_last_record_events_included() {
        let mut trace = Trace::sample("dead");
        trace.status = Status::Running;
        trace.ended_at = None;
        // The hanging step started at 20; the last thing recorded is an event at 900.
        let mut earlier = span(1, 10, Some(500));
        earlier.events.push(Event {
            name: "late".into(),
            time: Timestamp(900),
            attributes: Map::new(),
        });
        let mut spans = vec![earlier, span(2, 20, None)];
        assert_eq!(last_record(&trace, &spans), Timestamp(900));
        let ended = close_dead_run(&mut trace, &mut spans);
        assert_eq!(ended, Timestamp(900));
        assert_eq!(trace.ended_at, Some(Timestamp(900)));
        let hung = &spans[1];
        assert!(hung.did_not_finish(), "{hung:?}");
        assert_eq!(hung.duration_ms(), Some(0.88));
        assert!(!spans[0].did_not_finish());
    }
}
