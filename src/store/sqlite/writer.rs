//! The store sink: every SQLite write of a run happens on one dedicated thread, fed by a channel.
//!
//! The engine's tasks only clone a span and send it, so a slow disk or another process holding
//! the write lock never stalls them. The thread gathers what arrives within a short window
//! (3 ms) and writes it in one `BEGIN IMMEDIATE` transaction, search index included: a run of a
//! thousand spans is a few dozen transactions, other commands see a run within milliseconds of
//! its start, and a `kill -9` loses at most the last window (or 25 ms of span starts, which
//! are held back while nothing else arrives: see [`HOLD`]). A flush cuts the window short. A
//! trace's start is the exception: it is written at once, and [`Sink::settle`] waits for it,
//! so that the trace id is taken in the store before a command step can start a nested run
//! under it (a run of agent steps alone never waits).
//!
//! A write that fails (the disk is full, the file became read-only) raises the run's
//! [`Alarm`]: the run stops at once instead of running its remaining steps unrecorded, and the
//! error comes back from [`StoreWriter::close`].

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use rusqlite::{Transaction, params};
use serde_json::{Map, Value};

use super::schema::index_spans;
use super::{Store, StoreError};
use crate::store::ExperimentRun;
use crate::trace::{Alarm, ErrorInfo, Sink, Span, SpanId, Trace, TraceId};

/// How long the writer gathers records after the first one before committing them together.
const WINDOW: Duration = Duration::from_millis(3);
/// How long a batch of nothing but span starts may wait for more (see `run`).
const HOLD: Duration = Duration::from_millis(25);
/// How long the writer waits with nothing to write before it checkpoints (see `run`).
const IDLE: Duration = Duration::from_millis(20);
/// The most records written in one transaction.
const MAX_BATCH: usize = 2000;

enum Record {
    Trace(Box<Trace>),
    SpanStarted(Arc<Span>),
    SpanEnded(Arc<Span>),
    /// The run of an eval case, sent after its trace closed: written in the same transaction
    /// as the close or a later one, never before.
    Run(ExperimentRun),
}

enum Msg {
    Record(Record),
    /// A trace's start: written at once, with everything before it, and acknowledged.
    Started(Box<Trace>, Sender<()>),
    Flush(Sender<Result<(), StoreError>>),
    Close,
}

/// Owns the writer thread. Dropping it flushes and stops the thread, like [`StoreWriter::close`]
/// without the error.
pub struct StoreWriter {
    tx: Sender<Msg>,
    sink: Arc<StoreSink>,
    alarms: Alarms,
    thread: Option<JoinHandle<()>>,
}

/// The alarms of the runs a writer records, which it raises when a write fails. Several runs
/// share one writer under `agentrace eval`; a run's entry goes when its sink does.
type Alarms = Arc<Mutex<Vec<std::sync::Weak<Mutex<Option<Alarm>>>>>>;

/// The [`Sink`] handed to the recorder: a sender, and a way to cut the gathering window short
/// when somebody waits for the writer.
struct StoreSink {
    tx: Sender<Msg>,
    urgent: Arc<Urgent>,
    /// The writer's answer to the last trace start, until somebody waited for it.
    started: Mutex<Option<Receiver<()>>>,
    /// The run's alarm, which the writer thread raises when a write fails.
    alarm: Arc<Mutex<Option<Alarm>>>,
}

/// Set, and the writer thread unparked, when a message that somebody waits for is sent: the
/// writer stops gathering and writes at once (a run's final flush no longer waits out the
/// window). Plain records leave it alone, so they still cost no wake-up.
#[derive(Default)]
struct Urgent {
    flag: AtomicBool,
    thread: std::sync::OnceLock<Thread>,
}

