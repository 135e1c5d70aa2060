//! The store: where every run's trace lands, incrementally, and where `show`, `list`, `export`
//! and `serve` read it back.
//!
//! The commands name only what this module exports: [`Store`] (open, write through
//! [`StoreWriter`], resolve, load, list, search, delete, ingest, sessions), [`StoreError`],
//! [`ListFilter`], the row types every backend returns ([`rows`]) and the experiments of
//! `agentrace eval` ([`experiment`]). Today the one backend is
//! the embedded SQLite file in [`sqlite`], and `Store` is its type. A second backend (the
//! PostgreSQL team store) goes in a folder of its own beside `sqlite/`, with its SQL and its
//! migrations; `Store` then becomes the one type that chooses between them (an enum over the
//! backends, or a trait they implement, shaped by what the two really share), so that no
//! command changes. What is not SQL (the errors, the list filter, the shape of rows) lives
//! here, once for every backend.

pub mod copy;
mod error;
pub mod experiment;
pub mod filter;
pub mod rows;
mod sqlite;

pub use error::StoreError;
pub use experiment::{Experiment, ExperimentRun, ExperimentShard, ExperimentStatus};
pub use filter::ListFilter;
pub use rows::{IngestSummary, SessionRow, TraceFingerprint};
pub use sqlite::{Store, StoreWriter};
