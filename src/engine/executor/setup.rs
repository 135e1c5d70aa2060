//! What is decided before a trace's first step runs: the run's group id (once, for every trace)
//! and each trace's header (its id, name and metadata). These are templates rendered outside
//! any step, so they live apart from the step walk; a template that fails here does not stop
//! the run before it starts: it becomes the failure of the trace it belongs to, which is still
//! recorded, with its place in the workflow.

use serde_json::{Map, Value};

use super::super::Engine;
use super::super::context::Context;
use super::super::scope::Scope;
use super::{location, template_error};
use crate::trace::{ErrorInfo, Trace, TraceId};
use crate::workflow::{LocatedValue, StepKind, TraceDef};

/// A trace as it starts, and the error it fails with before its first step (a template of its
/// header, or of the run's setup, that did not render).
pub(super) struct Header {
    pub trace: Trace,
    pub error: Option<ErrorInfo>,
}

/// The group id every trace of the run carries, chosen once before the first trace starts so
/// that the traces of one run (and of one conversation) can be found together: `--group`, else
/// the workflow's `group_id:` template, else the session key of an agent step, else a random id
/// when the workflow has more than one trace. A `group_id:` that fails to render leaves its
/// error in `setup_error`, for the first trace to fail with.
pub(super) async fn group_id(
    engine: &Engine,
    root: &Scope,
    ctx: &Context,
    setup_error: &mut Option<ErrorInfo>,
) -> Option<String> {
    let wf = &engine.wf;
    let group_id = match (&engine.opts.group, &wf.group_id) {
        (Some(group), _) => Some(group.clone()),
        (None, Some(template)) => match setup_text(engine, root, &template.value, ctx).await {
            Ok(g) if g.trim().is_empty() => None,
            Ok(g) => Some(g),
            Err(e) => {
                *setup_error = Some(template_error(
                    &location(engine, template.loc),
                    "group_id",
                    &e,
                ));
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
        (None, Some(key)) => setup_text(engine, root, &key, ctx)
            .await
            .ok()
            .filter(|k| !k.trim().is_empty()),
        _ => None,
    };
    group_id
        .or(session_group)
        .or_else(|| (wf.traces.len() > 1).then(random_group_id))
}

/// The header of trace `index`, built before its recorder starts because the sinks (the store,
/// an OTLP exporter) write the header first: its id (the caller's, from TRACEPARENT, for the
/// first trace), set in `ctx` so that its templates can use `trace.id`; its metadata (the
/// workflow's, rendered once, then the trace's own, then `--meta`, then the trace context that
/// was joined); and its rendered name. `error` is the run's setup error, if any, which the
/// first trace takes; a failure here is kept beside it (the first one wins).
pub(super) async fn trace_header(
    engine: &Engine,
    root: &Scope,
    ctx: &mut Context,
    index: usize,
    def: &TraceDef,
    base_metadata: &Map<String, Value>,
    error: Option<ErrorInfo>,
) -> Header {
    // TRACEPARENT: the first trace takes the caller's trace id (unless this store already
    // holds it); the others get their own and record the parent as a link.
    let trace_id = match &engine.opts.trace_context {
        Some(tc) if index == 0 && !engine.opts.trace_id_taken => tc.parent.trace_id,
        _ => TraceId::generate(),
    };
    ctx.trace_id = trace_id.to_string();
    let mut metadata = base_metadata.clone();
    let mut trace_error = error;
    render_metadata(
        engine,
        root,
        &def.metadata,
        ctx,
        &mut metadata,
        &mut trace_error,
    )
    .await;
    for (key, value) in &engine.opts.meta {
        metadata.insert(key.clone(), Value::String(value.clone()));
    }
    // The reserved trace-context keys say only what the run really joined, and the offline
    // mark only what answered it.
    metadata.retain(|k, _| {
        !crate::trace::context::is_reserved(k) && k != crate::trace::model::META_OFFLINE
    });
    if engine.opts.offline {
        metadata.insert(
            crate::trace::model::META_OFFLINE.to_string(),
            Value::Bool(true),
        );
    }
    if let Some(tc) = &engine.opts.trace_context {
        tc.record(&mut metadata);
    }
    let name = match setup_text(engine, root, &def.name.value, ctx).await {
        Ok(n) => n,
        Err(e) => {
            trace_error
                .get_or_insert_with(|| template_error(&location(engine, def.name.loc), "name", &e));
            def.name.value.clone()
        }
    };
    let trace = Trace {
        group_id: ctx.group_id.clone(),
        metadata,
        ..Trace::running(trace_id, name, engine.wf.name.value.clone())
    };
    Header {
        trace,
        error: trace_error,
    }
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
    if !crate::workflow::template::is_template(source) {
        return Ok(source.to_string());
    }
    let source = source.to_string();
    let ctx = ctx.value();
    setup_render(engine, root, move |t| t.render(&source, &ctx)).await
}

/// Renders metadata templates into `into`; the first failure is kept in `error`.
pub(super) async fn render_metadata(
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
                let at = location(engine, value.loc);
                error.get_or_insert_with(|| template_error(&at, &format!("metadata.{key}"), &e));
            }
        }
    }
}
