//! Walks the steps of each trace: custom spans and events here, agent and command steps in their
//! own files. A failing step fails every enclosing span and its trace, and nothing after it runs.
//!
//! [`run`] is the way in: it sets up what the traces of a run share, then runs them in order;
//! what is decided before a trace's first step (the group id, the trace's id, name and metadata)
//! is in `setup`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};

use minijinja::Value as TemplateValue;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::context::{Context, StepResults};
use super::scope::{Scope, Stop};
use super::{Engine, Failure, RunOutcome, TraceOutcome};
use crate::trace::{Alarm, ErrorInfo, Recorder, Sink, SpanHandle, SpanKind, Status};
use crate::workflow::template::{Output, has_template, is_template};
use crate::workflow::{EventDef, Loc, LocatedValue, Step, StepKind, TraceDef};

mod setup;

pub(crate) type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// Where a step runs: what its templates see and the cancellation scope it answers to.
#[derive(Clone)]
pub(crate) struct Frame {
    pub ctx: Context,
    pub scope: Scope,
}

impl Frame {
    pub fn with_scope(&self, scope: Scope) -> Frame {
        Frame {
            ctx: self.ctx.clone(),
            scope,
        }
    }
}

/// The state of one trace while it runs. Shared (an `Arc`) by the tasks a fan-out spawns, so
/// that its branches can run on every worker thread of the runtime.
pub(crate) struct TraceRun {
    pub engine: Arc<Engine>,
    /// This run itself, for the tasks it spawns (see [`TraceRun::arc`]).
    me: Weak<TraceRun>,
    pub rec: Recorder,
    /// The whole run's scope: a crossed budget stops it.
    pub root: Scope,
    pub outputs: Mutex<Map<String, Value>>,
    /// Where each failure started (see `expect.rs`), for the CI outputs of `run`.
    pub failures: Mutex<Vec<super::StepFailure>>,
    /// The agent steps' paths merged, kept only when a score of the trace checks the path.
    pub path: Option<Mutex<super::path::AgentPath>>,
}

impl TraceRun {
    /// `FILE:LINE:COL`, for messages about a place in the workflow.
    pub fn at(&self, loc: Loc) -> String {
        location(&self.engine, loc)
    }

    /// This run, owned: what a spawned branch holds on to.
    pub fn arc(&self) -> Arc<TraceRun> {
        self.me
            .upgrade()
            .expect("a TraceRun is only used through the Arc that run_trace made")
    }

    pub fn template_error(&self, field: &str, loc: Loc, e: &minijinja::Error) -> ErrorInfo {
        template_error(&self.at(loc), field, e)
    }

