//! The store sink: every write of a run happens on one dedicated thread, fed by a channel,
//! whichever backend keeps the store (the backend writes a batch in one transaction:
//! [`Store::write_records`]).
//!
//! The engine's tasks only clone a span and send it, so a slow disk or another process holding
//! the write lock never stalls them. The thread gathers what arrives within a short window
//! ([`WINDOW`], unless a backlog is waiting already) and writes it in one transaction, search
//! index included: a run of a
//! thousand spans is a few dozen transactions, other commands see a run within milliseconds of
//! its start, and a `kill -9` loses at most the last window, and the starts of spans that had
//! run for less than [`HOLD`] (a span start waits that long for its end, so that a short span
//! is written once, ended, instead of inserted and then updated). A flush cuts both short. A
//! trace's start is the exception: it is written at once, and [`Sink::settle`] waits for it,
//! so that the trace id is taken in the store before a command step can start a nested run
//! under it (a run of agent steps alone never waits).
//!
//! A write that fails (the disk is full, the file became read-only) raises the run's
//! [`Alarm`]: the run stops at once instead of running its remaining steps unrecorded, and the
//! error comes back from [`StoreWriter::close`].

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use super::{Store, StoreError};
use crate::store::ExperimentRun;
use serde_json::{Map, Value};

use crate::trace::{Alarm, ErrorInfo, Sink, Span, SpanId, StartedSpan, Trace, TraceId};

/// How long the writer gathers records after the first one before committing them together.
/// Each commit rewrites the pages it touched (the spans' B-trees, a new search-index segment
/// to merge later), so fewer, larger ones cost less: 20 ms instead of 3 ms saved ~6k
/// instructions per branch of a 2000-wide fan-out (C1, docs/benchmarks.md). A finished span
/// shows this much later at most; a flush (the end of a run) does not wait for it.
const WINDOW: Duration = Duration::from_millis(20);
/// How long a span's start waits for its end before it is written (see `run`): a fan-out's
/// model calls mostly end within it, and are then written once instead of twice (an insert and
/// an update, with their index entries), which was a third of the writer's work per branch. A
/// running span shows in `show` and `serve` this much later.
const HOLD: Duration = Duration::from_millis(250);
/// How long the writer waits with nothing to write before it checkpoints (see `run`).
const IDLE: Duration = Duration::from_millis(20);
/// The most records written in one transaction.
const MAX_BATCH: usize = 2000;
/// Messages enough for a transaction of their own: when this many are already waiting, the
/// writer has fallen behind (a wide fan-out's answers coming back) and writes at once instead of
/// waiting out [`WINDOW`], which would only grow the last batch a run waits for at its end.
/// Measured on B2w (docs/benchmarks.md), 21 by turns: the wait after the run's last span
/// 49 → 33 ms; C1 and B1's instruction counts unchanged (a sequential run never has that many
/// waiting).
const ENOUGH: usize = 256;

/// One thing a run sends its store.
pub(crate) enum Record {
    Trace(Box<Trace>),
    SpanStarted(Arc<Span>),
    SpanEnded(Arc<Span>),
    /// The run of an eval case, sent after its trace closed: written in the same transaction
    /// as the close or a later one, never before.
    Run(ExperimentRun),
}

enum Msg {
    Record(Record),
    /// A span's start: held for its end ([`Held`]), and copied only if it is still running
    /// when its turn comes.
    Open(Arc<StartedSpan>),
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
    fn span_started(&self, span: &Arc<StartedSpan>) {
        let _ = self.tx.send(Msg::Open(Arc::clone(span)));
    }
    fn span_ended(&self, span: &Arc<Span>) {
        self.send(Record::SpanEnded(Arc::clone(span)));
    }
    fn trace_ended(&self, trace: &Trace) {
        self.send(Record::Trace(Box::new(trace.clone())));
    }
}

/// The writer thread. It blocks for the first message, then sleeps out the window (unless
/// [`Urgent`] is raised) and takes whatever arrived meanwhile: a sleeping thread is not a
/// waiting receiver, so the engine's sends during the window cost no wake-up (blocking in
/// `recv_timeout` instead made every span record a futex wake and a context switch).
///
/// Idle for [`IDLE`] with commits since the last one (a run waiting on its model calls), it lets
/// the backend tidy up ([`Store::idle`]: SQLite copies its WAL into the database file, so that
/// closing the store at the end of the run has only what came after left to copy).
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
    // Span starts not written yet: the oldest first.
    let mut held = Held::default();
    loop {
        // Block for a message only when nothing is pending; with starts held, no longer than
        // until the first of them is due.
        let mut msgs = Vec::new();
        if pending.is_empty() {
            let first = match held.due() {
                Some(due) => match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(first) => Some(first),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => {
                    let first = if unchecked.get() {
                        match rx.recv_timeout(IDLE) {
                            Err(RecvTimeoutError::Timeout) => {
                                store.idle();
                                unchecked.set(false);
                                rx.recv().ok()
                            }
                            other => other.ok(),
                        }
                    } else {
                        rx.recv().ok()
                    };
                    match first {
                        Some(first) => Some(first),
                        None => break,
                    }
                }
            };
            msgs.extend(first);
        }
        msgs.extend(rx.try_iter());
        if gathers(&msgs) {
            urgent.wait_window();
        }
        msgs.extend(rx.try_iter());
        // Whatever raised it was taken just now (or is still queued, and is then the first
        // message of the next round, which does not gather).
        urgent.flag.store(false, Ordering::Release);
        for msg in msgs {
            match msg {
                Msg::Open(span) => held.push(span),
                Msg::Record(record) => {
                    if let Record::SpanEnded(span) = &record {
                        held.ended(span);
                    }
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
                    held.release(&mut pending, true);
                    write(&mut pending, &mut first_error);
                    let _ = reply.send(first_error.take().map_or(Ok(()), Err));
                }
                Msg::Close => {
                    held.release(&mut pending, true);
                    write(&mut pending, &mut first_error);
                    return;
                }
            }
        }
        held.release(&mut pending, false);
        write(&mut pending, &mut first_error);
    }
    held.release(&mut pending, true);
    write(&mut pending, &mut first_error);
}

