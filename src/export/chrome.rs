//! Chrome trace-event JSON (the format Perfetto and `chrome://tracing` open):
//! `{"traceEvents": [...], "displayTimeUnit": "ms"}`.
//!
//! - One process per trace (`pid` 1, 2, … in the order given), named after the trace.
//! - One complete event (`ph: "X"`) per span: `ts` and `dur` in microseconds from the earliest
//!   trace start, `cat` the span kind, `args` its attributes plus `status`, `span_id`,
//!   `parent_id`, `trace_id` and `error`. A span still running ends at its trace's last time.
//! - One instant event (`ph: "i"`, thread scope) per span event, on its span's lane.
//! - Lanes (`tid`): viewers draw complete events of one thread as a stack, nested by time, so two
//!   spans that overlap without one containing the other must not share a thread. Each span
//!   takes its parent's lane when it nests there, else the first lane that is free at its start,
//!   else a new one: parallel branches, concurrent tool calls and `foreach` items sit side by
//!   side, and a sequential workflow stays on one lane.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::trace::{Span, SpanId, TraceDoc};

pub fn to_json(docs: &[TraceDoc]) -> Value {
    let origin = docs
        .iter()
        .flat_map(|d| {
            std::iter::once(d.trace.started_at.micros())
                .chain(d.spans.iter().map(|s| s.started_at.micros()))
        })
        .min()
        .unwrap_or(0);
    let mut events = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        let pid = index + 1;
        let t = &doc.trace;
        events.push(json!({
            "name": "process_name", "ph": "M", "pid": pid, "tid": 0,
            "args": { "name": format!("{} ({})", t.name, t.trace_id) },
        }));
        events.push(json!({
            "name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
            "args": { "sort_index": pid },
        }));
        let (lanes, count) = lanes(&doc.spans);
        for lane in 1..=count {
            events.push(json!({
                "name": "thread_name", "ph": "M", "pid": pid, "tid": lane,
                "args": { "name": format!("lane {lane}") },
            }));
            events.push(json!({
                "name": "thread_sort_index", "ph": "M", "pid": pid, "tid": lane,
                "args": { "sort_index": lane },
            }));
        }
        let last = last_time(doc);
        for (span, lane) in doc.spans.iter().zip(&lanes) {
            let start = span.started_at.micros();
            let end = span.ended_at.map_or(last, |e| e.micros()).max(start);
            let mut args: Map<String, Value> = span.attributes.clone();
            args.insert("status".into(), json!(span.status.as_str()));
            args.insert("span_id".into(), json!(span.span_id.to_string()));
            args.insert(
                "parent_id".into(),
                json!(span.parent_id.map(|p| p.to_string())),
            );
            args.insert("trace_id".into(), json!(span.trace_id.to_string()));
            if let Some(error) = &span.error {
                args.insert(
                    "error".into(),
                    json!({"message": error.message, "data": error.data}),
                );
            }
            events.push(json!({
                "name": span.name,
                "cat": span.kind.as_str(),
                "ph": "X",
                "ts": start - origin,
                "dur": end - start,
                "pid": pid,
                "tid": lane,
                "args": args,
            }));
            for event in &span.events {
                let mut args = event.attributes.clone();
                args.insert("span_id".into(), json!(span.span_id.to_string()));
                events.push(json!({
                    "name": event.name,
                    "cat": "event",
                    "ph": "i",
                    "s": "t",
                    "ts": event.time.micros() - origin,
                    "pid": pid,
                    "tid": lane,
                    "args": args,
                }));
            }
        }
    }
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

/// The latest time of a trace: its end, or the last span end or event seen while it runs.
fn last_time(doc: &TraceDoc) -> i64 {
    let mut last = doc.trace.ended_at.unwrap_or(doc.trace.started_at).micros();
    for s in &doc.spans {
        last = last.max(s.ended_at.unwrap_or(s.started_at).micros());
        for e in &s.events {
            last = last.max(e.time.micros());
        }
    }
    last
}

