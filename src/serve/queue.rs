//! One writer per `serve` process for everything ingested.
//!
//! Why: when every ingest request opened the store and wrote its own transaction, concurrent
//! senders queued on SQLite's write lock, and SQLite's busy handler sleeps in growing steps while
//! it waits (16 senders of 100-span bodies: p50 30 ms, p99 2.1 s). Here the requests hand their
//! parsed [`Ingest`] to one thread that owns one open store, fed by a bounded channel. The thread
//! takes whatever arrived while it was writing and commits all of it in one transaction
//! ([`Store::ingest_many`]: a group commit), then answers each request, so a span is queryable
//! when its request returns. A batch that fails is written again request by request inside
//! `ingest_many`, so one bad body fails only its own request.
//!
//! Backpressure: the byte budget (`--max-ingest-mb`) bounds what the requests hold, and the
//! channel bounds how many wait here; a request that finds it full is answered 503 with
//! `Retry-After` at once instead of waiting in memory.

use tokio::sync::{mpsc, oneshot};

use crate::store::{IngestSummary, Location, Store, StoreError};
use crate::trace::ingest::Ingest;

/// How many requests may wait for the writer at once.
pub const CAPACITY: usize = 1024;
/// The most requests, and about the most spans, committed in one transaction: a group commit
/// amortises the commit, but a huge one would keep the first request of the batch waiting.
const MAX_BATCH: usize = 256;
const MAX_BATCH_SPANS: usize = 20_000;

/// Why the writer could not take or write a request's ingest.
#[derive(Debug)]
pub enum Refused {
    /// The queue is full: try again shortly.
    Full,
    /// The writer thread is gone (it could not start, or it stopped).
    Stopped,
    /// The store refused the write.
    Store(StoreError),
}

struct Job {
    ingest: Ingest,
    answer: oneshot::Sender<Result<IngestSummary, StoreError>>,
}

/// The sending side; the writer thread stops when this is dropped and the queue has drained.
pub struct IngestQueue {
    jobs: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Starts the writer thread for the store at `path` (which `serve` has created already).
    /// The store is opened by the thread, and opened again on the next batch after an error
    /// that left it unusable.
    pub fn spawn(path: Location, capacity: usize) -> std::io::Result<IngestQueue> {
        let (jobs, queue) = mpsc::channel(capacity.max(1));
        std::thread::Builder::new()
            .name("agentrace-ingest".into())
            .spawn(move || write_loop(&path, queue))?;
        Ok(IngestQueue { jobs })
    }

    /// Hands `ingest` to the writer and waits until it is committed (or refused).
    pub async fn ingest(&self, ingest: Ingest) -> Result<IngestSummary, Refused> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .try_send(Job { ingest, answer })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full,
                mpsc::error::TrySendError::Closed(_) => Refused::Stopped,
            })?;
        match answered.await {
            Ok(result) => result.map_err(Refused::Store),
            Err(_) => Err(Refused::Stopped),
        }
    }
}

/// The writer thread: a batch at a time until every sender is gone.
fn write_loop(path: &Location, mut queue: mpsc::Receiver<Job>) {
    let mut store: Option<Store> = None;
    while let Some(first) = queue.blocking_recv() {
        let mut spans = first.ingest.spans.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && spans < MAX_BATCH_SPANS {
            match queue.try_recv() {
                Ok(job) => {
                    spans += job.ingest.spans.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let results = match store_for(&mut store, path) {
            Ok(store) => {
                let ingests: Vec<&Ingest> = batch.iter().map(|job| &job.ingest).collect();
                store.ingest_many(&ingests)
            }
            Err(e) => {
                // Every request of the batch hears why; the next batch tries to open again.
                let message = e.to_string();
                batch
                    .iter()
                    .map(|_| {
                        Err(StoreError::CannotOpen {
                            path: path.label(),
                            detail: message.clone(),
                        })
                    })
                    .collect()
            }
        };
        if results.iter().any(|r| r.as_ref().is_err_and(unusable)) {
            store = None;
        }
        for (job, result) in batch.into_iter().zip(results) {
            // A request that gave up (its client went away) no longer listens: nothing to do.
            let _ = job.answer.send(result);
        }
    }
}

fn store_for<'a>(store: &'a mut Option<Store>, path: &Location) -> Result<&'a Store, StoreError> {
    match store {
        Some(store) => Ok(store),
        None => Ok(store.insert(Store::open_existing(path)?)),
    }
}

/// Errors after which the open connection is not trusted for the next batch.
fn unusable(e: &StoreError) -> bool {
    !matches!(e, StoreError::Busy { .. } | StoreError::DiskFull { .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Span, SpanId, SpanKind, Status, Timestamp, TraceId};

    fn body(trace_id: TraceId, spans: usize) -> Ingest {
        let start = Timestamp::now();
        Ingest {
            traces: Vec::new(),
            rows: Vec::new(),
            spans: (0..spans)
                .map(|i| Span {
                    span_id: SpanId::generate(),
                    trace_id,
                    parent_id: None,
                    kind: SpanKind::Custom,
                    name: format!("step {i}"),
                    status: Status::Ok,
                    started_at: start,
                    ended_at: Some(start),
                    attributes: Default::default(),
                    events: Vec::new(),
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn every_request_is_answered_after_its_spans_are_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.db");
        drop(Store::open(&path).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let queue = std::sync::Arc::new(
            IngestQueue::spawn(Location::Sqlite(path.clone()), CAPACITY).unwrap(),
        );
        let ids: Vec<TraceId> = (0..64).map(|_| TraceId::generate()).collect();
        runtime.block_on(async {
            let tasks: Vec<_> = ids
                .iter()
                .map(|&id| {
                    let queue = queue.clone();
                    let path = path.clone();
                    tokio::spawn(async move {
                        let summary = queue.ingest(body(id, 10)).await.unwrap();
                        assert_eq!(summary.spans, 10);
                        // Committed before the answer: another connection sees it all.
                        let doc = Store::open_existing(&path).unwrap().load(id).unwrap();
                        assert_eq!(doc.spans.len(), 10);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
    }

    #[test]
    fn a_full_queue_refuses_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.db");
        drop(Store::open(&path).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // A writer that is never fed faster than it writes still leaves room for one; a queue
        // whose one place is taken by a request that nobody polls refuses the next.
        let (jobs, _queue) = mpsc::channel(1);
        let queue = IngestQueue { jobs };
        runtime.block_on(async {
            let (answer, _answered) = oneshot::channel();
            queue
                .jobs
                .try_send(Job {
                    ingest: body(TraceId::generate(), 1),
                    answer,
                })
                .unwrap();
            let refused = queue.ingest(body(TraceId::generate(), 1)).await;
            assert!(matches!(refused, Err(Refused::Full)), "{refused:?}");
        });
    }
}
