//! The top-level error, its exit code, and the one place errors are rendered.
//!
//! A workflow that runs and fails is not an error here: `run` reports it as an outcome with
//! [`ExitCode::Failed`]. These are the cases where the input was unusable or the environment broke.

use std::path::PathBuf;

use crate::eval::dataset::DatasetError;
use crate::llm::replay::ReplayError;
use crate::store::StoreError;
use crate::workflow::WorkflowError;

/// How the process ends. Each variant is one documented exit code (the README's *Exit codes*);
/// [`ExitCode::code`] is the one place they become numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Ok,
    /// The workflow ran and failed: a step failed or an expectation did not hold.
    Failed,
    /// The input was unusable: bad arguments, an unreadable or invalid workflow, an unknown
    /// trace id, missing model credentials, an unusable store.
    Usage,
    /// Interrupted by SIGINT or SIGTERM; the trace is kept, marked `cancelled`.
    Interrupted,
    /// `eval report` of a sharded experiment some of whose shards are not in yet (missing,
    /// running or cancelled): no gate was applied.
    Incomplete,
}

impl ExitCode {
    /// The process's exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Ok => 0,
            ExitCode::Failed => 1,
            ExitCode::Usage => 2,
            ExitCode::Interrupted => 130,
            ExitCode::Incomplete => 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command-line input that clap could not catch.
    #[error("{message}")]
    Usage { message: String },

    /// An unreadable workflow file, or one with problems (all reported together).
    #[error(transparent)]
    Workflow(#[from] WorkflowError),

    #[error(
        "no model access: set OPENAI_API_KEY (and optionally OPENAI_BASE_URL for an \
         OpenAI-compatible server), or pass --offline to use the built-in offline model"
    )]
    NoModelAccess,

    #[error("the API key variable {var} named by {what} is not set")]
    MissingKeyVar { var: String, what: String },

    #[error(transparent)]
    Store(#[from] StoreError),

    /// An eval dataset with problems (all reported together, each at its line).
    #[error(transparent)]
    Dataset(#[from] DatasetError),

    /// Traces given to `--replay` that cannot be replayed.
    #[error(transparent)]
    Replay(#[from] ReplayError),

    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },

    /// An export that could not be made or delivered.
    #[error("export failed: {0}")]
    Export(String),

    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage { .. }
            | Error::Workflow(_)
            | Error::NoModelAccess
            | Error::MissingKeyVar { .. }
            | Error::Store(_)
            | Error::Dataset(_)
            | Error::Replay(_)
            | Error::WriteFile { .. }
            | Error::Runtime(_) => ExitCode::Usage,
            Error::Export(_) => ExitCode::Failed,
        }
    }

    /// The one place errors become text (for stderr).
    pub fn render(&self) -> String {
        match self {
            Error::Workflow(WorkflowError::Invalid { diagnostics }) => problems(diagnostics, ""),
            Error::Dataset(DatasetError { problems: found }) => problems(found, " in the dataset"),
            other => format!("error: {other}\n"),
        }
    }
}

/// Every problem of an input file, then how many there were.
fn problems(found: &[crate::workflow::diagnostic::Diagnostic], place: &str) -> String {
    let mut out = String::new();
    for d in found {
        out.push_str(&format!("error: {d}"));
    }
    let n = found.len();
    out.push_str(&format!(
        "error: {n} problem{} found{place}; nothing was run\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(ExitCode::Ok.code(), 0);
        assert_eq!(ExitCode::Failed.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::Interrupted.code(), 130);
        assert_eq!(ExitCode::Incomplete.code(), 3);
        assert_eq!(Error::Export("x".into()).exit_code(), ExitCode::Failed);
        assert_eq!(Error::NoModelAccess.exit_code(), ExitCode::Usage);
        assert_eq!(Error::usage("x").exit_code(), ExitCode::Usage);
        let invalid = WorkflowError::Invalid {
            diagnostics: Vec::new(),
        };
        assert_eq!(Error::from(invalid).exit_code(), ExitCode::Usage);
        let replay = Error::from(ReplayError::NoContent { trace: "t1".into() });
        assert_eq!(replay.exit_code(), ExitCode::Usage);
        assert!(replay.render().starts_with("error: cannot replay t1: "));
        let dataset = Error::from(DatasetError {
            problems: Vec::new(),
        });
        assert_eq!(dataset.exit_code(), ExitCode::Usage);
    }

    #[test]
    fn missing_access_names_both_variables_and_offline() {
        let msg = Error::NoModelAccess.render();
        assert!(msg.contains("OPENAI_API_KEY"));
        assert!(msg.contains("OPENAI_BASE_URL"));
        assert!(msg.contains("--offline"));
    }
}
