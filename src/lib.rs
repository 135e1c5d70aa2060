//! agentrace: a command-line workflow runner for LLM agents that records every run as a nested,
//! stored trace.
//!
//! The flow of a run: a workflow file is parsed, then validated (`workflow::load`: `parse`, then
//! `validate`), and run by the `engine`. The engine calls models through `llm` (the
//! OpenAI-compatible client, the offline model, replay from a recorded trace) and opens spans on
//! a `trace::Recorder`, which forwards every record to its sinks: the store's writer thread and
//! the live progress on stderr (`render::progress`). What the engine needs from a store (the
//! history of a `session:` conversation) it asks through a trait that `cli` fills in, so the
//! engine never sees a database.
//!
//! The flow back out: the commands read the `store` (one interface; SQL lives in its backend's
//! folder, `store/sqlite/`) and hand the trace model to `render` (tree, table, JSON, diff,
//! stats) or `export` (OTLP, Chrome trace, the OpenAI dashboard, a self-contained HTML page).
//! `ingest` reads what other tools send (the OpenAI Agents SDK, any OpenTelemetry SDK) into the
//! same model, for `serve` to store and show (its API and the browser UI). A run that pushes
//! (`AGENTRACE_REMOTE`) records through one more sink, `remote`, which sends agentrace's own OTLP
//! to a `serve` and spools what it cannot send.
//!
//! Layers, enforced by `tests/e2e/layers.rs`: the leaves (`trace`, the model; `query`, the search
//! language; `causes`, error chains) import nothing above them; `workflow`, `llm` and `ingest`
//! read inputs; `store`, `render` and `export` work on the trace model; the `engine` imports none
//! of store, render, export or cli; `cli` (one file per subcommand) and `serve` put it together,
//! and the one `Error` turns every module's error into a message and an exit code.

pub mod causes;
pub mod cli;
pub mod engine;
pub mod error;
pub mod eval;
pub mod export;
pub mod ingest;
pub mod llm;
pub mod query;
pub mod remote;
pub mod render;
pub mod serve;
pub mod store;
pub mod trace;
pub mod workflow;

pub use cli::main_entry;

/// mimalloc, with a memory budget for the threads that render templates.
#[global_allocator]
static ALLOCATOR: workflow::budget::Budgeted = workflow::budget::Budgeted;
pub use error::Error;
