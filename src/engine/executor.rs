//! Walks the steps of each trace: custom spans and events here, agent and command steps in their
//! own files. A failing step fails every enclosing span and its trace, and nothing after it runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use minijinja::Value as TemplateValue;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::context::{Context, StepResults};
use super::scope::{Scope, Stop};
use super::{Engine, Failure, RunOutcome, TraceOutcome};
use crate::trace::{
    Alarm, ErrorInfo, Recorder, Sink, SpanHandle, SpanKind, Status, Timestamp, Trace, TraceId,
    Usage,
};
use crate::workflow::template::{Output, has_template, is_template};
use crate::workflow::{EventDef, Loc, LocatedValue, Step, StepKind};

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

/// The state of one trace while it runs.
pub(crate) struct TraceRun<'a> {
    pub engine: &'a Engine,
    pub rec: Recorder,
    /// The whole run's scope: a crossed budget stops it.
    pub root: Scope,
    pub outputs: Mutex<Map<String, Value>>,
    /// Where each failure started (see `expect.rs`), for the CI outputs of `run`.
    pub failures: Mutex<Vec<super::StepFailure>>,
}

impl TraceRun<'_> {
    /// `FILE:LINE:COL`, for messages about a place in the workflow.
    pub fn at(&self, loc: Loc) -> String {
        format!("{}:{}:{}", self.engine.wf.path.display(), loc.line, loc.col)
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
                    .insert(id.value.clone(), Value::String(output.text().to_string()));
            }
        }
    }

    /// Attributes every step span starts with.
    pub fn step_attributes(&self, step: &Step) -> Map<String, Value> {
        let mut attrs = Map::new();
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
            for step in steps {
                self.run_step(frame, step, parent).await?;
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

    async fn run_form(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<&SpanHandle>,
    ) -> Result<(), Failure> {
        let parent_id = parent.map(SpanHandle::id);
        match &step.kind {
            StepKind::Agent { .. } => self.run_agent(frame, step, parent_id).await,
            StepKind::Run { .. } => self.run_command(frame, step, parent_id).await,
            StepKind::Parallel {
                branches,
                fail_fast,
            } => {
                self.run_parallel(frame, step, parent_id, branches, *fail_fast)
                    .await
            }
            StepKind::Foreach {
                items,
                as_name,
                concurrency,
                steps,
            } => {
                self.run_foreach(frame, step, parent_id, items, as_name, *concurrency, steps)
                    .await
            }
            StepKind::Span {
                name,
                events,
                steps,
            } => {
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
            }
            StepKind::Event(event) => match parent {
                Some(span) => self.add_event(frame, span, event).await,
                // Validation rejects events outside a span; nothing to attach one to here.
                None => Ok(()),
            },
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

fn random_group_id() -> String {
    let bytes: [u8; 12] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("group_{hex}")
}

/// Renders a template of the run's setup (group, names, metadata) off the runtime thread, like
/// a step's; Ctrl-C stops the wait.
async fn setup_render<T: Send + 'static>(
    engine: &Engine,
    root: &Scope,
    work: impl FnOnce(&crate::workflow::template::Templates) -> Result<T, minijinja::Error>
    + Send
    + 'static,
) -> Result<T, minijinja::Error> {
    tokio::select! {
        r = engine.templates.off_thread(work) => r,
        () = root.cancelled() => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "interrupted",
        )),
    }
}

async fn setup_text(
    engine: &Engine,
    root: &Scope,
    source: &str,
    ctx: &Context,
) -> Result<String, minijinja::Error> {
    if !is_template(source) {
        return Ok(source.to_string());
    }
    let source = source.to_string();
    let ctx = ctx.value();
    setup_render(engine, root, move |t| t.render(&source, &ctx)).await
}

/// Renders metadata templates into `into`; the first failure is kept in `error`.
async fn render_metadata(
    engine: &Engine,
    root: &Scope,
    entries: &indexmap::IndexMap<String, LocatedValue>,
    ctx: &Context,
    into: &mut Map<String, Value>,
    error: &mut Option<ErrorInfo>,
) {
    for (key, value) in entries {
        let source = value.value.clone();
        let values = ctx.value();
        match setup_render(engine, root, move |t| t.render_value(&source, &values)).await {
            Ok(v) => {
                into.insert(key.clone(), v);
            }
            Err(e) => {
                let at = format!(
                    "{}:{}:{}",
                    engine.wf.path.display(),
                    value.loc.line,
                    value.loc.col
                );
                error.get_or_insert_with(|| template_error(&at, &format!("metadata.{key}"), &e));
            }
        }
    }
}

pub(crate) async fn run(
    engine: &Engine,
    sinks: Vec<Arc<dyn Sink>>,
    cancel: CancellationToken,
) -> RunOutcome {
    let wf = engine.wf.clone();
    let mut ctx = Context {
        vars: TemplateValue::from_serialize(&engine.vars),
        steps: Arc::new(StepResults::default()),
        trace_id: String::new(),
        group_id: None,
        locals: Vec::new(),
    };
    let root = Scope::root(cancel);
    // A sink that fails for good (the store's disk is full) stops the run like Ctrl-C does,
    // with its reason: steps must not go on running unrecorded.
    let alarm = Alarm::default();
    let _watchdogs = engine.start_watchdogs(&root, &alarm);
    let at = |loc: Loc| format!("{}:{}:{}", wf.path.display(), loc.line, loc.col);

    // The group and the workflow's metadata are rendered once, before the first trace starts;
    // a template failure there fails the first trace.
    let mut setup_error: Option<ErrorInfo> = None;
    let group_id = match (&engine.opts.group, &wf.group_id) {
        (Some(group), _) => Some(group.clone()),
        (None, Some(template)) => match setup_text(engine, &root, &template.value, &ctx).await {
            Ok(g) if g.trim().is_empty() => None,
            Ok(g) => Some(g),
            Err(e) => {
                setup_error = Some(template_error(&at(template.loc), "group_id", &e));
                None
            }
        },
        (None, None) => None,
    };
    // A conversation kept across runs is the natural group of its traces.
    let session_key = wf.all_steps().iter().find_map(|step| match &step.kind {
        StepKind::Agent {
            session: Some(key), ..
        } => Some(key.value.clone()),
        _ => None,
    });
    let session_group = match (&group_id, session_key) {
        (None, Some(key)) => setup_text(engine, &root, &key, &ctx)
            .await
            .ok()
            .filter(|k| !k.trim().is_empty()),
        _ => None,
    };
    let group_id = group_id
        .or(session_group)
        .or_else(|| (wf.traces.len() > 1).then(random_group_id));
    ctx.group_id = group_id.clone();
    let mut base_metadata = Map::new();
    render_metadata(
        engine,
        &root,
        &wf.metadata,
        &ctx,
        &mut base_metadata,
        &mut setup_error,
    )
    .await;

    let mut outcomes = Vec::new();
    let mut status = Status::Ok;
    for (index, def) in wf.traces.iter().enumerate() {
        // TRACEPARENT: the first trace takes the caller's trace id (unless this store already
        // holds it); the others get their own and record the parent as a link.
        let trace_id = match &engine.opts.trace_context {
            Some(tc) if index == 0 && !engine.opts.trace_id_taken => tc.parent.trace_id,
            _ => TraceId::generate(),
        };
        ctx.trace_id = trace_id.to_string();
        let mut metadata = base_metadata.clone();
        let mut trace_error = setup_error.take();
        render_metadata(
            engine,
            &root,
            &def.metadata,
            &ctx,
            &mut metadata,
            &mut trace_error,
        )
        .await;
        for (key, value) in &engine.opts.meta {
            metadata.insert(key.clone(), Value::String(value.clone()));
        }
        // The reserved trace-context keys say only what the run really joined.
        metadata.retain(|k, _| !crate::trace::context::is_reserved(k));
        if let Some(tc) = &engine.opts.trace_context {
            tc.record(&mut metadata);
        }
        let name = match setup_text(engine, &root, &def.name.value, &ctx).await {
            Ok(n) => n,
            Err(e) => {
                trace_error.get_or_insert_with(|| template_error(&at(def.name.loc), "name", &e));
                def.name.value.clone()
            }
        };
        let trace = Trace {
            trace_id,
            name,
            workflow: wf.name.value.clone(),
            group_id: group_id.clone(),
            metadata,
            status: Status::Running,
            started_at: Timestamp::now(),
            ended_at: None,
            usage: Usage::default(),
            cost_usd: None,
            error: None,
            pid: Some(std::process::id()),
        };
        let rec = Recorder::start_watched(trace, sinks.clone(), &alarm);
        engine.set_current(Some(rec.clone()));
        let run = TraceRun {
            engine,
            rec: rec.clone(),
            root: root.clone(),
            outputs: Mutex::new(Map::new()),
            failures: Mutex::new(Vec::new()),
        };
        let frame = Frame {
            ctx: ctx.clone(),
            scope: root.clone(),
        };
        let result = match trace_error {
            Some(error) => Err(Failure::error(error)),
            None => run.run_steps(&frame, &def.steps, None).await,
        };
        // -- The workflow's `expect:`, once the last trace's steps have all succeeded.
        let result = match (&result, &wf.expect) {
            (Ok(()), Some(expect)) if index + 1 == wf.traces.len() => {
                run.check_run_expectations(&frame, expect, &outcomes)
            }
            _ => result,
        };
        engine.set_current(None);
        let (trace_status, error) = match &result {
            Ok(()) => (Status::Ok, None),
            Err(f) if f.cancelled => (Status::Cancelled, Some(ErrorInfo::new("interrupted"))),
            Err(f) => (Status::Error, Some(f.error.clone())),
        };
        let trace = rec.finish(trace_status, error);
        let outputs = run.outputs.into_inner().unwrap_or_else(|p| p.into_inner());
        let failures = run.failures.into_inner().unwrap_or_else(|p| p.into_inner());
        outcomes.push(TraceOutcome {
            trace,
            outputs,
            failures,
        });
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

/// Error data pointing at the span where a failure started.
pub(crate) fn error_at(message: impl Into<String>, data: Value) -> ErrorInfo {
    ErrorInfo::with_data(message, if data.is_null() { json!({}) } else { data })
}
