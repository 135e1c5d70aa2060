//! The sink of a pushing run: the recorder's records batched by size and time and sent to
//! `serve` on a thread of its own, so that the run never waits on the network and its trace is
//! visible on the server while it runs.
//!
//! A batch is one OTLP request: per trace with news, its root (the trace row, see the module
//! docs of [`super`]) and the spans that started or ended since the last batch, each in its
//! latest state (a span that started and ended within one batch goes once). The first batch
//! goes at once, so the trace shows up when the run starts; the next ones every
//! [`INTERVAL`] or [`BATCH`] spans, and at the trace's end.
//!
//! The server being down never fails the run: the first failure prints one line on stderr and
//! from then on every batch goes to the spool, in order, after whatever an earlier run left
//! there (which this sink tries to send first). Nothing is sent out of order, so the server
//! never sees a trace's end before its spans.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use super::send::{Failure, client, send};
use super::spool::{Drained, Step};
use super::{Record, Remote};
use crate::export::otlp::{map, service_name};
use crate::trace::ingest::TRACE_ROW_ATTRIBUTE;
use crate::trace::{Sink, Span, SpanId, StartedSpan, Trace, TraceDoc, TraceId};

/// The most spans in one request.
pub const BATCH: usize = 512;
/// The longest a started or ended span waits before it is sent.
pub const INTERVAL: Duration = Duration::from_millis(250);

enum Msg {
    Started(Box<Trace>),
    Span(Arc<Span>),
    Ended(Box<Trace>),
    Experiment(serde_json::Value),
}

/// The sink; [`RemoteSink::close`] sends what is left and says how it went.
pub struct RemoteSink {
    tx: Mutex<Option<Sender<Msg>>>,
    worker: Mutex<Option<JoinHandle<Pushed>>>,
}

/// What a sink did by its close.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Spans the server took (the roots included).
    pub spans: usize,
    /// Records of earlier runs that the spool gave up and the server took.
    pub from_spool: Drained,
    /// Records that went to the spool instead.
    pub spooled: usize,
    /// Why the first record could not be sent.
    pub failure: Option<Failure>,
}

impl RemoteSink {
    /// Starts the sending thread. `on_failure` is called once, with the first failure (the run
    /// says it on stderr).
    pub fn spawn(
        remote: Remote,
        on_failure: impl Fn(&Remote, &Failure) + Send + 'static,
    ) -> Result<Arc<RemoteSink>, String> {
        let (tx, rx) = channel();
        let worker = std::thread::Builder::new()
            .name("agentrace-push".into())
            .spawn(move || Worker::new(remote, Box::new(on_failure)).run(&rx))
            .map_err(|e| format!("cannot start the push thread: {e}"))?;
        Ok(Arc::new(RemoteSink {
            tx: Mutex::new(Some(tx)),
            worker: Mutex::new(Some(worker)),
        }))
    }

    fn post(&self, msg: Msg) {
        if let Some(tx) = self
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = tx.send(msg);
        }
    }

    /// Sends an experiment (the body of `POST /v1/experiments`) after every span recorded so
    /// far.
    pub fn experiment(&self, body: serde_json::Value) {
        self.post(Msg::Experiment(body));
    }

    /// Sends (or spools) everything left and waits for it.
    pub fn close(&self) -> Pushed {
        drop(
            self.tx
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        worker.and_then(|w| w.join().ok()).unwrap_or_default()
    }
}

impl Sink for RemoteSink {
    fn trace_started(&self, trace: &Trace) {
        self.post(Msg::Started(Box::new(trace.clone())));
    }
    fn span_started(&self, span: &Arc<StartedSpan>) {
        if let Some(span) = span.snapshot() {
            self.post(Msg::Span(span));
        }
    }
    fn span_ended(&self, span: &Arc<Span>) {
        self.post(Msg::Span(Arc::clone(span)));
    }
    fn trace_ended(&self, trace: &Trace) {
        self.post(Msg::Ended(Box::new(trace.clone())));
    }
}

/// A trace with news for the server.
struct Pending {
    row: Trace,
    spans: IndexMap<SpanId, Arc<Span>>,
    /// The row changed since the last batch (started, ended).
    news: bool,
    ended: bool,
}

type OnFailure = Box<dyn Fn(&Remote, &Failure) + Send>;

struct Worker {
    remote: Remote,
    on_failure: OnFailure,
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<reqwest::Client>,
    traces: IndexMap<TraceId, Pending>,
    /// Set by the first failure: everything after it is spooled.
    failed: bool,
    /// The spool was tried at the first send.
    spool_tried: bool,
    pushed: Pushed,
}

