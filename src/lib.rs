//! agentrace: a command-line workflow runner for LLM agents that records every run as a nested,
//! stored trace.
//!
//! The flow: a workflow file is parsed and validated (`workflow`), run by the `engine`, which
//! opens spans on a `trace::Recorder`; the recorder forwards them to sinks (the SQLite `store`,
//! progress on stderr). `show` and `list` read the store back and `render` it.

pub mod causes;
pub mod cli;
pub mod engine;
pub mod error;
pub mod export;
pub mod ingest;
pub mod llm;
pub mod query;
pub mod render;
pub mod serve;
pub mod store;
pub mod trace;
pub mod workflow;

pub use cli::main_entry;

/// The system allocator, with a memory budget for the threads that render templates.
#[global_allocator]
static ALLOCATOR: workflow::budget::Budgeted = workflow::budget::Budgeted;
pub use error::Error;