impl Urgent {
    fn raise(&self) {
        self.flag.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// Sleeps out `WINDOW`, or until raised.
    fn wait_window(&self) {
        let until = Instant::now() + WINDOW;
        loop {
            if self.flag.load(Ordering::Acquire) {
                return;
            }
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::park_timeout(until - now);
        }
    }
}

impl StoreWriter {
    /// Starts the writer thread; it owns `store` from now on.
    pub fn spawn(store: Store) -> StoreWriter {
        let (tx, rx) = mpsc::channel();
        let urgent = Arc::new(Urgent::default());
        let shared = urgent.clone();
        let alarms: Alarms = Arc::default();
        let raise = alarms.clone();
        let thread = std::thread::Builder::new()
            .name("agentrace-store".into())
            .spawn(move || run(store, rx, &shared, &raise));
        if let Ok(handle) = &thread {
            let _ = urgent.thread.set(handle.thread().clone());
        }
        let sink = Arc::new(StoreSink::new(tx.clone(), urgent, &alarms));
        StoreWriter {
            sink,
            tx,
            alarms,
            // If the thread cannot be spawned, every flush reports it: the receiver is gone.
            thread: thread.ok(),
        }
    }

    /// A cheap handle for the recorder of the run.
    pub fn sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }

    /// A sink of its own for one of several runs recorded at once (the cases of an eval): each
    /// run waits for its own trace's start, and a failed write stops every run.
    pub fn run_sink(&self) -> Arc<dyn Sink> {
        Arc::new(StoreSink::new(
            self.tx.clone(),
            self.sink.urgent.clone(),
            &self.alarms,
        ))
    }

    /// Records the run of an eval case, after everything its trace sent (so after its close).
    pub fn record_run(&self, run: ExperimentRun) {
        self.sink.send(Record::Run(run));
    }

    /// Blocks until everything sent so far is committed; returns the first write error seen
    /// since the last flush, if any.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.sink.ask(Msg::Flush).ok_or(StoreError::WriterStopped)?
    }

    /// Flushes and stops the thread.
    pub fn close(mut self) -> Result<(), StoreError> {
        let result = self.flush();
        self.stop();
        result
    }

    fn stop(&mut self) {
        let _ = self.tx.send(Msg::Close);
        self.sink.urgent.raise();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl StoreSink {
    fn new(tx: Sender<Msg>, urgent: Arc<Urgent>, alarms: &Alarms) -> StoreSink {
        let alarm: Arc<Mutex<Option<Alarm>>> = Arc::default();
        let mut all = alarms.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|a| a.strong_count() > 0);
        all.push(Arc::downgrade(&alarm));
        StoreSink {
            tx,
            urgent,
            started: Mutex::new(None),
            alarm,
        }
    }

    /// Sends the message `make` builds around a reply channel and cuts the writer's window
    /// short; the answer comes on the returned receiver. `None` when the writer is gone.
    fn post<T>(&self, make: impl FnOnce(Sender<T>) -> Msg) -> Option<Receiver<T>> {
        let (reply, answer) = mpsc::channel();
        self.tx.send(make(reply)).ok()?;
        self.urgent.raise();
        Some(answer)
    }

    /// [`Self::post`], then waits for the answer.
    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Msg) -> Option<T> {
        self.post(make)?.recv().ok()
    }

    fn send(&self, record: Record) {
        // After close the thread is gone; there is nobody left to tell.
        let _ = self.tx.send(Msg::Record(record));
    }
}

impl Sink for StoreSink {
    fn watch(&self, alarm: &Alarm) {
        *self.alarm.lock().unwrap_or_else(PoisonError::into_inner) = Some(alarm.clone());
    }
    /// Has the trace row written at once; [`Sink::settle`] waits for it.
    fn trace_started(&self, trace: &Trace) {
        let answer = self.post(|reply| Msg::Started(Box::new(trace.clone()), reply));
        *self.started.lock().unwrap_or_else(PoisonError::into_inner) = answer;
    }
    /// Waits until the trace row is committed: a command step is about to start a process,
    /// maybe another agentrace under this trace's `TRACEPARENT`, and that run must find the id
    /// taken (see [`Store::claim_trace_id`]), not claim it first.
    fn settle(&self) {
        let answer = self
            .started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(answer) = answer {
            let _ = answer.recv();
        }
    }
    fn span_started(&self, span: &Arc<Span>) {
        self.send(Record::SpanStarted(Arc::clone(span)));
    }
    fn span_ended(&self, span: &Arc<Span>) {
        self.send(Record::SpanEnded(Arc::clone(span)));
    }
    fn trace_ended(&self, trace: &Trace) {
        self.send(Record::Trace(Box::new(trace.clone())));
    }
}