/// Whether the writer waits out [`WINDOW`] for more before it writes what it has: not for a
/// request that is waited on (a flush, a trace's start, the close), nor when [`ENOUGH`] are
/// waiting already.
fn gathers(msgs: &[Msg]) -> bool {
    msgs.len() < ENOUGH
        && msgs
            .first()
            .is_none_or(|m| matches!(m, Msg::Record(_) | Msg::Open(_)))
}

/// Span starts waiting for their ends ([`HOLD`]). The end of one takes its start out: the span
/// is written once, ended, and a start is never written after its end.
#[derive(Default)]
struct Held {
    spans: foldhash::HashMap<(TraceId, SpanId), Arc<StartedSpan>>,
    /// In order of arrival; a span that has ended since is skipped when its turn comes.
    arrivals: VecDeque<(Instant, (TraceId, SpanId))>,
}

impl Held {
    fn push(&mut self, span: Arc<StartedSpan>) {
        let key = (span.trace_id(), span.span_id());
        self.spans.insert(key, span);
        self.arrivals.push_back((Instant::now(), key));
    }

    fn ended(&mut self, span: &Span) {
        self.spans.remove(&(span.trace_id, span.span_id));
        if self.spans.is_empty() {
            self.arrivals.clear();
        }
    }

    /// When the oldest start still waiting is to be written.
    fn due(&mut self) -> Option<Instant> {
        while let Some((at, key)) = self.arrivals.front() {
            if self.spans.contains_key(key) {
                return Some(*at + HOLD);
            }
            self.arrivals.pop_front();
        }
        None
    }

    /// Moves the starts that have waited [`HOLD`] (or, with `all`, every one) onto `pending`,
    /// oldest first.
    fn release(&mut self, pending: &mut Vec<Record>, all: bool) {
        let now = Instant::now();
        while let Some((at, key)) = self.arrivals.front() {
            if !all && now.duration_since(*at) < HOLD {
                break;
            }
            // A span that has ended since has its end on the way: nothing to write now.
            if let Some(span) = self.spans.remove(key).and_then(|s| s.snapshot()) {
                pending.push(Record::SpanStarted(span));
            }
            self.arrivals.pop_front();
        }
    }
}

/// Writes `records` in one transaction. If that fails for a reason other than contention, each
/// record is tried in its own transaction, so that one bad record does not take the others
/// with it; the first error is returned.
fn write_batch(store: &Store, records: &[Record]) -> Result<(), StoreError> {
    let wanted: Vec<&Record> = records.iter().collect();
    let all = store.write_records(&wanted);
    match all {
        Ok(()) => {
            records.iter().for_each(|r| release_if_closed(store, r));
            Ok(())
        }
        Err(first) if records.len() > 1 && !matches!(first, StoreError::DiskFull { .. }) => {
            let mut result = Ok(());
            for record in records {
                match store.write_records(&[record]) {
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

/// `map` as JSON text; `{}` if it cannot be encoded.
pub(crate) fn map_json(map: &Map<String, Value>) -> String {
    let mut buf = Vec::new();
    map_json_in(&mut buf, map);
    String::from_utf8(buf).unwrap_or_else(|_| String::from("{}"))
}

/// [`map_json`] written into `buf`, which a batch keeps from row to row.
pub(crate) fn map_json_in<'b>(buf: &'b mut Vec<u8>, map: &Map<String, Value>) -> &'b str {
    buf.clear();
    if serde_json::to_writer(&mut *buf, map).is_err() {
        buf.clear();
        buf.extend_from_slice(b"{}");
    }
    std::str::from_utf8(buf).unwrap_or("{}")
}

pub(crate) fn error_json(error: Option<&ErrorInfo>) -> Option<String> {
    error.and_then(|e| serde_json::to_string(e).ok())
}

/// Token counts are far below `i64::MAX`; saturate rather than fail if one is not.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::fixture::span;
    use crate::trace::{SpanKind, Status};

    fn ended(n: usize) -> Vec<Msg> {
        let one = Arc::new(span(
            1,
            None,
            SpanKind::Command,
            "s",
            Status::Ok,
            0,
            Some(1),
            Value::Null,
        ));
        (0..n)
            .map(|_| Msg::Record(Record::SpanEnded(one.clone())))
            .collect()
    }

    #[test]
    fn the_writer_gathers_a_few_records_but_not_a_backlog_or_a_request() {
        assert!(gathers(&ended(1)));
        assert!(gathers(&ended(ENOUGH - 1)));
        assert!(!gathers(&ended(ENOUGH)), "a backlog is written at once");
        let (reply, _answer) = mpsc::channel();
        let mut flush = vec![Msg::Flush(reply)];
        flush.extend(ended(3));
        assert!(!gathers(&flush), "a flush is waited on");
        assert!(!gathers(&[Msg::Close]));
    }
}
