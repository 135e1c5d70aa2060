//! The store: where every run's trace lands, incrementally, and where `show`, `list`, `export`
//! and `serve` read it back.
//!
//! Two backends keep it: the embedded SQLite file ([`sqlite`], the default, one machine) and a
//! PostgreSQL database ([`postgres`], the team store that many machines write at once). The
//! [`Location`] a user gives (`--store`, `AGENTRACE_STORE`: a path, `sqlite:PATH` or a
//! `postgres://` URL) picks one, and [`Store`] is the one type every command holds: an enum
//! over the two, whose methods are the backends' own (the SQL, and what differs by dialect:
//! full-text search, upserts, JSON, how a reader tells a live run from a dead one) or, where
//! the same steps serve both, written here once over those. The run's writer thread
//! ([`StoreWriter`]) is the same for both and hands each backend a batch to write in one
//! transaction. What is not SQL (the errors, the list filter, the shape of rows) lives here,
//! once for every backend.

/// Calls the same method of whichever backend holds the store.
macro_rules! backend {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

pub mod copy;
mod error;
pub mod experiment;
pub mod filter;
mod ingest;
pub mod location;
mod postgres;
mod reference;
pub mod rows;
mod sqlite;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use error::StoreError;
pub use experiment::{Experiment, ExperimentRun, ExperimentShard, ExperimentStatus};
pub use filter::ListFilter;
pub use location::Location;
pub use rows::{IngestSummary, SessionRow, TraceFingerprint};
pub use writer::StoreWriter;

use crate::llm::Message;
use crate::trace::{Score, SpanId, Status, Timestamp, Trace, TraceDoc, TraceId};
use writer::Record;

/// An open store, of either backend.
pub enum Store {
    Sqlite(sqlite::Store),
    Postgres(self::postgres::Store),
}

/// Where [`Store::wait_for_change`] left off.
#[derive(Default)]
pub struct ChangeCursor(Option<i64>);

impl Store {
    /// Opens the store at `location`, creating it (an SQLite file and its directory; the
    /// tables of a PostgreSQL database) if needed, and brings its schema up to date.
    pub fn open(location: impl Into<Location>) -> Result<Store, StoreError> {
        match location.into() {
            Location::Sqlite(path) => sqlite::Store::open(&path).map(Store::Sqlite),
            Location::Postgres(url) => self::postgres::Store::open(&url, true).map(Store::Postgres),
        }
    }

    /// Opens an existing store for reading commands: a missing SQLite file, or a database
    /// without agentrace's tables, is [`StoreError::Empty`] and is never created.
    pub fn open_existing(location: impl Into<Location>) -> Result<Store, StoreError> {
        match location.into() {
            Location::Sqlite(path) => sqlite::Store::open_existing(&path).map(Store::Sqlite),
            Location::Postgres(url) => {
                self::postgres::Store::open(&url, false).map(Store::Postgres)
            }
        }
    }

    /// How messages name this store: its path, or its URL with the password masked.
    pub fn label(&self) -> PathBuf {
        match self {
            Store::Sqlite(s) => s.path().to_path_buf(),
            Store::Postgres(s) => s.label(),
        }
    }

    /// Waits up to `timeout` for a change made by anyone (another process's run, an ingest,
    /// `rm`); `true` when one happened since the cursor's last call. SQLite compares its
    /// `data_version` after the wait; PostgreSQL listens for the writers' `NOTIFY`.
    pub fn wait_for_change(
        &self,
        cursor: &mut ChangeCursor,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => {
                if cursor.0.is_some() {
                    std::thread::sleep(timeout);
                }
                let version = s.data_version()?;
                let changed = cursor.0.is_some_and(|last| last != version);
                cursor.0 = Some(version);
                Ok(changed)
            }
            Store::Postgres(s) => s.wait_for_change(timeout),
        }
    }

    /// The trace `reference` names (as [`Store::resolve`] reads it), with its spans.
    pub fn find(&self, reference: &str) -> Result<TraceDoc, StoreError> {
        self.load(self.resolve(reference)?)
    }

    /// One trace with its spans in tree order and each span's events in time order.
    pub fn load(&self, id: TraceId) -> Result<TraceDoc, StoreError> {
        backend!(self, s => s.load(id))
    }

    /// The traces of one conversation (group id), in start order; an unknown group is
    /// [`StoreError::NotFound`].
    pub fn load_group(&self, group: &str) -> Result<Vec<TraceDoc>, StoreError> {
        let filter = ListFilter {
            group: Some(group.to_string()),
            ..ListFilter::default()
        };
        let mut traces = self.list(&filter)?;
        if traces.is_empty() {
            return Err(StoreError::NotFound {
                id: format!("group {group}"),
                path: self.label(),
            });
        }
        traces.sort_by_key(|t| t.started_at);
        traces.iter().map(|t| self.load(t.trace_id)).collect()
    }

    /// Traces matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Trace>, StoreError> {
        backend!(self, s => s.list(filter))
    }

    /// The traces `filter` selects (as `list` would, newest first) with their spans. A trace
    /// removed between the listing and its loading is left out.
    pub fn load_many(&self, filter: &ListFilter) -> Result<Vec<TraceDoc>, StoreError> {
        let mut docs = Vec::new();
        for trace in self.list(filter)? {
            match self.load(trace.trace_id) {
                Ok(doc) => docs.push(doc),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(docs)
    }

    /// Deletes traces with their spans and events; returns how many traces went.
    pub fn delete(&self, ids: &[TraceId]) -> Result<usize, StoreError> {
        backend!(self, s => s.delete(ids))
    }

    /// The finished traces that started before `cutoff`, oldest first.
    pub fn prunable(&self, cutoff: Timestamp) -> Result<Vec<Trace>, StoreError> {
        let mut old: Vec<Trace> = self
            .list(&ListFilter::default())?
            .into_iter()
            .filter(|t| t.started_at < cutoff && t.status != Status::Running)
            .collect();
        old.reverse();
        Ok(old)
    }

    /// Deletes the traces of `ids` that are not running (one may have started since it was
    /// listed); returns how many went.
    pub fn prune(&self, ids: &[TraceId]) -> Result<usize, StoreError> {
        backend!(self, s => s.prune(ids))
    }

    /// Adds a score to a stored span (replacing an earlier score of the same name and source).
    pub fn add_score(&self, trace: TraceId, span: SpanId, score: &Score) -> Result<(), StoreError> {
        backend!(self, s => s.add_score(trace, span, score))
    }

    /// Every message of a session, in order.
    pub fn session_messages(&self, session: &str) -> Result<Vec<Message>, StoreError> {
        self.session_messages_before(session, None)
    }

    /// The messages of a session written before `before` (all of them when `None`).
    pub fn session_messages_before(
        &self,
        session: &str,
        before: Option<Timestamp>,
    ) -> Result<Vec<Message>, StoreError> {
        backend!(self, s => s.session_messages_before(session, before))
    }

    /// Appends a run's new messages to a session.
    pub fn append_session(
        &self,
        session: &str,
        trace_id: TraceId,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        backend!(self, s => s.append_session(session, trace_id, messages))
    }

    /// Claims `id` for a run about to start under a joined `TRACEPARENT` (see the backends).
    pub fn claim_trace_id(&self, id: TraceId, name: &str) -> Result<bool, StoreError> {
        backend!(self, s => s.claim_trace_id(id, name))
    }

    /// Gives back a trace id this process claimed for a run that never started.
    pub fn release_trace_id(&self, id: TraceId) -> Result<(), StoreError> {
        backend!(self, s => s.release_trace_id(id))
    }

    /// Records a new experiment (its id must be new).
    pub fn create_experiment(&self, e: &Experiment) -> Result<(), StoreError> {
        backend!(self, s => s.create_experiment(e))
    }

    /// Sets how an experiment stands.
    pub fn set_experiment_status(
        &self,
        id: &str,
        status: ExperimentStatus,
        ended: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        backend!(self, s => s.set_experiment_status(id, status, ended))
    }

    /// Writes an experiment and its runs pushed by a remote `eval` (`POST /v1/experiments`),
    /// idempotently: a running row never replaces an ended one.
    pub fn ingest_experiment(
        &self,
        e: &Experiment,
        runs: &[ExperimentRun],
    ) -> Result<(), StoreError> {
        backend!(self, s => s.ingest_experiment(e, runs))
    }

    /// Records the run of a case.
    pub fn record_run(&self, run: &ExperimentRun) -> Result<(), StoreError> {
        backend!(self, s => s.record_run(run))
    }

    /// Takes the lock of the process that runs experiment `id`; `false` when another live
    /// process holds it.
    pub fn hold_experiment(&self, id: &str) -> bool {
        backend!(self, s => s.hold_experiment(id))
    }

    /// Lets go of the lock of experiment `id`.
    pub fn release_experiment(&self, id: &str) {
        backend!(self, s => s.release_experiment(id))
    }

    /// Every experiment, newest first.
    pub fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        backend!(self, s => s.experiments())
    }

    /// The runs of an experiment, by case id then attempt.
    pub fn experiment_runs(&self, id: &str) -> Result<Vec<ExperimentRun>, StoreError> {
        backend!(self, s => s.experiment_runs(id))
    }

    /// The trace rows of `ids` that are still in the store, in no particular order.
    pub fn traces_by_id(&self, ids: &[TraceId]) -> Result<Vec<Trace>, StoreError> {
        backend!(self, s => s.traces_by_id(ids))
    }

    /// The scores recorded in the traces `ids`, each with its span, in the order written.
    pub fn scores_of_traces(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, Vec<(SpanId, Score)>>, StoreError> {
        backend!(self, s => s.scores_of_traces(ids))
    }

    /// The finished traces tagged with experiment `id` that no run of it names.
    pub fn unrecorded_traces(&self, id: &str) -> Result<Vec<TraceId>, StoreError> {
        backend!(self, s => s.unrecorded_traces(id))
    }

    /// Records experiment `e` unless a row of its id is there already (another shard wrote
    /// it), and returns the stored row: the caller checks that it describes the same
    /// experiment.
    pub fn join_experiment(&self, e: &Experiment) -> Result<Experiment, StoreError> {
        self.import_experiment(e)?;
        self.find_experiment(&e.id)
    }

    /// Records how a shard of `eval --shard` stands, and its experiment's status.
    pub fn record_shard(&self, s: &ExperimentShard) -> Result<(), StoreError> {
        backend!(self, b => b.record_shard(s))
    }

    /// The shards of experiment `id`, by shard number.
    pub fn experiment_shards(&self, id: &str) -> Result<Vec<ExperimentShard>, StoreError> {
        backend!(self, s => s.experiment_shards(id))
    }

    /// Copies a shard row from another store; whether it was written.
    pub fn import_shard(&self, s: &ExperimentShard) -> Result<bool, StoreError> {
        backend!(self, b => b.import_shard(s))
    }

    /// Up to `limit` trace ids after `after`, in id order (a keyset page, for `store copy`).
    pub fn trace_ids_after(
        &self,
        after: Option<TraceId>,
        limit: usize,
    ) -> Result<Vec<TraceId>, StoreError> {
        backend!(self, s => s.trace_ids_after(after, limit))
    }

    /// What this store holds of each of `ids` (status and counts), for `store copy`.
    pub fn trace_fingerprints(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, TraceFingerprint>, StoreError> {
        backend!(self, s => s.trace_fingerprints(ids))
    }

    /// The traces `ids` exactly as stored (no dead run closed, nothing written).
    pub fn export_traces(&self, ids: &[TraceId]) -> Result<Vec<TraceDoc>, StoreError> {
        backend!(self, s => s.export_traces(ids))
    }

    /// Writes whole traces from another store under their own ids; returns how many.
    pub fn import_traces(&self, docs: &[TraceDoc]) -> Result<usize, StoreError> {
        backend!(self, s => s.import_traces(docs))
    }

    /// Up to `limit` conversation messages after `(session, seq)`, in that order.
    pub fn session_rows_after(
        &self,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>, StoreError> {
        backend!(self, s => s.session_rows_after(after, limit))
    }

    /// Writes conversation messages from another store; returns how many.
    pub fn import_session_rows(&self, rows: &[SessionRow]) -> Result<usize, StoreError> {
        backend!(self, s => s.import_session_rows(rows))
    }

    /// Records an experiment from another store as it is; whether it was written.
    pub fn import_experiment(&self, e: &Experiment) -> Result<bool, StoreError> {
        backend!(self, s => s.import_experiment(e))
    }

    /// Records runs from another store; returns how many were written.
    pub fn import_runs(&self, runs: &[ExperimentRun]) -> Result<usize, StoreError> {
        backend!(self, s => s.import_runs(runs))
    }

    /// Writes a batch of a run's records in one transaction (the writer thread's call).
    pub(crate) fn write_records(&self, records: &[&Record]) -> Result<(), StoreError> {
        backend!(self, s => s.write_records(records))
    }

    /// The writer has been idle for a while: the backend may tidy up.
    pub(crate) fn idle(&self) {
        backend!(self, s => s.idle())
    }

    /// Takes the liveness lock of the run that writes trace `id` (see the backends' `lock`).
    pub(crate) fn hold_run(&self, id: TraceId) -> bool {
        backend!(self, s => s.hold_run(id))
    }

    /// Lets go of trace `id` once its closed row is committed.
    pub(crate) fn release_run(&self, id: TraceId) {
        backend!(self, s => s.release_run(id))
    }
}