impl Store {
    /// Claims `id` for a run about to start under a joined `TRACEPARENT`: writes a placeholder
    /// trace row owned by this process, unless the id is taken. Atomic, so that of several runs
    /// started at once under one parent exactly one gets the parent's trace id (the others
    /// start their own and link to it). Returns whether the id is now this run's.
    pub fn claim_trace_id(&self, id: TraceId, name: &str) -> Result<bool, StoreError> {
        // The run lock first: the placeholder row is a running trace, and must not look dead.
        if !self.hold_run(id) {
            return Ok(false);
        }
        let claimed = self.with_write_tx(|tx| {
            let inserted = tx.execute(
                "INSERT INTO traces (trace_id, name, workflow, status, started_at, pid)
                 VALUES (?1, ?2, ?2, 'running', ?3, ?4)
                 ON CONFLICT (trace_id) DO NOTHING",
                params![
                    id.to_string(),
                    name,
                    crate::trace::Timestamp::now().micros(),
                    std::process::id()
                ],
            )?;
            Ok(inserted == 1)
        });
        if !matches!(claimed, Ok(true)) {
            // Somebody else's trace (or none): its lock file is not ours to remove.
            self.drop_run(id);
        }
        claimed
    }

    /// Gives back a trace id this process claimed ([`Store::claim_trace_id`]) for a run that
    /// never started (its input was refused): the placeholder row goes, then the run lock, so
    /// that nothing half-written stays and a later run under the same parent can claim the id.
    pub fn release_trace_id(&self, id: TraceId) -> Result<(), StoreError> {
        let deleted = self.delete(&[id]);
        self.release_run(id);
        deleted.map(drop)
    }
}

/// The writer thread. It blocks for the first message, then sleeps out the window (unless
/// [`Urgent`] is raised) and takes whatever arrived meanwhile: a sleeping thread is not a
/// waiting receiver, so the engine's sends during the window cost no wake-up (blocking in
/// `recv_timeout` instead made every span record a futex wake and a context switch).
///
/// Idle for [`IDLE`] with commits since the last checkpoint (a run waiting on its model calls),
/// it copies them from the WAL into the database file: closing the store at the end of the run
/// then has only what came after left to copy, and the `.db` file alone holds the run so far.
fn run(store: Store, rx: Receiver<Msg>, urgent: &Urgent, alarms: &Alarms) {
    let mut pending: Vec<Record> = Vec::new();
    let mut first_error: Option<StoreError> = None;
    let unchecked = Cell::new(false);
    let write = |pending: &mut Vec<Record>, first_error: &mut Option<StoreError>| {
        if pending.is_empty() {
            return;
        }
        unchecked.set(true);
        if let Err(e) = write_batch(&store, pending) {
            // Every write failure is fatal to the run: what it does next would not be recorded.
            let all = alarms
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            for alarm in all.iter().filter_map(std::sync::Weak::upgrade) {
                if let Some(alarm) = alarm
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                {
                    alarm.raise(e.to_string());
                }
            }
            if first_error.is_none() {
                *first_error = Some(e);
            }
        }
        pending.clear();
    };
    // When the oldest of a batch of nothing but span starts arrived.
    let mut holding: Option<Instant> = None;
    loop {
        // Block for a message only when nothing is pending.
        let mut msgs = Vec::new();
        if pending.is_empty() {
            let first = if unchecked.get() {
                match rx.recv_timeout(IDLE) {
                    Err(RecvTimeoutError::Timeout) => {
                        // Passive: never waits for readers or other writers; what it cannot
                        // copy now is copied later.
                        let _ = store
                            .conn
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                        unchecked.set(false);
                        rx.recv().ok()
                    }
                    other => other.ok(),
                }
            } else {
                rx.recv().ok()
            };
            match first {
                Some(first) => msgs.push(first),
                None => break,
            }
        }
        if msgs.first().is_none_or(|m| matches!(m, Msg::Record(_))) {
            urgent.wait_window();
        }
        msgs.extend(rx.try_iter());
        // Whatever raised it was taken just now (or is still queued, and is then the first
        // message of the next round, which does not gather).
        urgent.flag.store(false, Ordering::Release);
        for msg in msgs {
            match msg {
                Msg::Record(record) => {
                    pending.push(record);
                    if pending.len() >= MAX_BATCH {
                        write(&mut pending, &mut first_error);
                    }
                }
                Msg::Started(trace, reply) => {
                    // Held from before the row exists until the row is closed: readers tell a
                    // live run from a dead one by it.
                    store.hold_run(trace.trace_id);
                    pending.push(Record::Trace(trace));
                    write(&mut pending, &mut first_error);
                    let _ = reply.send(());
                }
                Msg::Flush(reply) => {
                    write(&mut pending, &mut first_error);
                    let _ = reply.send(first_error.take().map_or(Ok(()), Err));
                }
                Msg::Close => {
                    write(&mut pending, &mut first_error);
                    return;
                }
            }
        }
        // Span starts alone wait up to HOLD: a wide fan-out starts hundreds of spans while the
        // engine is busiest, and writing them then takes CPU from it; those that end meanwhile
        // are written once, as ended.
        if !pending.is_empty() && pending.iter().all(|r| matches!(r, Record::SpanStarted(_))) {
            let since = *holding.get_or_insert_with(Instant::now);
            if since.elapsed() < HOLD {
                continue;
            }
        }
        write(&mut pending, &mut first_error);
        holding = None;
    }
    write(&mut pending, &mut first_error);
}

