//! `agentrace stats`: where the time, the tokens and the money of many runs went.
//!
//! The traces are selected with the same filter as `list`, loaded with their spans, and the
//! figures are computed here in Rust rather than in SQL, so that the percentiles are exact:
//! **nearest-rank** over the selected durations (sorted ascending, the p-th percentile is the
//! value at rank ⌈p/100 · n⌉, counting from 1), always a duration that really occurred. A span's
//! tokens and cost are those of the model calls in its subtree (itself included), so a `custom`
//! span shows what its phase spent and an agent span what its calls spent.

use std::collections::{BTreeMap, HashMap};

use super::{ListFilter, Store, StoreError};
use crate::trace::{Span, SpanId, SpanKind, Status, TraceDoc};

/// What the rows of `stats` are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsBy {
    /// Every span, by its name.
    Name,
    /// Agent spans, by agent.
    Agent,
    /// Model calls (generation spans), by their `model` attribute.
    Model,
    /// Whole traces, by workflow: the unit is the trace, not the span.
    Workflow,
    /// Every span, by its kind.
    Kind,
}

impl StatsBy {
    /// The name of the key column (and of the key in the JSON objects).
    pub fn as_str(self) -> &'static str {
        match self {
            StatsBy::Name => "name",
            StatsBy::Agent => "agent",
            StatsBy::Model => "model",
            StatsBy::Workflow => "workflow",
            StatsBy::Kind => "kind",
        }
    }
}

/// One row of `stats`: the figures of every span (or trace) that shares a key.
#[derive(Clone, Debug, PartialEq)]
pub struct StatRow {
    pub key: String,
    pub count: usize,
    /// How many ended with status `error`.
    pub errors: usize,
    /// Nearest-rank percentiles and the maximum of the durations, in ms; `None` when nothing in
    /// the row has ended.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Total tokens.
    pub tokens: u64,
    /// Summed `cost_usd`; `None` when no model call in the row had a known price.
    pub cost_usd: Option<f64>,
}

impl StatRow {
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }
}

