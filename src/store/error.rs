//! What can go wrong with the store, said so that a user knows what to do next, whichever
//! backend keeps it.
//!
//! A backend translates its own messages ("database is locked", "file is not a database") into
//! these sentences that name the store: SQLite's by result code in [`super::sqlite`].

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A read command found no store file.
    #[error("no traces recorded yet (store {} does not exist)", path.display())]
    Empty { path: PathBuf },

    /// `last` in a store that holds no trace.
    #[error("no traces recorded yet (store {} is empty)", path.display())]
    NoTraces { path: PathBuf },

    /// `last` in a store that holds only traces sent to `serve`: those never count as `last`.
    #[error(
        "no trace recorded by `run` yet (the store {} holds only ingested traces, which `last` \
         never names: give the trace's id, see `agentrace list`)",
        path.display()
    )]
    NoRuns { path: PathBuf },

    #[error("no trace matches {id} in the store {}", path.display())]
    NotFound { id: String, path: PathBuf },

    /// An experiment id, id prefix or name that names no experiment.
    #[error(
        "no experiment matches {reference} in the store {} (see `agentrace list --experiments`)",
        path.display()
    )]
    NoExperiment { reference: String, path: PathBuf },

    #[error(
        "the id {prefix} is ambiguous: it matches {}{}; give more of the id",
        candidates.join(", "),
        if *total > candidates.len() { format!(" and {} more", total - candidates.len()) } else { String::new() }
    )]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
        total: usize,
    },

    #[error(
        "{id:?} is not a trace id: expected `last`, a full trace id (trace_ + 32 hex digits) or \
         a unique prefix or suffix (the short id `list` shows) of at least 4 hex digits"
    )]
    BadId { id: String },

    #[error("{} is not an agentrace store (file is not a database)", path.display())]
    NotADatabase { path: PathBuf },

    #[error(
        "the store {} has schema version {found}, newer than this agentrace knows ({supported}); \
         upgrade agentrace to read it",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },

    #[error("the store {} is corrupted ({detail})", path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error("the store {} is read-only: check the permissions of the file and its directory", path.display())]
    ReadOnly { path: PathBuf },

    #[error("cannot write to the store {}: the disk is full", path.display())]
    DiskFull { path: PathBuf },

    #[error(
        "the store {} stayed locked by another process for too long; try again",
        path.display()
    )]
    Busy { path: PathBuf },

    #[error(
        "cannot open the store {} (check that it and its directory are readable and \
         writable): {detail}",
        path.display()
    )]
    CannotOpen { path: PathBuf, detail: String },

    /// A database server that cannot be reached (down, wrong host or port, a lost connection).
    #[error("cannot reach the store {}: {detail}", path.display())]
    Unreachable { path: PathBuf, detail: String },

    /// A database server that said no: wrong credentials, no such database, TLS refused.
    #[error("the store {} refused the connection: {detail}", path.display())]
    Refused { path: PathBuf, detail: String },

    #[error("cannot {action} the store {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("the store {} failed: {source}", path.display())]
    Database {
        path: PathBuf,
        /// The backend's own error, when no sentence above says it better.
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("the store {} holds a malformed {what}: {detail}", path.display())]
    Malformed {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },

    #[error("the store writer thread stopped unexpectedly; the last spans may not be saved")]
    WriterStopped,

    /// Two stores hold an experiment of one id that are not the same experiment: shards of
    /// `eval --shard` run on another dataset, with another number of shards, …
    #[error(
        "experiment {name} ({id}) differs between the stores ({why}): these are not shards of one \
         run; give each run its own --experiment name"
    )]
    ExperimentMismatch {
        name: String,
        id: String,
        why: String,
    },

    /// A copy finished, and the destination still lacks something of the source.
    #[error(
        "the copy is incomplete: the destination lacks {total} record{} of the source ({}{})",
        if *total == 1 { "" } else { "s" },
        first.join(", "),
        if *total > first.len() { ", …" } else { "" }
    )]
    CopyIncomplete { total: usize, first: Vec<String> },
}

impl StoreError {
    /// The store could be read but not written.
    pub(crate) fn is_read_only(&self) -> bool {
        matches!(
            self,
            StoreError::ReadOnly { .. } | StoreError::CannotOpen { .. }
        )
    }
}