/// Writes `records` in one transaction. If that fails for a reason other than contention, each
/// record is tried in its own transaction, so that one bad record does not take the others
/// with it; the first error is returned.
fn write_batch(store: &Store, records: &[Record]) -> Result<(), StoreError> {
    // A span that started and ended within one batch is written once, as ended: half the
    // writes (and half the search-index updates) for the short spans that make up most runs.
    let ended: HashSet<(TraceId, SpanId)> = records
        .iter()
        .filter_map(|r| match r {
            Record::SpanEnded(s) => Some((s.trace_id, s.span_id)),
            _ => None,
        })
        .collect();
    let needed = |r: &&Record| match r {
        Record::SpanStarted(s) => !ended.contains(&(s.trace_id, s.span_id)),
        _ => true,
    };
    let all = store.with_write_tx(|tx| write_records(tx, records.iter().filter(needed)));
    match all {
        Ok(()) => {
            records.iter().for_each(|r| release_if_closed(store, r));
            Ok(())
        }
        Err(first) if records.len() > 1 && !matches!(first, StoreError::DiskFull { .. }) => {
            let mut result = Ok(());
            for record in records {
                match store.with_write_tx(|tx| write_records(tx, [record])) {
                    Ok(()) => release_if_closed(store, record),
                    Err(e) if result.is_ok() => result = Err(e),
                    Err(_) => {}
                }
            }
            result
        }
        Err(e) => Err(e),
    }
}

/// A trace's closed row is committed: its run lock is no longer needed. A trace whose close
/// was not written keeps it until the process exits, and the next reader closes the trace.
fn release_if_closed(store: &Store, record: &Record) {
    if let Record::Trace(trace) = record
        && trace.status != crate::trace::Status::Running
    {
        store.release_run(trace.trace_id);
    }
}

