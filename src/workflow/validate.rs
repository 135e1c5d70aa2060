//! Placeholder: being written.
use super::{Diagnostic, Workflow};

pub fn validate(_wf: &Workflow) -> Vec<Diagnostic> {
    Vec::new()
}