    /// Renders a template off the runtime thread; the step's scope (its `timeout:`, Ctrl-C)
    /// stops the wait.
    pub async fn render(
        &self,
        frame: &Frame,
        field: &str,
        loc: Loc,
        source: &str,
    ) -> Result<String, Failure> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        let source = source.to_string();
        let ctx = frame.ctx.value();
        let work = self
            .engine
            .templates
            .off_thread(move |t| t.render(&source, &ctx));
        self.bounded(frame, field, loc, work).await
    }

    pub async fn render_value(
        &self,
        frame: &Frame,
        field: &str,
        value: &LocatedValue,
    ) -> Result<Value, Failure> {
        if !has_template(&value.value) {
            return Ok(value.value.clone());
        }
        let source = value.value.clone();
        let ctx = frame.ctx.value();
        let work = self
            .engine
            .templates
            .off_thread(move |t| t.render_value(&source, &ctx));
        self.bounded(frame, field, value.loc, work).await
    }

    /// Evaluates an expression (an `if:`) off the runtime thread.
    pub async fn eval(
        &self,
        frame: &Frame,
        field: &str,
        loc: Loc,
        expr: &str,
    ) -> Result<TemplateValue, Failure> {
        let expr = expr.to_string();
        let ctx = frame.ctx.value();
        let work = self
            .engine
            .templates
            .off_thread(move |t| t.eval(&expr, &ctx));
        self.bounded(frame, field, loc, work).await
    }

    async fn bounded<T>(
        &self,
        frame: &Frame,
        field: &str,
        loc: Loc,
        work: impl Future<Output = Result<T, minijinja::Error>>,
    ) -> Result<T, Failure> {
        tokio::select! {
            r = work => r.map_err(|e| Failure::error(self.template_error(field, loc, &e))),
            () = frame.scope.cancelled() => Err(frame.scope.failure()),
        }
    }

    /// Makes a step's result visible to later templates and, outside loops, to
    /// `run --format json`.
    pub fn record_output(&self, frame: &Frame, step: &Step, output: &Output, status: Status) {
        frame.ctx.steps.set_last(output);
        if let Some(id) = &step.id {
            frame.ctx.steps.insert(&id.value, output, status.as_str());
            if !frame.ctx.in_loop() {
                self.outputs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id.value.clone(), output.to_json());
            }
        }
    }

    /// Attributes every step span starts with.
    pub fn step_attributes(&self, step: &Step) -> Map<String, Value> {
        let mut attrs = Map::with_capacity(8);
        if let Some(id) = &step.id {
            attrs.insert("step_id".into(), Value::String(id.value.clone()));
        }
        attrs
    }

    pub fn run_steps<'s>(
        &'s self,
        frame: &'s Frame,
        steps: &'s [Step],
        parent: Option<&'s SpanHandle>,
    ) -> StepFuture<'s> {
        Box::pin(async move {
            for (i, step) in steps.iter().enumerate() {
                if let Err(failure) = self.run_step(frame, step, parent).await {
                    // -- The steps after a failure never run: they are recorded as skipped, so
                    // that a failing run lists the same steps as a passing one.
                    if !failure.cancelled {
                        let reason = self.not_run_reason(&failure);
                        let rest = steps.get(i + 1..).unwrap_or_default();
                        self.skip_unrun(frame, rest, parent.map(SpanHandle::id), &reason)
                            .await;
                    }
                    return Err(failure);
                }
            }
            Ok(())
        })
    }

    /// One step with its policies: `if:`, `timeout:`, `continue_on_error:`. A step whose scope
    /// is already stopped (a budget, a fail-fast sibling) does not start.
    pub fn run_step<'s>(
        &'s self,
        frame: &'s Frame,
        step: &'s Step,
        parent: Option<&'s SpanHandle>,
    ) -> StepFuture<'s> {
        Box::pin(async move {
            if frame.scope.is_cancelled() {
                return Err(frame.scope.failure());
            }
            if let Some(condition) = &step.condition
                && !self.condition_holds(frame, condition).await?
            {
                self.skip(frame, step, parent, condition).await;
                return Ok(());
            }
            let result = match &step.timeout {
                None => self.run_form(frame, step, parent).await,
                Some(limit) => {
                    let scope = frame.scope.child();
                    let inner = frame.with_scope(scope.clone());
                    let work = self.run_form(&inner, step, parent);
                    tokio::pin!(work);
                    tokio::select! {
                        r = &mut work => r,
                        () = tokio::time::sleep(limit.value) => {
                            scope.stop(Stop::TimedOut {
                                what: format!("step `{}`", self.display_name(step)),
                                after: limit.value,
                            });
                            work.await
                        }
                    }
                }
            };
            // -- CI outputs: remember where a failure started (annotations point there).
            if let Err(failure) = &result {
                self.note_step_failure(step, failure);
            }
            match result {
                Err(failure) if step.continue_on_error && !failure.cancelled => {
                    self.note_continued(&failure);
                    // The span already says what failed; the run goes on.
                    if let Some(id) = &step.id {
                        frame
                            .ctx
                            .steps
                            .insert(&id.value, &Output::Text(String::new()), "error");
                    }
                    Ok(())
                }
                other => other,
            }
        })
    }

    /// The work of `step` by its kind, as a future of its own: a step's future (boxed by
    /// `run_step`) holds only this one's box, not the state of the largest kind, which was
    /// copied whole into the box of every step (agent steps paying for the state of commands
    /// and fan-outs).
    fn run_form<'s>(
        &'s self,
        frame: &'s Frame,
        step: &'s Step,
        parent: Option<&'s SpanHandle>,
    ) -> StepFuture<'s> {
        let parent_id = parent.map(SpanHandle::id);
        match &step.kind {
            StepKind::Agent { .. } => Box::pin(self.run_agent(frame, step, parent_id)),
            StepKind::Run { .. } => Box::pin(self.run_command(frame, step, parent_id)),
            StepKind::Parallel {
                branches,
                fail_fast,
            } => Box::pin(self.run_parallel(frame, step, parent_id, branches, *fail_fast)),
            StepKind::Foreach {
                items,
                as_name,
                concurrency,
                steps,
            } => Box::pin(self.run_foreach(
                frame,
                step,
                parent_id,
                items,
                as_name,
                *concurrency,
                steps,
            )),
            StepKind::Span {
                name,
                events,
                steps,
            } => Box::pin(async move {
                let span_name = self.render(frame, "span", name.loc, &name.value).await;
                let display = span_name.as_deref().unwrap_or(&name.value).to_string();
                let span = self.rec.span(
                    parent_id,
                    SpanKind::Custom,
                    display,
                    self.step_attributes(step),
                );
                let result = async {
                    span_name?;
                    for event in events {
                        self.add_event(frame, &span, event).await?;
                    }
                    self.run_steps(frame, steps, Some(&span)).await
                }
                .await;
                end_with(span, &result);
                result
            }),
            StepKind::Event(event) => Box::pin(async move {
                match parent {
                    Some(span) => self.add_event(frame, span, event).await,
                    // Validation rejects events outside a span; nothing to attach one to here.
                    None => Ok(()),
                }
            }),
        }
    }

    async fn add_event(
        &self,
        frame: &Frame,
        span: &SpanHandle,
        event: &EventDef,
    ) -> Result<(), Failure> {
        let name = self
            .render(frame, "event", event.name.loc, &event.name.value)
            .await?;
        let mut attributes = Map::new();
        for (key, value) in &event.attributes {
            attributes.insert(
                key.clone(),
                self.render_value(frame, &format!("attributes.{key}"), value)
                    .await?,
            );
        }
        span.add_event(name, attributes);
        Ok(())
    }
}

