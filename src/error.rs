//! The top-level error, its exit code, and the one place errors are rendered.
//!
//! A workflow that runs and fails is not an error here: `run` reports it as an outcome with
//! [`EXIT_FAILED`]. These are the cases where the input was unusable or the environment broke.

use std::path::PathBuf;

use crate::store::StoreError;
use crate::workflow::WorkflowError;

/// Success.
pub const EXIT_OK: i32 = 0;
/// The workflow ran and failed: a step failed or an expectation did not hold.
pub const EXIT_FAILED: i32 = 1;
/// The input was unusable: bad arguments, an unreadable or invalid workflow, an unknown trace id,
/// missing model credentials, an unusable store.
pub const EXIT_USAGE: i32 = 2;
/// Interrupted by SIGINT or SIGTERM; the trace is kept, marked `cancelled`.
pub const EXIT_INTERRUPTED: i32 = 130;

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

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. }
            | Error::Workflow(_)
            | Error::NoModelAccess
            | Error::MissingKeyVar { .. }
            | Error::Store(_)
            | Error::WriteFile { .. }
            | Error::Runtime(_) => EXIT_USAGE,
            Error::Export(_) => EXIT_FAILED,
        }
    }

    /// The one place errors become text (for stderr).
    pub fn render(&self) -> String {
        match self {
            Error::Workflow(WorkflowError::Invalid { diagnostics }) => {
                let mut out = String::new();
                for d in diagnostics {
                    out.push_str(&format!("error: {d}"));
                }
                let n = diagnostics.len();
                out.push_str(&format!(
                    "error: {n} problem{} found; nothing was run\n",
                    if n == 1 { "" } else { "s" }
                ));
                out
            }
            other => format!("error: {other}\n"),
        }
    }
}

/// `e` and each of its causes, `: `-separated: "builder error" alone does not say that a
/// certificate file could not be read.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Some errors repeat their cause in their own message.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(EXIT_OK, 0);
        assert_eq!(EXIT_FAILED, 1);
        assert_eq!(EXIT_USAGE, 2);
        assert_eq!(EXIT_INTERRUPTED, 130);
        assert_eq!(Error::NoModelAccess.exit_code(), EXIT_USAGE);
        assert_eq!(Error::usage("x").exit_code(), EXIT_USAGE);
        let invalid = WorkflowError::Invalid {
            diagnostics: Vec::new(),
        };
        assert_eq!(Error::from(invalid).exit_code(), EXIT_USAGE);
    }

    #[test]
    fn missing_access_names_both_variables_and_offline() {
        let msg = Error::NoModelAccess.render();
        assert!(msg.contains("OPENAI_API_KEY"));
        assert!(msg.contains("OPENAI_BASE_URL"));
        assert!(msg.contains("--offline"));
    }
}