/// The lane (1-based) of each span, and how many lanes there are. Two spans share a lane only
/// when they do not overlap in time or one contains the other and is its ancestor.
pub fn lanes(spans: &[Span]) -> (Vec<usize>, usize) {
    let last = spans
        .iter()
        .map(|s| s.ended_at.unwrap_or(s.started_at).micros())
        .max()
        .unwrap_or(0);
    let interval = |s: &Span| {
        let start = s.started_at.micros();
        (start, s.ended_at.map_or(last, |e| e.micros()).max(start))
    };
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let parent = |i: usize| spans[i].parent_id.and_then(|p| index.get(&p).copied());
    let depth = |i: usize| {
        let mut d = 0;
        let mut p = parent(i);
        while let Some(j) = p {
            d += 1;
            p = parent(j);
            if d > spans.len() {
                break;
            }
        }
        d
    };
    let is_ancestor = |a: usize, mut b: usize| {
        let mut steps = 0;
        while let Some(p) = parent(b) {
            if p == a {
                return true;
            }
            b = p;
            steps += 1;
            if steps > spans.len() {
                break;
            }
        }
        false
    };
    // Parents before children at the same instant.
    let mut order: Vec<(i64, usize, usize)> = (0..spans.len())
        .map(|i| (interval(&spans[i]).0, depth(i), i))
        .collect();
    order.sort_unstable();

    let mut lane_of = vec![0usize; spans.len()];
    // Per lane, the spans open on it: a chain, each containing the next.
    let mut stacks: Vec<Vec<usize>> = Vec::new();
    for (start, _, i) in order {
        let (_, end) = interval(&spans[i]);
        let fits = |stack: &mut Vec<usize>| {
            while let Some(&top) = stack.last() {
                if interval(&spans[top]).1 <= start {
                    stack.pop();
                } else {
                    break;
                }
            }
            match stack.last() {
                None => true,
                Some(&top) => interval(&spans[top]).1 >= end && is_ancestor(top, i),
            }
        };
        let preferred = parent(i).map(|p| lane_of[p]).filter(|&l| l > 0);
        let lane = match preferred {
            Some(l) if fits(&mut stacks[l - 1]) => l,
            _ => match (0..stacks.len()).find(|&l| fits(&mut stacks[l])) {
                Some(l) => l + 1,
                None => {
                    stacks.push(Vec::new());
                    stacks.len()
                }
            },
        };
        stacks[lane - 1].push(i);
        lane_of[i] = lane;
    }
    let count = stacks.len();
    (lane_of, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::fixture::bare_span;
    use crate::trace::{SpanKind, Status, Timestamp, TraceId};

    fn span(parent: Option<&Span>, name: &str, start: i64, end: i64) -> Span {
        bare_span(
            parent.map(|p| p.span_id),
            SpanKind::Custom,
            name,
            start,
            end,
        )
    }

    /// Every pair of spans on one lane is disjoint or nested along the tree.
    fn assert_lanes_valid(spans: &[Span], lanes: &[usize]) {
        let ancestor = |a: &Span, b: &Span| {
            let mut p = b.parent_id;
            while let Some(id) = p {
                if id == a.span_id {
                    return true;
                }
                p = spans
                    .iter()
                    .find(|s| s.span_id == id)
                    .and_then(|s| s.parent_id);
            }
            false
        };
        for (i, a) in spans.iter().enumerate() {
            for (j, b) in spans.iter().enumerate() {
                if i >= j || lanes[i] != lanes[j] {
                    continue;
                }
                let (a0, a1) = (a.started_at.0, a.ended_at.unwrap().0);
                let (b0, b1) = (b.started_at.0, b.ended_at.unwrap().0);
                let disjoint = a1 <= b0 || b1 <= a0;
                let a_holds_b = a0 <= b0 && b1 <= a1 && ancestor(a, b);
                let b_holds_a = b0 <= a0 && a1 <= b1 && ancestor(b, a);
                assert!(
                    disjoint || a_holds_b || b_holds_a,
                    "{} and {} share lane {}",
                    a.name,
                    b.name,
                    lanes[i]
                );
            }
        }
    }

    #[test]
    fn a_sequential_trace_stays_on_one_lane() {
        let root = span(None, "root", 0, 100);
        let a = span(Some(&root), "a", 0, 40);
        let a1 = span(Some(&a), "a1", 10, 20);
        let b = span(Some(&root), "b", 40, 100);
        let spans = vec![root, a, a1, b];
        let (lanes, count) = lanes(&spans);
        assert_eq!(count, 1);
        assert_eq!(lanes, [1, 1, 1, 1]);
    }

    #[test]
    fn parallel_branches_get_their_own_lanes_and_children_follow_them() {
        let root = span(None, "parallel", 0, 100);
        let a = span(Some(&root), "branch a", 1, 90);
        let a1 = span(Some(&a), "a child", 2, 50);
        let b = span(Some(&root), "branch b", 1, 60);
        let b1 = span(Some(&b), "b child", 5, 55);
        let c = span(Some(&root), "branch c", 2, 30);
        // Runs after c ended: it may reuse c's lane.
        let d = span(Some(&root), "branch d", 35, 80);
        let after = span(None, "after", 100, 120);
        let spans = vec![root, a, a1, b, b1, c, d, after];
        let (lanes, count) = lanes(&spans);
        assert_lanes_valid(&spans, &lanes);
        assert_eq!(lanes[0], 1, "the root starts the first lane");
        assert_eq!(lanes[1], 1, "the first branch nests in its parent's lane");
        assert_eq!(lanes[2], lanes[1], "a child stays in its branch's lane");
        assert_ne!(
            lanes[3], lanes[1],
            "overlapping branches never share a lane"
        );
        assert_eq!(lanes[4], lanes[3]);
        assert!(lanes[5] != lanes[1] && lanes[5] != lanes[3]);
        assert_eq!(lanes[6], lanes[5], "a free lane is reused");
        assert_eq!(lanes[7], 1);
        assert_eq!(count, 3);
    }

    #[test]
    fn foreach_items_side_by_side_reuse_lanes() {
        let root = span(None, "foreach", 0, 1000);
        let mut spans = vec![root.clone()];
        // Three at a time, 30 items of 100 µs each.
        for i in 0..30 {
            let start = (i / 3) * 100;
            let item = span(Some(&root), &format!("item {i}"), start, start + 100);
            let inner = span(Some(&item), &format!("agent {i}"), start + 1, start + 99);
            spans.push(item);
            spans.push(inner);
        }
        let (lanes, count) = lanes(&spans);
        assert_lanes_valid(&spans, &lanes);
        assert_eq!(count, 3);
    }

    #[test]
    fn events_are_instants_on_their_span_lane() {
        let mut s = span(None, "s", 10, 20);
        s.events.push(crate::trace::Event {
            name: "e".into(),
            time: Timestamp(15),
            attributes: Map::new(),
        });
        let doc = TraceDoc {
            trace: crate::trace::Trace {
                trace_id: TraceId([1; 16]),
                name: "T".into(),
                workflow: "T".into(),
                group_id: None,
                metadata: Map::new(),
                status: Status::Ok,
                started_at: Timestamp(10),
                ended_at: Some(Timestamp(20)),
                usage: Default::default(),
                cost_usd: None,
                error: None,
                pid: None,
            },
            spans: vec![s],
        };
        let json = to_json(&[doc]);
        let events = json["traceEvents"].as_array().unwrap();
        let x = events.iter().find(|e| e["ph"] == "X").unwrap();
        assert_eq!((x["ts"].clone(), x["dur"].clone()), (json!(0), json!(10)));
        let i = events.iter().find(|e| e["ph"] == "i").unwrap();
        assert_eq!(i["ts"], 5);
        assert_eq!(i["s"], "t");
        assert_eq!(i["tid"], x["tid"]);
    }

    #[test]
    fn mcp_spans_are_complete_events_of_their_kind_with_their_attributes() {
        let doc = crate::trace::fixture::every_kind();
        let json = to_json(&[doc]);
        let events = json["traceEvents"].as_array().unwrap();
        let listing = events
            .iter()
            .find(|e| e["ph"] == "X" && e["name"] == "everything")
            .unwrap();
        assert_eq!(listing["cat"], "mcp_tools");
        assert_eq!(listing["args"]["tools"], json!(["echo", "add"]));
        assert_eq!(listing["args"]["mcp.session_id"], "sess-7f3a");
        let call = events
            .iter()
            .find(|e| e["ph"] == "X" && e["name"] == "echo")
            .unwrap();
        assert_eq!(call["cat"], "function");
        assert_eq!(call["args"]["mcp.server"], "everything");
        assert_eq!(call["args"]["mcp.is_error"], true);
        assert_eq!(call["args"]["status"], "error");
    }
}