/// Ends a span with the status its steps' result implies; a failure below marks it too.
pub(crate) fn end_with(span: SpanHandle, result: &Result<(), Failure>) {
    match result {
        Ok(()) => span.end(Status::Ok, None),
        Err(failure) if failure.cancelled => span.end(Status::Cancelled, None),
        Err(failure) => span.end(Status::Error, Some(failure.error.clone())),
    }
}

pub(crate) fn template_error(at: &str, field: &str, e: &minijinja::Error) -> ErrorInfo {
    let mut message = format!("template error in `{field}` at {at}: {}", e.kind());
    if let Some(detail) = e.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    ErrorInfo::new(message)
}

/// `FILE:LINE:COL` of a place in the workflow, for messages.
fn location(engine: &Engine, loc: Loc) -> String {
    format!("{}:{}:{}", engine.wf.path.display(), loc.line, loc.col)
}

/// Runs the workflow: sets up what every trace shares (the cancellation scope, the watchdogs,
/// the group id and the workflow's metadata), then runs the traces one after the other.
pub(crate) async fn run(
    engine: &Arc<Engine>,
    sinks: Vec<Arc<dyn Sink>>,
    cancel: CancellationToken,
) -> RunOutcome {
    let mut ctx = Context {
        vars: TemplateValue::from_serialize(&engine.vars),
        steps: Arc::new(StepResults::default()),
        trace_id: String::new(),
        group_id: None,
        locals: Vec::new(),
        case: TemplateValue::from_serialize(engine.case_value()),
    };
    let root = Scope::root(cancel);
    // A sink that fails for good (the store's disk is full) stops the run like Ctrl-C does,
    // with its reason: steps must not go on running unrecorded.
    let alarm = Alarm::default();
    let _watchdogs = engine.start_watchdogs(&root, &alarm);

    // The group and the workflow's metadata are rendered once, before the first trace starts;
    // a template failure there fails the first trace.
    let mut setup_error: Option<ErrorInfo> = None;
    ctx.group_id = setup::group_id(engine, &root, &ctx, &mut setup_error).await;
    let mut base_metadata = Map::new();
    setup::render_metadata(
        engine,
        &root,
        &engine.wf.metadata,
        &ctx,
        &mut base_metadata,
        &mut setup_error,
    )
    .await;
    let run = WorkflowRun {
        engine,
        sinks,
        root,
        alarm,
        base_metadata,
    };
    run.run_traces(ctx, setup_error).await
}

/// What the traces of one run share, set up once before the first one starts.
struct WorkflowRun<'a> {
    engine: &'a Arc<Engine>,
    sinks: Vec<Arc<dyn Sink>>,
    /// The whole run's scope: Ctrl-C, a crossed budget or a failing sink stops it.
    root: Scope,
    alarm: Alarm,
    /// The workflow's `metadata:`, rendered once; each trace adds its own.
    base_metadata: Map<String, Value>,
}

