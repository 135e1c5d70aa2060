//! Workflow files: the typed schema, parsing YAML with locations, validation, and templates.

pub mod budget;
pub mod diagnostic;
pub mod expect;
#[cfg(test)]
mod fuzz;
pub mod node;
pub mod parse;
pub mod schema;
pub mod template;
pub mod validate;

pub use diagnostic::{Diagnostic, Loc};
pub use schema::*;
