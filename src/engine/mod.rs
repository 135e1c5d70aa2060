//! The engine: runs a validated workflow on tokio, one trace after another, opening spans on a
//! [`Recorder`](crate::trace::Recorder) for every step. It never writes to the store or the
//! terminal itself; sinks do, and `session:` histories go through the [`SessionHistory`] the
//! caller injects.

mod agent;
mod command;
pub mod context;
mod executor;
mod expect;
mod flow;
mod join;
mod limits;
mod mcp;
pub mod models;
mod path;
mod retry;
mod scope;
mod scores;
mod session;
mod tools;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::trace::context::TraceContext;
use crate::trace::{ErrorInfo, Sink, Status, Trace};
use crate::workflow::template::Templates;
use crate::workflow::{LocatedValue, StepKind, Workflow};

pub use expect::StepFailure;
pub use join::join_task;
pub use models::Models;
pub use session::{SessionError, SessionHistory};

/// What the command line adds to a workflow.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// `--var K=V`, each K a declared var.
    pub vars: Vec<(String, String)>,
    /// `--group ID`.
    pub group: Option<String>,
    /// `--meta K=V`.
    pub meta: Vec<(String, String)>,
    pub offline: bool,
    /// `--replay TRACE_ID`: every model call is answered from this recorded trace.
    pub replay: Option<Arc<crate::llm::replay::Recording>>,
    /// Keep prompts and outputs out of every span.
    pub no_content: bool,
    /// `--max-concurrency`: model calls in flight at once.
    pub max_concurrency: Option<u32>,
    /// `--max-tokens` and `--max-cost`: budgets over the file's.
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    // -- W3C trace context (OTLP export) --
    /// The trace context the run joins (`TRACEPARENT`, `TRACESTATE`).
    pub trace_context: Option<TraceContext>,
    /// The joined trace id is already in the store (an earlier run under the same
    /// `TRACEPARENT`): every trace gets a fresh id and records the parent, which the exporter
    /// turns into a span link.
    pub trace_id_taken: bool,
    // -- Evaluation --
    /// The dataset case this run evaluates (`agentrace eval`): its vars go over the workflow's
    /// (typed, unlike `--var`'s text), and templates (the scorers' above all) read it as `case`.
    pub case: Option<CaseInput>,
}

/// One case of an evaluation, as the engine sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaseInput {
    /// The case's id in its dataset.
    pub id: String,
    /// The vars the workflow runs with, each a declared var.
    pub vars: Map<String, Value>,
    /// The reference fields (`expected`, …) that scorers read as `case.<field>`.
    pub reference: Map<String, Value>,
}

/// Receives the text of agent answers as they stream: `(agent, delta)`. An empty delta says
/// that a model call's answer is over (whether it succeeded or not), so that text held back
/// (see [`crate::trace::redact::StreamRedactor`]) is shown before the step's own output.
pub type StreamFn = dyn Fn(&str, &str) + Send + Sync;

/// One trace the run produced, with the outputs of its steps that have ids.
#[derive(Clone, Debug)]
pub struct TraceOutcome {
    pub trace: Trace,
    pub outputs: Map<String, Value>,
    /// Where its failures started (for CI annotations), in the order they happened.
    pub failures: Vec<StepFailure>,
}

#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub traces: Vec<TraceOutcome>,
    /// `ok`, `error` (a step failed) or `cancelled`.
    pub status: Status,
}

/// A step that did not succeed: the error for its span, and whether it was an interruption.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    pub error: ErrorInfo,
    pub cancelled: bool,
}

impl Failure {
    pub fn error(error: ErrorInfo) -> Self {
        Failure {
            error,
            cancelled: false,
        }
    }

    pub fn cancelled() -> Self {
        Failure {
            error: ErrorInfo::new("cancelled"),
            cancelled: true,
        }
    }

    pub fn status(&self) -> Status {
        if self.cancelled {
            Status::Cancelled
        } else {
            Status::Error
        }
    }
}

/// Everything a run needs, resolved before anything is written.
pub struct Engine {
    pub(crate) wf: Arc<Workflow>,
    pub(crate) templates: Templates,
    pub(crate) models: Models,
    pub(crate) opts: RunOptions,
    pub(crate) vars: Map<String, Value>,
    /// Compiled JSON Schemas: tool parameters by tool name, output schemas by agent name.
    pub(crate) tool_schemas: HashMap<String, Arc<jsonschema::Validator>>,
    pub(crate) output_schemas: HashMap<String, Arc<jsonschema::Validator>>,
    /// Where `session:` conversations are kept (`run` injects the store).
    pub(crate) sessions: Option<Arc<dyn SessionHistory>>,
    /// Under `--replay`: what this run said in each session, kept here instead of the store.
    pub(crate) replayed_sessions: Mutex<HashMap<String, Vec<crate::llm::Message>>>,
    pub(crate) on_text: Option<Arc<StreamFn>>,
    pub(crate) prices: limits::Prices,
    pub(crate) budget: limits::Budget,
    /// Caps model calls in flight across the run.
    pub(crate) limiter: Option<Arc<tokio::sync::Semaphore>>,
    /// The trace being recorded, for events that come from outside any step (budgets).
    pub(crate) current: Arc<Mutex<Option<crate::trace::Recorder>>>,
    /// MCP tool servers, started at first use and shared by every run of the workflow.
    pub(crate) mcp: Arc<mcp::McpServers>,
}

