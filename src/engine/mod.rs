//! The engine: runs a validated workflow on tokio, one trace after another, opening spans on a
//! [`Recorder`] for every step. It never writes to the store or the terminal itself; sinks do.

mod agent;
mod command;
pub mod context;
mod executor;
pub mod models;

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::trace::{ErrorInfo, Sink, Status, Trace};
use crate::workflow::Workflow;
use crate::workflow::template::Templates;

pub use models::Models;

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
    /// Keep prompts and outputs out of every span.
    pub no_content: bool,
}

/// One trace the run produced, with the outputs of its steps that have ids.
#[derive(Clone, Debug)]
pub struct TraceOutcome {
    pub trace: Trace,
    pub outputs: Map<String, Value>,
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
}

impl Engine {
    /// Checks the command-line additions against the workflow and resolves model access. Fails
    /// with exit code 2 errors only; nothing has been written when it fails.
    pub fn new(wf: Workflow, opts: RunOptions) -> Result<Engine, Error> {
        let mut vars = Map::new();
        for (name, value) in &wf.vars {
            vars.insert(name.clone(), value.value.clone());
        }
        for (name, text) in &opts.vars {
            let Some(default) = vars.get(name) else {
                let known: Vec<&str> = wf.vars.keys().map(String::as_str).collect();
                let hint = if known.is_empty() {
                    format!("{} declares no vars", wf.path.display())
                } else {
                    format!("declared vars: {}", known.join(", "))
                };
                return Err(Error::usage(format!(
                    "unknown var `{name}` in --var: {hint}"
                )));
            };
            let value = if default.is_string() {
                Value::String(text.clone())
            } else {
                serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
            };
            vars.insert(name.clone(), value);
        }
        let models = Models::resolve(&wf, opts.offline)?;
        Ok(Engine {
            wf: Arc::new(wf),
            templates: Templates::new(),
            models,
            opts,
            vars,
        })
    }

    /// Runs every trace of the workflow in order; stops at the first that fails or is
    /// cancelled.
    pub async fn run(&self, sinks: Vec<Arc<dyn Sink>>, cancel: CancellationToken) -> RunOutcome {
        executor::run(self, sinks, cancel).await
    }
}
