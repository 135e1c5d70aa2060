//! The fixture of the SQLite backend's tests (traces with exact times, written through the
//! store writer as a run writes them), and the tests of `stats` over a real store. The figures
//! are pure functions of the trace model, in [`crate::trace::stats`].

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use serde_json::{Map, Value, json};

    use crate::store::{ListFilter, Store, StoreWriter};
    use crate::trace::stats::*;
    use crate::trace::{Span, SpanId, SpanKind, Status, Timestamp, Trace, TraceId, Usage};

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
        /// going would (see `store::sqlite::lock`).
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
            let writer = StoreWriter::spawn(crate::store::Store::open(&self.path).unwrap());
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
                    sink.span_started(&crate::trace::StartedSpan::of(open));
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

        /// The SQLite store itself, for tests that look at its tables.
        pub fn open_sqlite(&self) -> super::super::Store {
            super::super::Store::open(&self.path).unwrap()
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