/// The run's vars: the workflow's defaults, `--var`s over them (declared ones only), then the
/// evaluated case's typed vars.
fn vars_of(wf: &Workflow, opts: &RunOptions) -> Result<Map<String, Value>, Error> {
    let mut vars = crate::workflow::vars::with_overrides(wf, &opts.vars)
        .map_err(|e| Error::usage(e.to_string()))?;
    if let Some(case) = &opts.case {
        for (name, value) in &case.vars {
            vars.insert(name.clone(), value.clone());
        }
    }
    Ok(vars)
}

fn compile_schema(
    what: &str,
    schema: &LocatedValue,
    wf: &Workflow,
) -> Result<Arc<jsonschema::Validator>, Error> {
    jsonschema::validator_for(&schema.value)
        .map(Arc::new)
        .map_err(|e| {
            Error::usage(format!(
                "{}:{}:{}: invalid JSON Schema for {what}: {e}",
                wf.path.display(),
                schema.loc.line,
                schema.loc.col
            ))
        })
}

/// Every way `value` fails `validator`, each with the path where it fails.
pub(crate) fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at {path})")
            }
        })
        .collect()
}

/// Whether any agent step keeps a conversation.
fn uses_sessions(wf: &Workflow) -> bool {
    wf.all_steps().iter().any(|s| {
        matches!(
            &s.kind,
            StepKind::Agent {
                session: Some(_),
                ..
            }
        )
    })
}

impl Engine {
    /// Checks the command-line additions against the workflow and resolves model access. Fails
    /// with exit code 2 errors only; nothing has been written when it fails.
    pub fn new(wf: Workflow, opts: RunOptions) -> Result<Engine, Error> {
        let vars = vars_of(&wf, &opts)?;
        if opts.no_content && uses_sessions(&wf) {
            return Err(Error::usage(
                "--no-content cannot be used with `session:` steps: a conversation kept across \
                 runs has to store its messages",
            ));
        }
        let mut tool_schemas = HashMap::new();
        for (name, tool) in &wf.tools {
            if let Some(schema) = &tool.parameters {
                tool_schemas.insert(
                    name.clone(),
                    compile_schema(&format!("the parameters of tool `{name}`"), schema, &wf)?,
                );
            }
        }
        let mut output_schemas = HashMap::new();
        for (name, agent) in &wf.agents {
            if let Some(schema) = &agent.output_schema {
                output_schemas.insert(
                    name.clone(),
                    compile_schema(&format!("the output_schema of agent `{name}`"), schema, &wf)?,
                );
            }
        }
        let mcp = Arc::new(mcp::McpServers::resolve(&wf, &models::used_agents(&wf))?);
        let models = match &opts.replay {
            Some(recording) => Models::replay(&wf, recording.clone()),
            None => Models::resolve(&wf, opts.offline)?,
        };
        // What every run of this workflow shares, then this run's own parts.
        let shared = Engine {
            prices: limits::Prices::new(&wf.prices),
            budget: limits::Budget::new(&wf, None, None),
            limiter: None,
            current: Arc::new(Mutex::new(None)),
            mcp,
            wf: Arc::new(wf),
            templates: Templates::new(),
            models,
            opts: RunOptions::default(),
            vars: Map::new(),
            tool_schemas,
            output_schemas,
            sessions: None,
            replayed_sessions: Mutex::new(HashMap::new()),
            on_text: None,
        };
        shared.with_run(opts, vars)
    }

    /// Another run of this engine's workflow with `opts` (an evaluation's next case), sharing
    /// what does not change from run to run: the parsed workflow, the compiled schemas, the
    /// templates and the model clients with their connection pools. `opts.offline` and
    /// `opts.replay` must be this engine's: the model clients were chosen by them.
    pub fn for_case(&self, opts: RunOptions) -> Result<Engine, Error> {
        let vars = vars_of(&self.wf, &opts)?;
        self.with_run(opts, vars)
    }

