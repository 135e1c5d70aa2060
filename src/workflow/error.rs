//! What can go wrong loading a workflow file: it cannot be read, or it has problems.
//!
//! The workflow module reports its own failures rather than building the top-level
//! [`crate::error::Error`], which wraps this one: the lower layer does not reach up for the
//! type of the layer that renders it. Messages and exit codes are decided there, not here.

use std::path::PathBuf;

use super::Diagnostic;

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
