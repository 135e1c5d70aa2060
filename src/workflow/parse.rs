//! Placeholder: being written.
use std::path::Path;

use super::{Diagnostic, Workflow};
use crate::error::Error;

pub fn parse_file(_path: &Path) -> Result<Workflow, Error> {
    Err(Error::usage("parse not written yet"))
}

pub fn parse_str(_file: &str, _source: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
    (None, Vec::new())
}