    /// An engine for one run of this engine's workflow: the shared parts cloned (they are
    /// `Arc`s and maps of them), the run's own built from `opts`.
    fn with_run(&self, opts: RunOptions, vars: Map<String, Value>) -> Result<Engine, Error> {
        let limit = opts
            .max_concurrency
            .or(self.wf.max_concurrency.as_ref().map(|m| m.value));
        if limit == Some(0) {
            return Err(Error::usage("--max-concurrency must be at least 1"));
        }
        Ok(Engine {
            prices: limits::Prices::new(&self.wf.prices),
            budget: limits::Budget::new(&self.wf, opts.max_tokens, opts.max_cost_usd),
            limiter: limit.map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
            current: Arc::new(Mutex::new(None)),
            mcp: self.mcp.clone(),
            wf: self.wf.clone(),
            templates: self.templates.clone(),
            models: self.models.clone(),
            opts,
            vars,
            tool_schemas: self.tool_schemas.clone(),
            output_schemas: self.output_schemas.clone(),
            sessions: self.sessions.clone(),
            replayed_sessions: Mutex::new(HashMap::new()),
            on_text: self.on_text.clone(),
        })
    }

    pub(crate) fn start_watchdogs(
        &self,
        root: &scope::Scope,
        alarm: &crate::trace::Alarm,
    ) -> limits::Watchdogs {
        limits::watchdogs(
            self.wf.timeout.as_ref().map(|t| t.value),
            &self.budget,
            root,
            self.current.clone(),
            alarm,
        )
    }

    pub(crate) fn set_current(&self, rec: Option<crate::trace::Recorder>) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = rec;
    }

    /// The evaluated case as templates and scorers see it: its `id` and reference fields (an
    /// empty mapping outside `agentrace eval`).
    pub(crate) fn case_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(case) = &self.opts.case {
            map.insert("id".into(), Value::String(case.id.clone()));
            for (k, v) in &case.reference {
                map.insert(k.clone(), v.clone());
            }
        }
        Value::Object(map)
    }

    /// Whether the run needs the store for `session:` conversations.
    pub fn uses_sessions(&self) -> bool {
        uses_sessions(&self.wf)
    }

    /// Whether the run does steps at once (`parallel:` or `foreach:`): the ones worth a
    /// worker thread per core (see `cli::engine_runtime`).
    pub fn fans_out(&self) -> bool {
        self.wf.fans_out()
    }

    /// Keeps `session:` conversations in `sessions`.
    pub fn with_sessions(mut self, sessions: Arc<dyn SessionHistory>) -> Self {
        self.sessions = Some(sessions);
        self
    }

    /// Shows agent text as it streams.
    pub fn with_text_stream(mut self, on_text: Arc<StreamFn>) -> Self {
        self.on_text = Some(on_text);
        self
    }

    /// Stops the MCP servers the run started (every engine made from this one shares them):
    /// call it once the last run is over, before the process exits, whatever way the run
    /// ended.
    pub async fn shutdown(&self) {
        self.mcp.shutdown().await;
    }

    /// Runs every trace of the workflow in order; stops at the first that fails or is
    /// cancelled.
    ///
    /// The engine is shared (an `Arc`) because a fan-out's branches run as tasks of their own,
    /// on whichever worker thread of the runtime is free.
    pub async fn run(
        self: &Arc<Self>,
        sinks: Vec<Arc<dyn Sink>>,
        cancel: CancellationToken,
    ) -> RunOutcome {
        executor::run(self, sinks, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An evaluation's cases are made from one engine: each gets its own vars and budget, and
    /// all share the model clients (one connection pool) and compiled schemas.
    #[test]
    fn a_case_engine_shares_the_clients_and_has_its_own_vars() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.yaml");
        std::fs::write(
            &path,
            "name: t\nmodel: m\nvars: { city: Rome, n: 1 }\nagents:\n  a:\n    instructions: Hi.\n    output_schema: { type: object }\nsteps:\n  - { id: s, agent: a, input: \"{{ vars.city }}\" }\n",
        )
        .unwrap();
        let wf = crate::workflow::load(&path).unwrap();
        let base = RunOptions {
            offline: true,
            ..RunOptions::default()
        };
        let engine = Engine::new(wf, base.clone()).unwrap();
        let case = engine
            .for_case(RunOptions {
                case: Some(CaseInput {
                    id: "c1".into(),
                    vars: serde_json::from_value(serde_json::json!({"city": "Oslo"})).unwrap(),
                    reference: Map::new(),
                }),
                max_tokens: Some(10),
                ..base
            })
            .unwrap();
        assert_eq!(case.vars["city"], "Oslo");
        assert_eq!(case.vars["n"], 1);
        assert_eq!(
            engine.vars["city"], "Rome",
            "the prototype keeps its own vars"
        );
        let (a, b) = (
            engine.models.for_agent("a").unwrap(),
            case.models.for_agent("a").unwrap(),
        );
        assert!(Arc::ptr_eq(&a, &b), "one client for every case");
        assert!(Arc::ptr_eq(
            &engine.output_schemas["a"],
            &case.output_schemas["a"]
        ));
        assert!(Arc::ptr_eq(&engine.wf, &case.wf));
        let bad = engine.for_case(RunOptions {
            vars: vec![("nope".into(), "1".into())],
            ..RunOptions::default()
        });
        assert!(bad.is_err(), "an undeclared --var is refused per case too");
    }
}
