//! The recorder: hands out span handles, stamps ids and times, and forwards every change to its
//! sinks.
//!
//! This is the processor → exporter pipeline of OpenTelemetry and of the Agents SDK's
//! `TracingProcessor`. The engine never talks to the store or the terminal directly; it opens and
//! closes spans here, and each sink (store, progress, a live exporter) decides what to do with
//! them. Sinks must not block: the store sink hands records to its own writer thread.
//!
//! A sink that can no longer do its job (the store's disk is full) raises the run's [`Alarm`]:
//! a run that goes on unrecorded, running commands with side effects nobody will see in the
//! trace, is worse than a run stopped with a reason.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use tokio_util::sync::CancellationToken;

use serde_json::{Map, Value};

use super::failure::Failures;
use super::id::{SpanId, TraceId};
use super::model::{ErrorInfo, Event, Span, SpanKind, Status, Timestamp, Trace, Usage};
use super::redact;

/// Receives the life of a trace as it happens.
pub trait Sink: Send + Sync {
    fn trace_started(&self, trace: &Trace);
    /// A span has started: [`StartedSpan::snapshot`] copies it, when and if the sink needs it.
    fn span_started(&self, span: &Arc<StartedSpan>);
    fn span_ended(&self, span: &Arc<Span>);
    fn trace_ended(&self, trace: &Trace);
    /// Returns once the trace's start is visible to other processes (a store has committed
    /// it). Called before the run starts a process, which may be another run under this
    /// trace's `TRACEPARENT`.
    fn settle(&self) {}
    /// Hands the sink the run's alarm, before [`Sink::trace_started`]: a sink that fails for
    /// good raises it, and the run stops. Sinks that cannot fail ignore it.
    fn watch(&self, _alarm: &Alarm) {}
}

/// Raised by a sink that failed for good; the run watches it and stops as it does on Ctrl-C
/// (no new steps, running ones cut short), with the sink's reason as the error. The first
/// reason is kept.
#[derive(Clone, Default)]
pub struct Alarm {
    inner: Arc<AlarmInner>,
}

#[derive(Default)]
struct AlarmInner {
    token: CancellationToken,
    reason: OnceLock<String>,
}

impl Alarm {
    pub fn raise(&self, reason: impl Into<String>) {
        let _ = self.inner.reason.set(reason.into());
        self.inner.token.cancel();
    }

    /// Why it was raised; `None` while it was not.
    pub fn reason(&self) -> Option<&str> {
        self.inner.reason.get().map(String::as_str)
    }

    /// Resolves once the alarm is raised.
    pub async fn raised(&self) {
        self.inner.token.cancelled().await;
    }
}

#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

/// A span that has just started, as the sinks hear of it. Nothing of it is copied until a sink
/// asks: the store holds a start for a while and writes it only if the span is still running
/// then, and most spans of a fan-out have ended by that time, so copying (and redacting) every
/// span as it started was work thrown away (~14k instructions per branch of a fan-out).
pub struct StartedSpan {
    trace_id: TraceId,
    span_id: SpanId,
    source: Source,
}

enum Source {
    /// Open in its recorder (which may be gone by the time a sink asks).
    Open(Weak<Inner>),
    /// Given whole: a span read back or built elsewhere (tests, replays).
    Given(Arc<Span>),
}

impl StartedSpan {
    /// A start whose span is known whole.
    pub fn of(span: Span) -> Arc<StartedSpan> {
        Arc::new(StartedSpan {
            trace_id: span.trace_id,
            span_id: span.span_id,
            source: Source::Given(Arc::new(span)),
        })
    }

    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The span as it stands now (what was set on it since it started included), redacted; or
    /// `None` once it has ended, its end then being on its way to the sinks.
    pub fn snapshot(&self) -> Option<Arc<Span>> {
        match &self.source {
            Source::Given(span) => Some(Arc::clone(span)),
            Source::Open(inner) => {
                let inner = inner.upgrade()?;
                let mut span = inner.lock().open.get(&self.span_id)?.clone();
                redact::redact_span(&mut span);
                Some(Arc::new(span))
            }
        }
    }
}

struct Inner {
    sinks: Vec<Arc<dyn Sink>>,
    /// The trace's id, which never changes: read without the lock.
    trace_id: super::id::TraceId,
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing the trace, so poisoning is ignored.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct State {
    trace: Trace,
    open: foldhash::HashMap<SpanId, Span>,
    /// The failures so far: an enclosing span records where one happened, not a copy of it.
    failures: Failures,
}

impl Recorder {
    /// Starts recording `trace` (its status is set to running) and tells every sink. Nobody
    /// hears a sink that fails for good: see [`Recorder::start_watched`].
    pub fn start(trace: Trace, sinks: Vec<Arc<dyn Sink>>) -> Recorder {
        Recorder::start_watched(trace, sinks, &Alarm::default())
    }

