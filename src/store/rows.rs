//! What every backend hands back the same way, whatever it keeps underneath: the summary of an
//! ingest, the shape of a list row, and the tree order of a loaded trace. A second backend
//! (see [`super`]) returns these too, so that `list`, `show` and `serve` read the same from
//! either.

use std::collections::{HashMap, HashSet};

use crate::trace::bound::{bound_map, bound_value, truncate_str};
use crate::trace::{Span, SpanId, Trace, TraceId};

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