impl Store {
    /// The traces `filter` selects (as `list` would, newest first) with their spans. A trace
    /// removed between the listing and its loading is left out.
    pub fn load_many(&self, filter: &ListFilter) -> Result<Vec<TraceDoc>, StoreError> {
        let mut docs = Vec::new();
        for trace in self.list(filter)? {
            match self.load(trace.trace_id) {
                Ok(doc) => docs.push(doc),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(docs)
    }
}

/// The value at nearest rank ⌈p/100 · n⌉ of `sorted` (ascending); `None` when it is empty.
pub fn nearest_rank(sorted: &[f64], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.min(100) * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The tokens and cost of the model calls in one span's subtree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpanFigures {
    pub tokens: u64,
    pub cost_usd: Option<f64>,
}

/// [`SpanFigures`] for every span of `spans`, in the same order: each generation span's usage
/// and `cost_usd` added to it and to each of its ancestors.
pub fn subtree_figures(spans: &[Span]) -> Vec<SpanFigures> {
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut figures = vec![SpanFigures::default(); spans.len()];
    for (i, span) in spans.iter().enumerate() {
        if span.kind != SpanKind::Generation {
            continue;
        }
        let tokens = span.usage().map_or(0, |u| u.total_tokens);
        let cost = span.attributes.get("cost_usd").and_then(|v| v.as_f64());
        let mut at = Some(i);
        // A damaged store could hold a cycle; no chain is longer than the number of spans.
        for _ in 0..spans.len() {
            let Some(j) = at else { break };
            let f = &mut figures[j];
            f.tokens += tokens;
            if let Some(c) = cost {
                f.cost_usd = Some(f.cost_usd.unwrap_or(0.0) + c);
            }
            at = spans[j].parent_id.and_then(|p| index.get(&p).copied());
        }
    }
    figures
}

/// Gathers the figures of one row before the percentiles are taken.
#[derive(Default)]
struct Acc {
    count: usize,
    errors: usize,
    durations: Vec<f64>,
    tokens: u64,
    cost_usd: Option<f64>,
}

impl Acc {
    fn add(&mut self, status: Status, duration: Option<f64>, tokens: u64, cost: Option<f64>) {
        self.count += 1;
        if status == Status::Error {
            self.errors += 1;
        }
        if let Some(d) = duration.filter(|d| d.is_finite()) {
            self.durations.push(d.max(0.0));
        }
        self.tokens += tokens;
        if let Some(c) = cost {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
    }

    fn into_row(mut self, key: String) -> StatRow {
        self.durations.sort_by(f64::total_cmp);
        StatRow {
            key,
            count: self.count,
            errors: self.errors,
            p50_ms: nearest_rank(&self.durations, 50),
            p95_ms: nearest_rank(&self.durations, 95),
            max_ms: self.durations.last().copied(),
            tokens: self.tokens,
            cost_usd: self.cost_usd,
        }
    }
}

/// The rows of `stats` over `docs`, the most frequent first (then by key). Skipped spans did
/// not run and are left out; spans still running count but have no duration.
pub fn compute(docs: &[TraceDoc], by: StatsBy) -> Vec<StatRow> {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for doc in docs {
        if by == StatsBy::Workflow {
            let t = &doc.trace;
            groups.entry(t.workflow.clone()).or_default().add(
                t.status,
                t.duration_ms(),
                t.usage.total_tokens,
                t.cost_usd,
            );
            continue;
        }
        let figures = subtree_figures(&doc.spans);
        for (span, f) in doc.spans.iter().zip(figures) {
            if span.status == Status::Skipped {
                continue;
            }
            let key = match by {
                StatsBy::Name => span.name.clone(),
                StatsBy::Kind => span.kind.as_str().to_string(),
                StatsBy::Agent if span.kind == SpanKind::Agent => span.name.clone(),
                StatsBy::Model if span.kind == SpanKind::Generation => span
                    .attributes
                    .get("model")
                    .and_then(|m| m.as_str())
                    .unwrap_or(&span.name)
                    .to_string(),
                _ => continue,
            };
            groups.entry(key).or_default().add(
                span.status,
                span.duration_ms(),
                f.tokens,
                f.cost_usd,
            );
        }
    }
    let mut rows: Vec<StatRow> = groups
        .into_iter()
        .map(|(key, acc)| acc.into_row(key))
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    rows
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::store::StoreWriter;
    use crate::trace::{Timestamp, Trace, TraceId, Usage};

    pub(crate) fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// Traces with exact times, written through the store writer as a run would write them.
    pub(crate) struct Fixture {
        _dir: tempfile::TempDir,
        pub path: PathBuf,
        pub t0: i64,
        pub ids: Vec<TraceId>,
        pending: Vec<(Trace, Vec<Span>)>,
        next: u64,
        /// Holds the run locks of the traces left running by this process, as a run still
        /// going would (see `store::lock`).
        live: Vec<Store>,
    }

    impl Fixture {
        pub fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("traces.db");
            Fixture {
                _dir: dir,
                path,
                t0: 1_795_990_774_000_000,
                ids: Vec::new(),
                pending: Vec::new(),
                next: 0,
                live: Vec::new(),
            }
        }

        fn id(&mut self) -> u64 {
            self.next += 1;
            self.next
        }

        /// A trace started `start` µs after `t0`, ending (unless `Running`) with its last span.
        pub fn trace(&mut self, name: &str, workflow: &str, start: i64, status: Status) -> Trace {
            let n = self.id();
            let mut bytes = [0u8; 16];
            bytes[8..].copy_from_slice(&n.to_be_bytes());
            bytes[0] = 0x01;
            Trace {
                trace_id: TraceId(bytes),
                name: name.into(),
                workflow: workflow.into(),
                group_id: None,
                metadata: Map::new(),
                status,
                started_at: Timestamp(self.t0 + start),
                ended_at: None,
                usage: Usage::default(),
                cost_usd: None,
                error: None,
                pid: Some(std::process::id()),
            }
        }

        /// A span from `start` to `end` µs after the trace's start.
        #[allow(clippy::too_many_arguments)]
        pub fn span(
            &mut self,
            trace: &Trace,
            parent: Option<&Span>,
            kind: SpanKind,
            name: &str,
            start: i64,
            end: i64,
            status: Status,
        ) -> Span {
            let n = self.id();
            Span {
                span_id: SpanId(n.to_be_bytes()),
                trace_id: trace.trace_id,
                parent_id: parent.map(|p| p.span_id),
                kind,
                name: name.into(),
                status,
                started_at: Timestamp(trace.started_at.0 + start),
                ended_at: (status != Status::Running)
                    .then_some(Timestamp(trace.started_at.0 + end)),
                attributes: Map::new(),
                events: Vec::new(),
                error: None,
            }
        }

        /// A generation span with usage and, when given, a cost.
        pub fn generation(
            &mut self,
            trace: &Trace,
            parent: Option<&Span>,
            model: &str,
            (start, end): (i64, i64),
            tokens: (u64, u64),
            cost: Option<f64>,
        ) -> Span {
            let mut g = self.span(
                trace,
                parent,
                SpanKind::Generation,
                model,
                start,
                end,
                Status::Ok,
            );
            g.attributes = obj(json!({"model": model, "usage": Usage::new(tokens.0, tokens.1)}));
            if let Some(c) = cost {
                g.attributes.insert("cost_usd".into(), json!(c));
            }
            g
        }

        pub fn add(&mut self, mut trace: Trace, spans: Vec<Span>) {
            if trace.status != Status::Running {
                let end = spans
                    .iter()
                    .filter_map(|s| s.ended_at)
                    .max()
                    .unwrap_or(trace.started_at);
                trace.ended_at = Some(end);
            }
            for s in spans.iter().filter(|s| s.kind == SpanKind::Generation) {
                if let Some(u) = s.usage() {
                    trace.usage.add(u);
                }
                if let Some(c) = s.attributes.get("cost_usd").and_then(|v| v.as_f64()) {
                    trace.cost_usd = Some(trace.cost_usd.unwrap_or(0.0) + c);
                }
            }
            self.ids.push(trace.trace_id);
            self.pending.push((trace, spans));
        }

        pub fn write(&mut self) {
            let writer = StoreWriter::spawn(Store::open(&self.path).unwrap());
            let sink = writer.sink();
            let live = Store::open(&self.path).unwrap();
            for (trace, spans) in self.pending.drain(..) {
                if trace.status == Status::Running && trace.pid == Some(std::process::id()) {
                    assert!(live.hold_run(trace.trace_id));
                }
                let mut started = trace.clone();
                started.status = Status::Running;
                started.ended_at = None;
                sink.trace_started(&started);
                for s in &spans {
                    let mut open = s.clone();
                    open.status = Status::Running;
                    open.ended_at = None;
                    open.events.clear();
                    sink.span_started(&Arc::new(open));
                }
                for s in spans.iter().rev().filter(|s| s.status != Status::Running) {
                    sink.span_ended(&Arc::new(s.clone()));
                }
                if trace.status != Status::Running {
                    sink.trace_ended(&trace);
                }
            }
            writer.close().unwrap();
            self.live.push(live);
        }

        pub fn open(&self) -> Store {
            Store::open(&self.path).unwrap()
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 50), Some(5.0));
        assert_eq!(nearest_rank(&v, 95), Some(10.0));
        assert_eq!(nearest_rank(&v, 90), Some(9.0));
        assert_eq!(nearest_rank(&v, 0), Some(1.0));
        assert_eq!(nearest_rank(&[7.0], 95), Some(7.0));
        assert_eq!(nearest_rank(&[], 50), None);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&twenty, 95), Some(19.0));
        assert_eq!(nearest_rank(&twenty, 50), Some(10.0));
    }

    /// Two runs of "Orders" and one of "Nightly": a `fetch` command that takes 10, 30 and
    /// 20 ms and fails once, an agent with model calls of known tokens and prices.
    fn fixture() -> Fixture {
        let mut f = Fixture::new();
        for (i, (fetch_ms, fetch_status)) in [(10, Status::Ok), (30, Status::Error)]
            .into_iter()
            .enumerate()
        {
            let status = fetch_status;
            let t = f.trace("Orders", "Orders", i as i64 * 1_000_000, status);
            let phase = f.span(&t, None, SpanKind::Custom, "Checks", 0, 100_000, status);
            let fetch = f.span(
                &t,
                Some(&phase),
                SpanKind::Command,
                "fetch",
                0,
                fetch_ms * 1000,
                fetch_status,
            );
            let agent = f.span(
                &t,
                Some(&phase),
                SpanKind::Agent,
                "clerk",
                40_000,
                100_000,
                Status::Ok,
            );
            let g1 = f.generation(
                &t,
                Some(&agent),
                "gpt-4o-mini",
                (40_000, 70_000),
                (100, 20),
                Some(0.25),
            );
            let g2 = f.generation(&t, Some(&agent), "local", (70_000, 100_000), (10, 5), None);
            let skipped = f.span(
                &t,
                None,
                SpanKind::Command,
                "notify",
                100_000,
                100_000,
                Status::Skipped,
            );
            f.add(t, vec![phase, fetch, agent, g1, g2, skipped]);
        }
        let t = f.trace("Nightly", "Nightly", 5_000_000, Status::Ok);
        let fetch = f.span(&t, None, SpanKind::Command, "fetch", 0, 20_000, Status::Ok);
        f.add(t, vec![fetch]);
        f.write();
        f
    }

    fn rows(by: StatsBy) -> Vec<StatRow> {
        let f = fixture();
        let docs = f.open().load_many(&ListFilter::default()).unwrap();
        compute(&docs, by)
    }

    fn row(
        key: &str,
        count: usize,
        errors: usize,
        ms: [f64; 3],
        tokens: u64,
        cost: Option<f64>,
    ) -> StatRow {
        StatRow {
            key: key.into(),
            count,
            errors,
            p50_ms: Some(ms[0]),
            p95_ms: Some(ms[1]),
            max_ms: Some(ms[2]),
            tokens,
            cost_usd: cost,
        }
    }

    #[test]
    fn stats_by_name_count_errors_percentiles_tokens_and_cost() {
        assert_eq!(
            rows(StatsBy::Name),
            [
                row("fetch", 3, 1, [20.0, 30.0, 30.0], 0, None),
                row("Checks", 2, 1, [100.0, 100.0, 100.0], 270, Some(0.5)),
                row("clerk", 2, 0, [60.0, 60.0, 60.0], 270, Some(0.5)),
                row("gpt-4o-mini", 2, 0, [30.0, 30.0, 30.0], 240, Some(0.5)),
                row("local", 2, 0, [30.0, 30.0, 30.0], 30, None),
            ]
        );
        assert!((rows(StatsBy::Name)[0].error_rate() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn stats_by_agent_model_kind_and_workflow() {
        assert_eq!(
            rows(StatsBy::Agent),
            [row("clerk", 2, 0, [60.0, 60.0, 60.0], 270, Some(0.5))]
        );
        assert_eq!(
            rows(StatsBy::Model),
            [
                row("gpt-4o-mini", 2, 0, [30.0, 30.0, 30.0], 240, Some(0.5)),
                row("local", 2, 0, [30.0, 30.0, 30.0], 30, None),
            ]
        );
        assert_eq!(
            rows(StatsBy::Kind),
            [
                row("generation", 4, 0, [30.0, 30.0, 30.0], 270, Some(0.5)),
                row("command", 3, 1, [20.0, 30.0, 30.0], 0, None),
                row("agent", 2, 0, [60.0, 60.0, 60.0], 270, Some(0.5)),
                row("custom", 2, 1, [100.0, 100.0, 100.0], 270, Some(0.5)),
            ]
        );
        // Traces, not spans: two Orders runs of 100 ms (one failed), one Nightly run of 20 ms.
        assert_eq!(
            rows(StatsBy::Workflow),
            [
                row("Orders", 2, 1, [100.0, 100.0, 100.0], 270, Some(0.5)),
                row("Nightly", 1, 0, [20.0, 20.0, 20.0], 0, None),
            ]
        );
    }

    #[test]
    fn filters_select_the_traces() {
        let f = fixture();
        let store = f.open();
        let only = |filter: ListFilter| compute(&store.load_many(&filter).unwrap(), StatsBy::Name);
        let nightly = only(ListFilter {
            workflow: Some("Nightly".into()),
            ..ListFilter::default()
        });
        assert_eq!(nightly, [row("fetch", 1, 0, [20.0, 20.0, 20.0], 0, None)]);
        let failed = only(ListFilter {
            status: Some(Status::Error),
            ..ListFilter::default()
        });
        let fetch = failed.iter().find(|r| r.key == "fetch");
        assert_eq!(
            fetch,
            Some(&row("fetch", 1, 1, [30.0, 30.0, 30.0], 0, None))
        );
        assert_eq!(failed.len(), 5);
    }
}