impl Worker {
    fn new(remote: Remote, on_failure: OnFailure) -> Worker {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok();
        let client = client(&remote).ok();
        Worker {
            remote,
            on_failure,
            runtime,
            client,
            traces: IndexMap::new(),
            failed: false,
            spool_tried: false,
            pushed: Pushed::default(),
        }
    }

    fn run(mut self, rx: &Receiver<Msg>) -> Pushed {
        let mut due: Option<Instant> = None;
        loop {
            let first = match due {
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let mut now = false;
            match first {
                Ok(msg) => {
                    // Whatever else is queued joins this batch.
                    now |= self.take(msg);
                    while let Ok(msg) = rx.try_recv() {
                        now |= self.take(msg);
                    }
                }
                Err(RecvTimeoutError::Timeout) => now = true,
                Err(RecvTimeoutError::Disconnected) => {
                    self.flush();
                    // A sink that had nothing to send still sends what an earlier run left.
                    self.try_spool();
                    return self.pushed;
                }
            }
            if now || self.waiting() >= BATCH {
                self.flush();
                due = None;
            } else if due.is_none() && self.waiting() > 0 {
                due = Some(Instant::now() + INTERVAL);
            }
        }
    }

    /// Takes in one message; whether it calls for a batch now (a trace started or ended: the
    /// server sees it at once).
    fn take(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Started(trace) => {
                self.traces.insert(
                    trace.trace_id,
                    Pending {
                        row: *trace,
                        spans: IndexMap::new(),
                        news: true,
                        ended: false,
                    },
                );
                true
            }
            Msg::Span(span) => {
                if let Some(p) = self.traces.get_mut(&span.trace_id) {
                    p.spans.insert(span.span_id, span);
                }
                false
            }
            Msg::Ended(trace) => {
                if let Some(p) = self.traces.get_mut(&trace.trace_id) {
                    p.row = *trace;
                    p.news = true;
                    p.ended = true;
                }
                true
            }
            Msg::Experiment(body) => {
                // After every span recorded before it.
                self.flush();
                self.deliver(Record::Experiment(body));
                false
            }
        }
    }

    fn waiting(&self) -> usize {
        self.traces.values().map(|p| p.spans.len()).sum()
    }

    /// Requests of at most [`BATCH`] spans with every trace's news; a trace's row says it
    /// ended only in the request with its last spans.
    fn flush(&mut self) {
        let mut docs: Vec<TraceDoc> = Vec::new();
        let mut count = 0;
        let ids: Vec<TraceId> = self.traces.keys().copied().collect();
        for id in ids {
            while let Some(p) = self.traces.get_mut(&id) {
                if !p.news && p.spans.is_empty() {
                    break;
                }
                let room = BATCH.saturating_sub(count).max(1);
                let take = p.spans.len().min(room);
                let spans: Vec<Span> = p.spans.drain(..take).map(|(_, s)| (*s).clone()).collect();
                let last = p.spans.is_empty();
                let mut row = p.row.clone();
                if !last && p.ended {
                    row.status = crate::trace::Status::Running;
                    row.ended_at = None;
                    row.error = None;
                }
                if last {
                    p.news = false;
                }
                count += spans.len() + 1;
                docs.push(TraceDoc { trace: row, spans });
                if count >= BATCH {
                    let batch = std::mem::take(&mut docs);
                    self.deliver(request(&batch));
                    count = 0;
                }
            }
            if self.traces.get(&id).is_some_and(|p| p.ended) {
                self.traces.shift_remove(&id);
            }
        }
        if !docs.is_empty() {
            self.deliver(request(&docs));
        }
    }

    /// Sends the spool's records first (once per sink): they are older.
    fn try_spool(&mut self) {
        if self.spool_tried || self.failed {
            return;
        }
        self.spool_tried = true;
        let (Some(runtime), Some(client)) = (&self.runtime, &self.client) else {
            return;
        };
        let remote = &self.remote;
        let mut failure = None;
        let drained =
            remote.spool.drain(
                |record| match runtime.block_on(send(client, remote, record)) {
                    Ok(()) => Step::Sent,
                    Err(f) => {
                        let stops = f.stops();
                        failure.get_or_insert(f);
                        if stops { Step::Stop } else { Step::Keep }
                    }
                },
            );
        match drained {
            Ok(d) => self.pushed.from_spool = d,
            Err(e) => {
                failure.get_or_insert(Failure::Unreachable(e));
            }
        }
        if let Some(f) = failure
            && f.stops()
        {
            self.fail(f);
        }
    }