/// Writes `records`, then indexes the spans they touched for search, all at once.
fn write_records<'a>(
    tx: &Transaction<'_>,
    records: impl IntoIterator<Item = &'a Record>,
) -> rusqlite::Result<()> {
    let mut seqs = Vec::new();
    for record in records {
        match record {
            Record::Trace(trace) => write_trace(tx, trace)?,
            // A running span is found by its trace's name; its own name and content are
            // indexed once, when it ends.
            Record::SpanStarted(span) => {
                write_span(tx, span)?;
            }
            Record::SpanEnded(span) => {
                seqs.push(write_span(tx, span)?);
                write_events(tx, span)?;
            }
            Record::Run(run) => write_run(tx, run)?,
        }
    }
    index_spans(tx, &seqs)
}

pub(super) fn write_trace(tx: &Transaction<'_>, t: &Trace) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO traces (trace_id, name, workflow, group_id, metadata, status, started_at,
                             ended_at, input_tokens, output_tokens, total_tokens, error, pid,
                             cost_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (trace_id) DO UPDATE SET
             name = excluded.name, workflow = excluded.workflow, group_id = excluded.group_id,
             metadata = excluded.metadata, status = excluded.status,
             started_at = excluded.started_at, ended_at = excluded.ended_at,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
             total_tokens = excluded.total_tokens, error = excluded.error,
             pid = coalesce(excluded.pid, traces.pid), cost_usd = excluded.cost_usd",
    )?;
    stmt.execute(params![
        t.trace_id.to_string(),
        t.name,
        t.workflow,
        t.group_id,
        map_json(&t.metadata),
        t.status.as_str(),
        t.started_at.micros(),
        t.ended_at.map(|e| e.micros()),
        int(t.usage.input_tokens),
        int(t.usage.output_tokens),
        int(t.usage.total_tokens),
        error_json(t.error.as_ref()),
        t.pid,
        t.cost_usd,
    ])?;
    Ok(())
}

/// Inserts or updates a span row; returns its `seq`.
pub(super) fn write_span(tx: &Transaction<'_>, s: &Span) -> rusqlite::Result<i64> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO spans (trace_id, span_id, parent_id, kind, name, status, started_at,
                            ended_at, attributes, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (trace_id, span_id) DO UPDATE SET
             parent_id = excluded.parent_id, kind = excluded.kind, name = excluded.name,
             status = excluded.status, started_at = excluded.started_at,
             ended_at = excluded.ended_at, attributes = excluded.attributes,
             error = excluded.error
         RETURNING seq",
    )?;
    stmt.query_row(
        params![
            s.trace_id.to_string(),
            s.span_id.to_string(),
            s.parent_id.map(|p| p.to_string()),
            s.kind.as_str(),
            s.name,
            s.status.as_str(),
            s.started_at.micros(),
            s.ended_at.map(|e| e.micros()),
            map_json(&s.attributes),
            error_json(s.error.as_ref()),
        ],
        |row| row.get(0),
    )
}

pub(super) fn write_events(tx: &Transaction<'_>, s: &Span) -> rusqlite::Result<()> {
    let trace_id = s.trace_id.to_string();
    let span_id = s.span_id.to_string();
    tx.prepare_cached("DELETE FROM events WHERE trace_id = ?1 AND span_id = ?2")?
        .execute(params![trace_id, span_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (trace_id, span_id, name, time, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for event in &s.events {
        insert.execute(params![
            trace_id,
            span_id,
            event.name,
            event.time.micros(),
            map_json(&event.attributes),
        ])?;
    }
    Ok(())
}

/// Writes one run row (in the writer's transaction or a command's own).
pub(super) fn write_run(tx: &Transaction<'_>, run: &ExperimentRun) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO experiment_runs (experiment_id, case_id, attempt, trace_id)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (experiment_id, case_id, attempt) DO UPDATE SET trace_id = excluded.trace_id",
    )?
    .execute(params![
        run.experiment,
        run.case_id,
        run.attempt,
        run.trace_id.to_string()
    ])?;
    Ok(())
}

pub(super) fn map_json(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| String::from("{}"))
}

pub(super) fn error_json(error: Option<&ErrorInfo>) -> Option<String> {
    error.and_then(|e| serde_json::to_string(e).ok())
}

/// Token counts are far below `i64::MAX`; saturate rather than fail if one is not.
pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