impl WorkflowRun<'_> {
    /// The traces in file order, each one only after the one before it succeeded: a later
    /// trace may stand on what an earlier one did (a session, a file), so the first trace that
    /// fails or is cancelled ends the run with its status. The run's setup error, if any, fails
    /// the first trace.
    async fn run_traces(&self, mut ctx: Context, mut setup_error: Option<ErrorInfo>) -> RunOutcome {
        let wf = &self.engine.wf;
        let mut outcomes = Vec::new();
        let mut status = Status::Ok;
        for (index, def) in wf.traces.iter().enumerate() {
            let header = setup::trace_header(
                self.engine,
                &self.root,
                &mut ctx,
                index,
                def,
                &self.base_metadata,
                setup_error.take(),
            )
            .await;
            let last = index + 1 == wf.traces.len();
            let outcome = self.run_trace(&ctx, def, header, last, &outcomes).await;
            let trace_status = outcome.trace.status;
            outcomes.push(outcome);
            if trace_status != Status::Ok {
                status = trace_status;
                break;
            }
        }
        RunOutcome {
            traces: outcomes,
            status,
        }
    }

    /// One trace, from its header to its outcome. Its recorder starts first, so that every
    /// span is recorded as it happens; the engine knows it as the current trace while it runs
    /// (a watchdog's reason goes there). It fails at once with its header's error, or runs its
    /// steps; after the last trace, the workflow's `expect:` is checked against every trace
    /// (`earlier` are the ones before). The trace ends with the status its result implies.
    async fn run_trace(
        &self,
        ctx: &Context,
        def: &TraceDef,
        header: setup::Header,
        last: bool,
        earlier: &[TraceOutcome],
    ) -> TraceOutcome {
        let engine = self.engine;
        let rec = Recorder::start_watched(header.trace, self.sinks.clone(), &self.alarm);
        engine.set_current(Some(rec.clone()));
        let run = Arc::new_cyclic(|me| TraceRun {
            engine: engine.clone(),
            me: me.clone(),
            rec: rec.clone(),
            root: self.root.clone(),
            outputs: Mutex::new(Map::new()),
            failures: Mutex::new(Vec::new()),
            path: (last
                && engine
                    .wf
                    .scores
                    .iter()
                    .any(|s| matches!(s.kind, crate::workflow::scores::ScoreKind::Path(_))))
            .then(|| Mutex::new(super::path::AgentPath::default())),
        });
        let frame = Frame {
            ctx: ctx.clone(),
            scope: self.root.clone(),
        };
        let result = match header.error {
            Some(error) => Err(Failure::error(error)),
            None => run.run_steps(&frame, &def.steps, None).await,
        };
        // -- The workflow's `expect:`, once the last trace's steps have all succeeded.
        let result = match (&result, &engine.wf.expect) {
            (Ok(()), Some(expect)) if last => run.check_run_expectations(&frame, expect, earlier),
            (Err(failure), Some(expect)) if last && !failure.cancelled => {
                run.skip_run_expectations(expect, failure);
                result
            }
            _ => result,
        };
        // -- The workflow's `scores:`, after everything else of the last trace (even when a
        // step failed: a failed case is scored too); they never change its result.
        if last && !matches!(&result, Err(f) if f.cancelled) {
            run.run_trace_scores(&frame).await;
        }
        engine.set_current(None);
        let (trace_status, error) = match &result {
            Ok(()) => (Status::Ok, None),
            Err(f) if f.cancelled => (Status::Cancelled, Some(ErrorInfo::new("interrupted"))),
            Err(f) => (Status::Error, Some(f.error.clone())),
        };
        let trace = rec.finish(trace_status, error);
        // Every branch task has ended (a fan-out waits for its tasks), but the lock, not the
        // Arc's count, is what says so to the compiler.
        let outputs = std::mem::take(&mut *run.outputs.lock().unwrap_or_else(|p| p.into_inner()));
        let failures = std::mem::take(&mut *run.failures.lock().unwrap_or_else(|p| p.into_inner()));
        TraceOutcome {
            trace,
            outputs,
            failures,
        }
    }
}

/// Error data pointing at the span where a failure started.
pub(crate) fn error_at(message: impl Into<String>, data: Value) -> ErrorInfo {
    ErrorInfo::with_data(message, if data.is_null() { json!({}) } else { data })
}
