//! What can go wrong loading a workflow file: it cannot be read, or it has problems.
//!
//! The workflow module reports its own failures rather than building the top-level `Error`,
//! which wraps this one (`#[from]`): a lower layer does not reach up for the type of the layer
//! that renders it. How the problems are printed and the exit code are decided up there.

use std::path::PathBuf;

use super::diagnostic::Diagnostic;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// One or more problems in the file, all reported together, in file order.
    #[error("{} problem(s) in the workflow", diagnostics.len())]
    Invalid { diagnostics: Vec<Diagnostic> },
}