    fn fail(&mut self, failure: Failure) {
        if !self.failed {
            self.failed = true;
            (self.on_failure)(&self.remote, &failure);
            self.pushed.failure = Some(failure);
        }
    }

    fn deliver(&mut self, record: Record) {
        self.try_spool();
        if !self.failed {
            let sent = match (&self.runtime, &self.client) {
                (Some(runtime), Some(client)) => {
                    runtime.block_on(send(client, &self.remote, &record))
                }
                _ => Err(Failure::Unreachable("no HTTP client".into())),
            };
            match sent {
                Ok(()) => {
                    self.pushed.spans += record.spans();
                    return;
                }
                Err(f) => self.fail(f),
            }
        }
        self.pushed.spooled += 1;
        if let Err(e) = self.remote.spool.append(std::slice::from_ref(&record)) {
            // Nowhere left to keep it: say so, once per record (this is rare: a full disk).
            eprintln!(
                "warning: {e}: {} span(s) of this run are lost",
                record.spans()
            );
        }
    }
}

/// The OTLP request for `docs`, each root carrying its trace's row.
fn request(docs: &[TraceDoc]) -> Record {
    let mut request: ExportTraceServiceRequest =
        map::request(docs, map::resource(&service_name(), &[]));
    let roots: HashMap<Vec<u8>, &Trace> = docs
        .iter()
        .map(|d| (map::root_span_id(d).0.to_vec(), &d.trace))
        .collect();
    for span in request
        .resource_spans
        .iter_mut()
        .flat_map(|r| r.scope_spans.iter_mut())
        .flat_map(|s| s.spans.iter_mut())
    {
        if let Some(trace) = roots.get(&span.span_id)
            && let Ok(text) = serde_json::to_string(trace)
        {
            span.attributes.push(KeyValue {
                key: TRACE_ROW_ATTRIBUTE.into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(text)),
                }),
                key_strindex: 0,
            });
        }
    }
    Record::Traces(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::trace::{Status, fixture};

    /// Through the wire and serve's ingest into a store: the trace as the run had it.
    fn ingested(store: &Store, docs: &[TraceDoc]) {
        let Record::Traces(request) = request(docs) else {
            panic!("traces")
        };
        let ingest = crate::ingest::otlp::from_request(&request).unwrap();
        ingest
            .check_times(crate::trace::Timestamp(fixture::T0 + 3_600_000_000))
            .unwrap();
        store.ingest(&ingest).unwrap();
    }

    #[test]
    fn a_pushed_trace_is_stored_as_the_run_had_it_and_a_late_running_row_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("t.db")).unwrap();
        let mut doc = fixture::every_kind();
        doc.trace.pid = Some(4242);
        // Mid-run: the row as it started, with the spans so far.
        let mut running = doc.clone();
        running.trace.status = Status::Running;
        running.trace.ended_at = None;
        running.trace.error = None;
        running.spans.truncate(2);
        ingested(&store, std::slice::from_ref(&running));
        let seen = store.load(doc.trace.trace_id).unwrap();
        assert_eq!(seen.trace.status, Status::Running);
        assert_eq!(seen.spans.len(), 2);

        ingested(&store, std::slice::from_ref(&doc));
        let mut want = doc.clone();
        want.trace.pid = None;
        let got = store.load(doc.trace.trace_id).unwrap();
        assert_eq!(got.trace, want.trace);
        assert_eq!(got.spans.len(), want.spans.len());
        for (g, w) in got.spans.iter().zip(&want.spans) {
            assert_eq!(g, w);
        }

        // The mid-run batch again (a retry that came late): the trace stays ended.
        ingested(&store, std::slice::from_ref(&running));
        assert_eq!(store.load(doc.trace.trace_id).unwrap().trace, want.trace);
    }

    #[test]
    fn a_row_for_another_trace_is_refused() {
        let doc = fixture::every_kind();
        let Record::Traces(mut request) = request(std::slice::from_ref(&doc)) else {
            panic!("traces")
        };
        let mut other = doc.trace.clone();
        other.trace_id = crate::trace::TraceId::generate();
        let root = &mut request.resource_spans[0].scope_spans[0].spans[0];
        for kv in &mut root.attributes {
            if kv.key == TRACE_ROW_ATTRIBUTE {
                kv.value = Some(AnyValue {
                    value: Some(any_value::Value::StringValue(
                        serde_json::to_string(&other).unwrap(),
                    )),
                });
            }
        }
        let err = crate::ingest::otlp::from_request(&request).unwrap_err();
        assert!(err.to_string().contains("names trace"), "{err}");
    }
}