    /// [`Recorder::start`], and a sink that fails for good raises `alarm`.
    pub fn start_watched(mut trace: Trace, sinks: Vec<Arc<dyn Sink>>, alarm: &Alarm) -> Recorder {
        trace.status = Status::Running;
        trace.ended_at = None;
        redact::redact_trace(&mut trace);
        for sink in &sinks {
            sink.watch(alarm);
            sink.trace_started(&trace);
        }
        Recorder {
            inner: Arc::new(Inner {
                sinks,
                trace_id: trace.trace_id,
                state: Mutex::new(State {
                    trace,
                    open: foldhash::HashMap::default(),
                    failures: Failures::default(),
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// Waits until every sink has made the trace's start visible to other processes: see
    /// [`Sink::settle`].
    pub fn settle(&self) {
        for sink in &self.inner.sinks {
            sink.settle();
        }
    }

    /// A snapshot of the trace row as it stands.
    pub fn trace(&self) -> Trace {
        self.state().trace.clone()
    }

    /// Opens a span under `parent` (or directly under the trace).
    pub fn span(
        &self,
        parent: Option<SpanId>,
        kind: SpanKind,
        name: impl Into<String>,
        attributes: Map<String, Value>,
    ) -> SpanHandle {
        // Built before the lock is taken: the lock guards only the map of open spans, so
        // branches on other threads wait for an insert, not for this work. Not redacted here:
        // what the sinks get is redacted as they get it (a snapshot, the ended span).
        let span = Span {
            span_id: SpanId::generate(),
            trace_id: self.inner.trace_id,
            parent_id: parent,
            kind,
            name: name.into(),
            status: Status::Running,
            started_at: Timestamp::now(),
            ended_at: None,
            attributes,
            events: Vec::new(),
            error: None,
        };
        let span_id = span.span_id;
        {
            let mut state = self.state();
            state.failures.started(span_id, parent);
            state.open.insert(span_id, span);
        }
        let started = Arc::new(StartedSpan {
            trace_id: self.inner.trace_id,
            span_id,
            source: Source::Open(Arc::downgrade(&self.inner)),
        });
        for sink in &self.inner.sinks {
            sink.span_started(&started);
        }
        SpanHandle {
            recorder: self.clone(),
            id: span_id,
        }
    }

    /// Records a span that never ran (a skipped step): started and ended now. Returns its id,
    /// for the steps it holds, which did not run either.
    pub fn skipped_span(
        &self,
        parent: Option<SpanId>,
        kind: SpanKind,
        name: impl Into<String>,
        attributes: Map<String, Value>,
        reason: &str,
    ) -> SpanId {
        let handle = self.span(parent, kind, name, attributes);
        let id = handle.id();
        handle.set_attribute("skip_reason", Value::String(reason.to_string()));
        handle.end(Status::Skipped, None);
        id
    }

    /// Where the failure that `error` reports happened ("step `boom`"), once a span ended
    /// with it.
    pub fn failure_origin(&self, error: &ErrorInfo) -> Option<String> {
        self.state().failures.origin_of(error)
    }

    fn with_open(&self, id: SpanId, f: impl FnOnce(&mut Span)) {
        if let Some(span) = self.state().open.get_mut(&id) {
            f(span);
        }
    }

    fn end_span(&self, id: SpanId, status: Status, error: Option<ErrorInfo>) {
        let mut span = {
            let mut state = self.state();
            let Some(mut span) = state.open.remove(&id) else {
                return;
            };
            span.status = status;
            span.error = match error {
                Some(error) if status == Status::Error => Some(state.failures.ended(&span, error)),
                other => other,
            };
            span.ended_at = Some(Timestamp::now());
            // A generation under a `score` span is a judge's: its tokens and cost are the
            // score's (recorded on that span), not the workflow's.
            let judged = span
                .parent_id
                .and_then(|p| state.open.get(&p))
                .is_some_and(|p| p.kind == SpanKind::Score);
            if span.kind == SpanKind::Generation && !judged {
                if let Some(usage) = span.usage() {
                    state.trace.usage.add(usage);
                }
                if let Some(cost) = span.attributes.get("cost_usd").and_then(Value::as_f64) {
                    let total = state.trace.cost_usd.unwrap_or(0.0) + cost;
                    state.trace.cost_usd = Some((total * 1e9).round() / 1e9);
                }
            }
            span
        };
        // Whatever was added while it ran (a server's answer, a command's output) may echo a
        // key: no sink sees it. Outside the lock: it reads every string the span holds.
        redact::redact_span(&mut span);
        let span = Arc::new(span);
        for sink in &self.inner.sinks {
            sink.span_ended(&span);
        }
    }

    /// Closes every span still open with `status` (children before parents), as when a run is
    /// interrupted.
    pub fn close_open_spans(&self, status: Status, error: Option<ErrorInfo>) {
        let mut ids: Vec<(Timestamp, SpanId)> = self
            .state()
            .open
            .values()
            .map(|s| (s.started_at, s.span_id))
            .collect();
        // Latest-started first: children end before the parents that contain them.
        ids.sort_by(|a, b| b.cmp(a));
        for (_, id) in ids {
            self.end_span(id, status, error.clone());
        }
    }

    /// Adds an event to the span that started last among those still open (the step that is
    /// running), for things that happen to the run rather than to a step.
    pub fn add_event_to_latest(&self, name: &str, attributes: Map<String, Value>) {
        let mut state = self.state();
        if let Some(span) = state.open.values_mut().max_by_key(|s| s.started_at) {
            span.events.push(Event {
                name: name.to_string(),
                time: Timestamp::now(),
                attributes,
            });
        }
    }

    pub fn set_trace_metadata(&self, metadata: Map<String, Value>) {
        self.state().trace.metadata = metadata;
    }

    /// Ends the trace. Spans still open are closed first: as `cancelled` when the trace is
    /// cancelled, otherwise with the trace's status.
    pub fn finish(&self, status: Status, error: Option<ErrorInfo>) -> Trace {
        let open_status = match status {
            Status::Ok => Status::Cancelled,
            other => other,
        };
        self.close_open_spans(open_status, None);
        let trace = {
            let mut state = self.state();
            state.trace.status = status;
            state.trace.error = error;
            state.trace.ended_at = Some(Timestamp::now());
            redact::redact_trace(&mut state.trace);
            state.trace.clone()
        };
        for sink in &self.inner.sinks {
            sink.trace_ended(&trace);
        }
        trace
    }

    pub fn usage(&self) -> Usage {
        self.state().trace.usage
    }
}

/// An open span. Dropping it without [`SpanHandle::end`] leaves the span open until the trace
/// finishes, which closes it as cancelled.
pub struct SpanHandle {
    recorder: Recorder,
    id: SpanId,
}

impl SpanHandle {
    pub fn id(&self) -> SpanId {
        self.id
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Another handle on the same open span, for work that runs under it elsewhere (a
    /// fan-out's branch tasks open their spans under it). Whoever opened it still ends it.
    pub fn share(&self) -> SpanHandle {
        SpanHandle {
            recorder: self.recorder.clone(),
            id: self.id,
        }
    }

    pub fn set_attribute(&self, key: &str, value: Value) {
        self.recorder.with_open(self.id, |span| {
            span.attributes.insert(key.to_string(), value);
        });
    }

    /// Sets several attributes at once: one lock and one growth of the span's map, where a
    /// model call's results were a lock and often a growth each.
    pub fn set_attributes(&self, attributes: Vec<(&str, Value)>) {
        if attributes.is_empty() {
            return;
        }
        self.recorder.with_open(self.id, |span| {
            span.attributes
                .extend(attributes.into_iter().map(|(k, v)| (k.to_string(), v)));
        });
    }

    /// Adds `usage` to the span's `usage` attribute (an agent span sums its model calls).
    pub fn add_usage(&self, usage: Usage) {
        self.recorder.with_open(self.id, |span| {
            let mut total = Usage::from_attributes(&span.attributes).unwrap_or_default();
            total.add(usage);
            span.attributes
                .insert("usage".to_string(), total.to_value());
        });
    }

    pub fn add_event(&self, name: impl Into<String>, attributes: Map<String, Value>) {
        let event = Event {
            name: name.into(),
            time: Timestamp::now(),
            attributes,
        };
        self.recorder
            .with_open(self.id, |span| span.events.push(event));
    }

    pub fn end(self, status: Status, error: Option<ErrorInfo>) {
        self.recorder.end_span(self.id, status, error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceId;

    #[derive(Default)]
    struct Collect(Mutex<Vec<String>>);

    impl Sink for Collect {
        fn trace_started(&self, t: &Trace) {
            self.0.lock().unwrap().push(format!("trace+ {}", t.status));
        }
        fn span_started(&self, s: &Arc<StartedSpan>) {
            let s = s.snapshot().unwrap();
            self.0.lock().unwrap().push(format!("span+ {}", s.name));
        }
        fn span_ended(&self, s: &Arc<Span>) {
            self.0.lock().unwrap().push(format!(
                "span- {} {} {}",
                s.name,
                s.status,
                s.events.len()
            ));
        }
        fn trace_ended(&self, t: &Trace) {
            self.0
                .lock()
                .unwrap()
                .push(format!("trace- {} {}", t.status, t.usage.total_tokens));
        }
    }

    fn trace() -> Trace {
        Trace {
            trace_id: TraceId::generate(),
            name: "t".into(),
            workflow: "t".into(),
            group_id: None,
            metadata: Map::new(),
            status: Status::Ok,
            started_at: Timestamp::now(),
            ended_at: None,
            usage: Usage::default(),
            cost_usd: None,
            error: None,
            pid: None,
        }
    }

    #[test]
    fn sinks_see_the_life_of_a_trace_and_usage_is_summed() {
        let sink = Arc::new(Collect::default());
        let rec = Recorder::start(trace(), vec![sink.clone()]);
        let outer = rec.span(None, SpanKind::Custom, "outer", Map::new());
        outer.add_event("hello", Map::new());
        let generation = rec.span(Some(outer.id()), SpanKind::Generation, "gen", Map::new());
        generation.set_attribute("usage", Usage::new(3, 4).to_value());
        generation.end(Status::Ok, None);
        outer.end(Status::Ok, None);
        let done = rec.finish(Status::Ok, None);
        assert_eq!(done.usage, Usage::new(3, 4));
        assert_eq!(
            *sink.0.lock().unwrap(),
            [
                "trace+ running",
                "span+ outer",
                "span+ gen",
                "span- gen ok 0",
                "span- outer ok 1",
                "trace- ok 7"
            ]
        );
    }

    /// Keeps the starts it is told of, uncopied.
    #[derive(Default)]
    struct Starts(Mutex<Vec<Arc<StartedSpan>>>);

    impl Sink for Starts {
        fn trace_started(&self, _: &Trace) {}
        fn span_started(&self, s: &Arc<StartedSpan>) {
            self.0.lock().unwrap().push(Arc::clone(s));
        }
        fn span_ended(&self, _: &Arc<Span>) {}
        fn trace_ended(&self, _: &Trace) {}
    }

    #[test]
    fn a_start_is_copied_when_a_sink_asks_as_the_span_stands_then_and_redacted() {
        redact::register("sk-unit-STARTED-fff");
        let sink = Arc::new(Starts::default());
        let rec = Recorder::start(trace(), vec![sink.clone()]);
        let mut attributes = Map::new();
        attributes.insert("input".into(), Value::from("key sk-unit-STARTED-fff"));
        let span = rec.span(None, SpanKind::Custom, "step", attributes);
        span.set_attribute("later", Value::from(1));
        span.add_event("hello", Map::new());
        let started = Arc::clone(&sink.0.lock().unwrap()[0]);
        assert_eq!(started.span_id(), span.id());
        let copy = started.snapshot().expect("open");
        assert_eq!(copy.status, Status::Running);
        assert_eq!(copy.attributes["input"], "key [REDACTED]");
        assert_eq!(copy.attributes["later"], 1);
        assert_eq!(copy.events.len(), 1);
        // Ended, it has nothing to give: its end reaches the sinks on its own.
        span.end(Status::Ok, None);
        assert!(started.snapshot().is_none());
        // Nor once the recorder is gone.
        let other = rec.span(None, SpanKind::Custom, "left open", Map::new());
        let started = Arc::clone(&sink.0.lock().unwrap()[1]);
        drop(other);
        drop(rec);
        assert!(started.snapshot().is_none());
    }

    #[test]
    fn a_judges_generation_is_left_out_of_the_trace_usage_and_cost() {
        let rec = Recorder::start(trace(), Vec::new());
        let score = rec.span(None, SpanKind::Score, "helpful", Map::new());
        let judge = rec.span(Some(score.id()), SpanKind::Generation, "m", Map::new());
        judge.set_attribute("usage", Usage::new(30, 5).to_value());
        judge.set_attribute("cost_usd", serde_json::json!(0.5));
        judge.end(Status::Ok, None);
        score.end(Status::Ok, None);
        let work = rec.span(None, SpanKind::Generation, "m", Map::new());
        work.set_attribute("usage", Usage::new(3, 4).to_value());
        work.set_attribute("cost_usd", serde_json::json!(0.25));
        work.end(Status::Ok, None);
        let done = rec.finish(Status::Ok, None);
        assert_eq!((done.usage, done.cost_usd), (Usage::new(3, 4), Some(0.25)));
    }

    #[test]
    fn open_spans_are_cancelled_children_first() {
        let sink = Arc::new(Collect::default());
        let rec = Recorder::start(trace(), vec![sink.clone()]);
        let outer = rec.span(None, SpanKind::Custom, "outer", Map::new());
        std::thread::sleep(std::time::Duration::from_millis(1));
        let _inner = rec.span(Some(outer.id()), SpanKind::Command, "inner", Map::new());
        rec.finish(Status::Cancelled, None);
        let log = sink.0.lock().unwrap();
        assert_eq!(log[3], "span- inner cancelled 0");
        assert_eq!(log[4], "span- outer cancelled 0");
        assert_eq!(log[5], "trace- cancelled 0");
    }

    #[test]
    fn a_failure_is_recorded_where_it_happened_and_pointed_at_from_around_it() {
        let sink = Arc::new(Keep::default());
        let rec = Recorder::start(trace(), vec![sink.clone()]);
        let outer = rec.span(None, SpanKind::Custom, "Outer", Map::new());
        let mut attrs = Map::new();
        attrs.insert("step_id".into(), Value::String("boom".into()));
        let boom = rec.span(Some(outer.id()), SpanKind::Command, "Boom!", attrs);
        let boom_id = boom.id();
        let error = ErrorInfo::new("exit 3");
        boom.end(Status::Error, Some(error.clone()));
        assert_eq!(rec.failure_origin(&error).as_deref(), Some("step `boom`"));
        // A sibling that failed with another error is no cause.
        let other = rec.span(None, SpanKind::Custom, "Other", Map::new());
        other.end(Status::Error, Some(error.clone()));
        outer.end(Status::Error, Some(error.clone()));
        let ended = sink.0.lock().unwrap();
        assert_eq!(ended[0].error, Some(error.clone()));
        assert_eq!(ended[1].error, Some(error.clone()), "not inside Outer");
        let pointer = ended[2].error.clone().unwrap();
        assert_eq!(pointer.message, "failed because step `boom` failed");
        assert_eq!(super::super::failure::caused_by(&pointer), Some(boom_id));
    }

    #[test]
    fn a_server_that_fails_is_named_as_an_mcp_server_in_the_cause() {
        let sink = Arc::new(Keep::default());
        let rec = Recorder::start(trace(), vec![sink.clone()]);
        let agent = rec.span(None, SpanKind::Agent, "helper", Map::new());
        let tools = rec.span(Some(agent.id()), SpanKind::McpTools, "time", Map::new());
        let error = ErrorInfo::new("MCP server `time` exited before it answered initialize");
        tools.end(Status::Error, Some(error.clone()));
        assert_eq!(
            rec.failure_origin(&error).as_deref(),
            Some("MCP server `time`")
        );
        agent.end(Status::Error, Some(error));
        let ended = sink.0.lock().unwrap();
        let pointer = ended[1].error.clone().unwrap();
        assert_eq!(pointer.message, "failed because MCP server `time` failed");
    }

    /// Keeps the spans that ended.
    #[derive(Default)]
    struct Keep(Mutex<Vec<Span>>);

    impl Sink for Keep {
        fn trace_started(&self, _: &Trace) {}
        fn span_started(&self, _: &Arc<StartedSpan>) {}
        fn span_ended(&self, s: &Arc<Span>) {
            self.0.lock().unwrap().push(Span::clone(s));
        }
        fn trace_ended(&self, _: &Trace) {}
    }

    /// Fails every span start, as a store on a full disk does.
    #[derive(Default)]
    struct Failing(Mutex<Option<Alarm>>);

    impl Sink for Failing {
        fn watch(&self, alarm: &Alarm) {
            *self.0.lock().unwrap() = Some(alarm.clone());
        }
        fn trace_started(&self, _: &Trace) {}
        fn span_started(&self, _: &Arc<StartedSpan>) {
            if let Some(alarm) = self.0.lock().unwrap().as_ref() {
                alarm.raise("disk full");
                alarm.raise("second reason");
            }
        }
        fn span_ended(&self, _: &Arc<Span>) {}
        fn trace_ended(&self, _: &Trace) {}
    }

    #[test]
    fn a_failing_sink_raises_the_run_alarm_with_its_first_reason() {
        let alarm = Alarm::default();
        let rec = Recorder::start_watched(trace(), vec![Arc::new(Failing::default())], &alarm);
        assert_eq!(alarm.reason(), None);
        let _span = rec.span(None, SpanKind::Command, "step", Map::new());
        assert_eq!(alarm.reason(), Some("disk full"));
    }
}
