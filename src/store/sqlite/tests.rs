use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::*;
use crate::store::StoreWriter;
use crate::trace::{
    ErrorInfo, Event, Sink, Span, SpanId, SpanKind, StartedSpan, Status, Timestamp, Trace, TraceId,
    Usage,
};

const T0: i64 = 1_795_990_774_000_000;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    (dir, path)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn trace_id(first: u8, n: u8) -> TraceId {
    let mut b = [0x11; 16];
    b[0] = first;
    b[1] = 0xcd;
    b[2] = n;
    TraceId(b)
}

fn trace(id: TraceId, started: i64) -> Trace {
    Trace {
        started_at: Timestamp(started),
        ..Trace::running(id, "Support", "Support Flow")
    }
}

fn span(t: TraceId, id: u8, parent: Option<u8>, kind: SpanKind, name: &str, start: i64) -> Span {
    Span {
        span_id: SpanId([id; 8]),
        trace_id: t,
        parent_id: parent.map(|p| SpanId([p; 8])),
        kind,
        name: name.into(),
        status: Status::Running,
        started_at: Timestamp(start),
        ended_at: None,
        attributes: Map::new(),
        events: Vec::new(),
        error: None,
    }
}

fn ended(mut s: Span, end: i64, status: Status) -> Span {
    s.ended_at = Some(Timestamp(end));
    s.status = status;
    s
}

/// Writes a finished trace through a writer, as a run would.
fn record(sink: &dyn Sink, mut t: Trace, spans: &[Span]) {
    sink.trace_started(&t);
    for s in spans {
        let mut started = s.clone();
        started.status = Status::Running;
        started.ended_at = None;
        started.events.clear();
        sink.span_started(&StartedSpan::of(started));
    }
    for s in spans.iter().rev() {
        sink.span_ended(&Arc::new(s.clone()));
    }
    t.status = Status::Ok;
    t.ended_at = Some(Timestamp(t.started_at.0 + 1_000_000));
    sink.trace_ended(&t);
}

fn write(path: &Path, traces: Vec<(Trace, Vec<Span>)>) {
    let writer = StoreWriter::spawn(crate::store::Store::open(path).unwrap());
    for (t, spans) in traces {
        record(&*writer.sink(), t, &spans);
    }
    writer.close().unwrap();
}

#[test]
fn a_trace_round_trips_in_tree_order() {
    let (_dir, path) = temp();
    let id = trace_id(0xab, 1);
    let mut t = trace(id, T0);
    t.group_id = Some("conv_1".into());
    t.metadata = obj(json!({"customer_id": "cust_789", "priority": 2}));
    t.usage = Usage::new(3, 4);

    let mut a = ended(
        span(id, 1, None, SpanKind::Custom, "A", T0 + 10),
        T0 + 500,
        Status::Ok,
    );
    a.events = vec![
        Event {
            name: "first".into(),
            time: Timestamp(T0 + 11),
            attributes: obj(json!({"records": 100})),
        },
        Event {
            name: "second".into(),
            time: Timestamp(T0 + 12),
            attributes: Map::new(),
        },
    ];
    // Siblings started out of insertion order: C starts before B.
    let b = ended(
        span(id, 2, Some(1), SpanKind::Command, "B", T0 + 40),
        T0 + 50,
        Status::Ok,
    );
    let c = ended(
        span(id, 3, Some(1), SpanKind::Agent, "C", T0 + 20),
        T0 + 30,
        Status::Ok,
    );
    let mut d = ended(
        span(id, 4, Some(3), SpanKind::Generation, "D", T0 + 21),
        T0 + 29,
        Status::Ok,
    );
    d.attributes = obj(json!({"model": "gpt-4o-mini", "usage": Usage::new(3, 4)}));
    let mut e = ended(
        span(id, 5, None, SpanKind::Command, "E", T0 + 600),
        T0 + 700,
        Status::Error,
    );
    e.error = Some(ErrorInfo::with_data("exit 1", json!({"exit_code": 1})));
    // A span whose parent was never recorded.
    let orphan = ended(
        span(id, 6, Some(9), SpanKind::Custom, "O", T0 + 1),
        T0 + 2,
        Status::Ok,
    );

    write(
        &path,
        vec![(
            t.clone(),
            vec![
                a.clone(),
                b.clone(),
                c.clone(),
                d.clone(),
                e.clone(),
                orphan.clone(),
            ],
        )],
    );

    let store = Store::open_existing(&path).unwrap();
    let doc = store.load(id).unwrap();
    let names: Vec<&str> = doc.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["A", "C", "D", "B", "E", "O"]);
    assert_eq!(doc.spans, vec![a, c, d, b, e, orphan]);
    assert_eq!(doc.trace.status, Status::Ok);
    assert_eq!(doc.trace.usage, Usage::new(3, 4));
    assert_eq!(doc.trace.metadata, t.metadata);
    assert_eq!(doc.trace.group_id.as_deref(), Some("conv_1"));
    assert_eq!(doc.trace.started_at, Timestamp(T0));
    assert_eq!(doc.trace.ended_at, Some(Timestamp(T0 + 1_000_000)));
    assert_eq!(doc.trace.pid, Some(std::process::id()));
}

#[test]
fn a_trace_start_does_not_wait_for_the_disk_but_settle_does() {
    let (_dir, path) = temp();
    let id = trace_id(0xab, 2);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    // Another process holds the write lock for a while.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (locked, release) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _ = release.recv();
        std::thread::sleep(std::time::Duration::from_millis(200));
        blocker.execute_batch("COMMIT").unwrap();
    });
    // The engine goes on at once (agent steps need nothing from the store) ...
    sink.trace_started(&trace(id, T0));
    let reader = Store::open_existing(&path).unwrap();
    assert!(
        reader.load(id).is_err(),
        "trace_started waited for the commit"
    );
    // ... and a command step about to start a process waits until the trace is committed.
    locked.send(()).unwrap();
    sink.settle();
    assert_eq!(reader.load(id).unwrap().trace.status, Status::Running);
    assert!(!reader.claim_trace_id(id, "nested").unwrap());
    holder.join().unwrap();
    // Settled once, settling again does not wait.
    sink.settle();
    writer.close().unwrap();
}

/// Copies the store's `.db` file, without its WAL, into `dir` and reads trace `id` from the copy
/// (as from a store uploaded as a CI artifact).
fn load_from_db_file_alone(dir: &Path, path: &Path, id: TraceId) -> crate::trace::TraceDoc {
    let copy = dir.join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    Store::open(&copy).unwrap().load(id).unwrap()
}

#[test]
fn an_idle_writer_copies_its_commits_into_the_database_file() {
    let (dir, path) = temp();
    let id = trace_id(0xab, 3);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    sink.trace_started(&trace(id, T0));
    sink.settle();
    sink.span_ended(&Arc::new(ended(
        span(id, 1, None, SpanKind::Custom, "A", T0),
        T0 + 5,
        Status::Ok,
    )));
    // Nothing more for a while: the run waits on a model call.
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The database file alone, without its WAL, already holds the run so far.
    let doc = load_from_db_file_alone(dir.path(), &path, id);
    assert_eq!(doc.spans.len(), 1);
    writer.close().unwrap();
}

#[test]
fn a_span_start_waits_for_its_end_and_a_span_that_runs_on_is_written_running() {
    let (_dir, path) = temp();
    let id = trace_id(0xab, 5);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let reader = Store::open(&path).unwrap();
    let sink = writer.sink();
    sink.trace_started(&trace(id, T0));
    sink.settle();
    let long = span(id, 1, None, SpanKind::Custom, "long", T0 + 1);
    let short = span(id, 2, None, SpanKind::Custom, "short", T0 + 2);
    let sent = std::time::Instant::now();
    sink.span_started(&StartedSpan::of(long.clone()));
    sink.span_started(&StartedSpan::of(short.clone()));
    sink.span_ended(&Arc::new(ended(short, T0 + 3, Status::Ok)));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let early = reader.load(id).unwrap();
    if sent.elapsed() < std::time::Duration::from_millis(200) {
        // The short span is written as it ended; the long one's start still waits.
        let names: Vec<&str> = early.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["short"]);
    }
    // Past the wait, the span that runs on is in the store, running.
    let doc = eventually(
        || reader.load(id).unwrap(),
        |doc| doc.spans.iter().any(|s| s.name == "long"),
    );
    let long_row = doc.spans.iter().find(|s| s.name == "long").unwrap();
    assert_eq!(long_row.status, Status::Running);
    sink.span_ended(&Arc::new(ended(long, T0 + 900, Status::Ok)));
    writer.close().unwrap();
    let doc = reader.load(id).unwrap();
    assert!(doc.spans.iter().all(|s| s.status == Status::Ok));
}

#[test]
fn once_the_store_is_closed_the_database_file_alone_holds_the_run() {
    let (dir, path) = temp();
    let id = trace_id(0xab, 4);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    let mut t = trace(id, T0);
    sink.trace_started(&t);
    for n in 1..=50 {
        let s = span(id, n, None, SpanKind::Custom, "step", T0 + i64::from(n));
        sink.span_ended(&Arc::new(ended(s, T0 + 100, Status::Ok)));
    }
    t.status = Status::Ok;
    t.ended_at = Some(Timestamp(T0 + 200));
    sink.trace_ended(&t);
    writer.close().unwrap();
    let doc = load_from_db_file_alone(dir.path(), &path, id);
    assert_eq!(doc.trace.status, Status::Ok);
    assert_eq!(doc.spans.len(), 50);
}

/// `read()` once `done` holds of it, or as it stands after 10 s.
fn eventually<T>(read: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let value = read();
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn spans_reach_the_disk_without_a_flush() {
    let (_dir, path) = temp();
    let id = trace_id(0xab, 1);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    sink.trace_started(&trace(id, T0));
    // The trace row is committed once settle returns: a run started right after under this
    // trace's TRACEPARENT (by a command step) finds the id taken.
    sink.settle();
    let reader = Store::open_existing(&path).unwrap();
    assert_eq!(reader.load(id).unwrap().trace.status, Status::Running);
    assert!(!reader.claim_trace_id(id, "nested").unwrap());
    sink.span_ended(&Arc::new(ended(
        span(id, 1, None, SpanKind::Custom, "A", T0),
        T0 + 5,
        Status::Ok,
    )));
    // Nobody flushes: the writer commits on its own, within its window (a few ms; the wait is
    // long only so that a loaded machine cannot fail the test).
    let doc = eventually(|| reader.load(id).unwrap(), |doc| doc.spans.len() == 1);
    assert_eq!(doc.spans.len(), 1);
    // A span start on its own is held back a little (see writer.rs), never for good.
    sink.span_started(&StartedSpan::of(span(
        id,
        2,
        None,
        SpanKind::Agent,
        "B",
        T0 + 6,
    )));
    let doc = eventually(|| reader.load(id).unwrap(), |doc| doc.spans.len() == 2);
    assert_eq!(doc.spans.len(), 2);
    assert_eq!(doc.spans[1].status, Status::Running);
    writer.close().unwrap();
}

#[test]
fn ids_resolve_from_last_full_ids_and_prefixes() {
    let (_dir, path) = temp();
    let a = trace_id(0xab, 1);
    let b = trace_id(0xab, 2);
    let c = trace_id(0x12, 3);
    let store = crate::store::Store::open(&path).unwrap();
    assert!(matches!(
        store.resolve("last"),
        Err(StoreError::NoTraces { .. })
    ));
    write(
        &path,
        vec![
            (trace(a, T0 + 2), vec![]),
            (trace(b, T0 + 3), vec![]),
            (trace(c, T0 + 1), vec![]),
        ],
    );
    assert_eq!(store.resolve("last").unwrap(), b);
    assert_eq!(store.resolve(&a.to_string()).unwrap(), a);
    assert_eq!(store.resolve(&a.hex()).unwrap(), a);
    assert_eq!(store.resolve("abcd01").unwrap(), a);
    assert_eq!(store.resolve("trace_ABCD02").unwrap(), b);
    assert_eq!(store.resolve("12cd").unwrap(), c);
    // `find` is resolve then load: the same references, the whole document.
    assert_eq!(
        crate::store::Store::open(&path)
            .unwrap()
            .find("last")
            .unwrap()
            .trace
            .trace_id,
        b
    );
    assert_eq!(
        crate::store::Store::open(&path)
            .unwrap()
            .find("12cd")
            .unwrap()
            .trace
            .trace_id,
        c
    );
    assert!(matches!(
        store.find("trace_abcd"),
        Err(StoreError::Ambiguous { .. })
    ));

    let err = store.resolve("trace_abcd").unwrap_err();
    assert!(
        matches!(err, StoreError::Ambiguous { total: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("the id trace_abcd is ambiguous: it matches {b}, {a}; give more of the id")
    );
    assert!(matches!(
        store.resolve("ffff"),
        Err(StoreError::NotFound { .. })
    ));
    let unknown = trace_id(0xee, 9).to_string();
    let err = store.resolve(&unknown).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no trace matches {unknown} in the store {}", path.display())
    );
    for bad in ["ab", "trace_abc", "xyzw", "", "trace_"] {
        assert!(
            matches!(store.resolve(bad), Err(StoreError::BadId { .. })),
            "{bad}"
        );
    }
}

#[test]
fn list_filters_each_narrow_the_result() {
    let (_dir, path) = temp();
    let mk = |n: u8, group: Option<&str>, workflow: &str, meta: Value| {
        let mut t = trace(trace_id(0x20, n), T0 + i64::from(n) * 1_000_000);
        t.group_id = group.map(String::from);
        t.workflow = workflow.into();
        t.metadata = obj(meta);
        t
    };
    let t1 = mk(1, Some("g1"), "W1", json!({"customer_id": "c1", "n": 5}));
    let t2 = mk(
        2,
        Some("g1"),
        "W2",
        json!({"customer_id": "c2", "flag": true}),
    );
    let t3 = mk(3, None, "W1", json!({"customer_id": "c1"}));
    let store = Store::open(&path).unwrap();
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    record(&*writer.sink(), t1.clone(), &[]);
    record(&*writer.sink(), t2.clone(), &[]);
    // t3 fails.
    let sink = writer.sink();
    sink.trace_started(&t3);
    let mut failed = t3.clone();
    failed.status = Status::Error;
    failed.ended_at = Some(Timestamp(failed.started_at.0 + 5));
    sink.trace_ended(&failed);
    writer.close().unwrap();

    let ids = |f: ListFilter| -> Vec<TraceId> {
        store.list(&f).unwrap().iter().map(|t| t.trace_id).collect()
    };
    let (a, b, c) = (t1.trace_id, t2.trace_id, t3.trace_id);
    assert_eq!(ids(ListFilter::default()), [c, b, a]);
    let f = ListFilter::default;
    assert_eq!(
        ids(ListFilter {
            group: Some("g1".into()),
            ..f()
        }),
        [b, a]
    );
    assert_eq!(
        ids(ListFilter {
            workflow: Some("W1".into()),
            ..f()
        }),
        [c, a]
    );
    assert_eq!(
        ids(ListFilter {
            status: Some(Status::Error),
            ..f()
        }),
        [c]
    );
    assert_eq!(
        ids(ListFilter {
            status: Some(Status::Ok),
            ..f()
        }),
        [b, a]
    );
    let meta = |k: &str, v: &str| ListFilter {
        meta: vec![(k.into(), v.into())],
        ..f()
    };
    assert_eq!(ids(meta("customer_id", "c1")), [c, a]);
    assert_eq!(ids(meta("n", "5")), [a]);
    assert_eq!(ids(meta("flag", "true")), [b]);
    assert_eq!(ids(meta("customer_id", "nobody")), []);
    let both = ListFilter {
        meta: vec![
            ("customer_id".into(), "c1".into()),
            ("n".into(), "5".into()),
        ],
        ..f()
    };
    assert_eq!(ids(both), [a]);
    let since = ListFilter {
        since: Some(Timestamp(T0 + 2_000_000)),
        ..f()
    };
    assert_eq!(ids(since), [c, b]);
    assert_eq!(
        ids(ListFilter {
            limit: Some(2),
            ..f()
        }),
        [c, b]
    );
    let listed = &store.list(&f()).unwrap()[0];
    assert_eq!(listed, &failed);
}

fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn a_dead_run_is_closed_as_did_not_finish() {
    let (_dir, path) = temp();
    let pid = dead_pid();
    let dead = trace_id(0x30, 1);
    let alive = trace_id(0x30, 2);
    let mut t = trace(dead, T0);
    t.pid = Some(pid);
    let outer = span(dead, 1, None, SpanKind::Agent, "agent", T0 + 10);
    let mut done = ended(
        span(dead, 2, Some(1), SpanKind::Generation, "gen", T0 + 20),
        T0 + 300,
        Status::Ok,
    );
    done.attributes = obj(json!({"usage": Usage::new(10, 20)}));
    let open = span(dead, 3, Some(1), SpanKind::Generation, "gen2", T0 + 400);

    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    sink.trace_started(&t);
    sink.span_started(&StartedSpan::of(outer.clone()));
    sink.span_ended(&Arc::new(done.clone()));
    sink.span_started(&StartedSpan::of(open.clone()));
    // A run still going (it holds its run lock): never touched.
    let live = Store::open(&path).unwrap();
    assert!(live.hold_run(alive));
    sink.trace_started(&trace(alive, T0 + 1));
    writer.close().unwrap();

    let store = Store::open_existing(&path).unwrap();
    let doc = store.load(dead).unwrap();
    let message = format!("did not finish: the run (pid {pid}) ended without closing its trace");
    assert_eq!(doc.trace.status, Status::Error);
    assert_eq!(doc.trace.error, Some(ErrorInfo::new(message.clone())));
    assert_eq!(doc.trace.ended_at, Some(Timestamp(T0 + 400)));
    assert_eq!(doc.trace.usage, Usage::new(10, 20));
    let statuses: Vec<_> = doc
        .spans
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("agent", Status::Error),
            ("gen", Status::Ok),
            ("gen2", Status::Error)
        ]
    );
    assert_eq!(doc.spans[0].error, Some(ErrorInfo::did_not_finish()));
    assert!(doc.spans[0].did_not_finish() && !doc.spans[1].did_not_finish());
    assert_eq!(doc.spans[1].error, None);

    // Written back: a fresh connection sees it without reconciling again.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let (status, err): (String, String) = raw
        .query_row(
            "SELECT status, error FROM traces WHERE trace_id = ?1",
            [dead.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "error");
    assert!(err.contains(&message));

    let listed = store.list(&ListFilter::default()).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].trace_id, alive);
    assert_eq!(listed[0].status, Status::Running);
    assert_eq!(listed[1].status, Status::Error);
}

#[test]
fn list_reconciles_dead_runs_before_filtering() {
    let (_dir, path) = temp();
    let mut t = trace(trace_id(0x31, 1), T0);
    t.pid = Some(dead_pid());
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    writer.sink().trace_started(&t);
    writer.close().unwrap();
    let store = Store::open_existing(&path).unwrap();
    let running = ListFilter {
        status: Some(Status::Running),
        ..Default::default()
    };
    assert!(store.list(&running).unwrap().is_empty());
    let failed = ListFilter {
        status: Some(Status::Error),
        ..Default::default()
    };
    let listed = store.list(&failed).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ended_at, Some(Timestamp(T0)));
}

#[test]
fn a_store_from_a_newer_version_is_refused() {
    let (_dir, path) = temp();
    drop(Store::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    for result in [Store::open(&path), Store::open_existing(&path)] {
        let err = result.err().unwrap();
        assert!(matches!(
            err,
            StoreError::TooNew {
                found: 99,
                supported: super::schema::VERSION,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            format!(
                "the store {} has schema version 99, newer than this agentrace knows ({}); \
                 upgrade agentrace to read it",
                path.display(),
                super::schema::VERSION
            )
        );
    }
}

#[test]
fn a_file_that_is_not_a_database_is_named_as_such() {
    let (_dir, path) = temp();
    std::fs::write(&path, "name: not a database\n".repeat(100)).unwrap();
    for result in [Store::open(&path), Store::open_existing(&path)] {
        let err = result.err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not an agentrace store (file is not a database)",
                path.display()
            )
        );
    }
}

#[test]
fn a_missing_store_is_empty_for_readers_and_not_created() {
    let (_dir, path) = temp();
    let err = Store::open_existing(&path).err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "no traces recorded yet (store {} does not exist)",
            path.display()
        )
    );
    assert!(!path.exists());
}

#[test]
fn the_store_is_private_even_under_umask_0() {
    use nix::sys::stat::{Mode, umask};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/traces.db");
    let old = umask(Mode::empty());
    let result = Store::open(&path).map(|store| {
        let writer = StoreWriter::spawn(crate::store::Store::Sqlite(store));
        record(&*writer.sink(), trace(trace_id(0x40, 1), T0), &[]);
        writer.flush().unwrap();
        writer
    });
    umask(old);
    let writer = result.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            assert_eq!(mode(&side), 0o600, "{suffix}");
        }
    }
    writer.close().unwrap();
}

#[test]
fn eight_writers_at_once_lose_nothing() {
    let (_dir, path) = temp();
    let threads: Vec<_> = (0..8u8)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let writer = StoreWriter::spawn(crate::store::Store::open(&path)?);
                for n in 0..3u8 {
                    let id = trace_id(0x50 + w, n);
                    let spans: Vec<Span> = (1..=50u8)
                        .map(|i| {
                            let parent = (i > 1).then_some(1);
                            let s =
                                span(id, i, parent, SpanKind::Command, "step", T0 + i64::from(i));
                            ended(s, T0 + 100 + i64::from(i), Status::Ok)
                        })
                        .collect();
                    record(&*writer.sink(), trace(id, T0 + i64::from(n)), &spans);
                }
                writer.close()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let store = Store::open_existing(&path).unwrap();
    let traces = store.list(&ListFilter::default()).unwrap();
    assert_eq!(traces.len(), 24);
    for t in traces {
        assert_eq!(t.status, Status::Ok);
        let doc = store.load(t.trace_id).unwrap();
        assert_eq!(doc.spans.len(), 50);
        assert!(doc.spans.iter().all(|s| s.status == Status::Ok));
    }
}

#[test]
fn errors_read_as_sentences() {
    let path = PathBuf::from("/x/traces.db");
    let err = StoreError::Empty { path };
    let text = err.to_string();
    assert!(!text.starts_with("error"));
    assert!(text.chars().next().unwrap().is_lowercase());
    let _unused: Arc<dyn Sink>;
}

#[test]
fn a_corrupted_store_gives_an_error_not_a_panic() {
    let (_dir, path) = temp();
    let id = trace_id(0x60, 1);
    let spans: Vec<Span> = (1..=40u8)
        .map(|i| {
            ended(
                span(id, i, None, SpanKind::Custom, &"x".repeat(200), T0),
                T0 + 1,
                Status::Ok,
            )
        })
        .collect();
    write(&path, vec![(trace(id, T0), spans)]);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192);
    for b in &mut bytes[4096..] {
        *b = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let result = Store::open_existing(&path).and_then(|store| {
        store.list(&ListFilter::default())?;
        store.load(id)
    });
    let err = result.expect_err("a corrupted store must not read cleanly");
    assert!(
        matches!(
            err,
            StoreError::Corrupt { .. } | StoreError::NotADatabase { .. }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_full_disk_is_reported_by_flush_and_raises_the_alarm() {
    let (_dir, path) = temp();
    let store = Store::open(&path).unwrap();
    // SQLite reports a page limit reached exactly as a full disk.
    let pages: i64 = store
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    store
        .conn
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let writer = StoreWriter::spawn(crate::store::Store::Sqlite(store));
    let alarm = crate::trace::Alarm::default();
    writer.sink().watch(&alarm);
    let id = trace_id(0x70, 1);
    let spans: Vec<Span> = (1..=100u8)
        .map(|i| {
            ended(
                span(id, i, None, SpanKind::Custom, &"x".repeat(500), T0),
                T0 + 1,
                Status::Ok,
            )
        })
        .collect();
    record(&*writer.sink(), trace(id, T0), &spans);
    let err = writer.close().unwrap_err();
    let reason = format!(
        "cannot write to the store {}: the disk is full",
        path.display()
    );
    assert_eq!(err.to_string(), reason);
    // The run was told at once, to stop.
    assert_eq!(alarm.reason(), Some(reason.as_str()));
}

#[test]
fn a_read_only_store_reconciles_in_memory_only() {
    let (_dir, path) = temp();
    let mut t = trace(trace_id(0x80, 1), T0);
    t.pid = Some(dead_pid());
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    writer.sink().trace_started(&t);
    writer.sink().span_started(&StartedSpan::of(span(
        t.trace_id,
        1,
        None,
        SpanKind::Custom,
        "a",
        T0 + 5,
    )));
    writer.close().unwrap();

    let store = Store::connect(&path, true).unwrap();
    assert!(store.read_only);
    let doc = store.load(t.trace_id).unwrap();
    assert_eq!(doc.trace.status, Status::Error);
    assert_eq!(doc.spans[0].status, Status::Error);
    let failed = ListFilter {
        status: Some(Status::Error),
        ..Default::default()
    };
    assert_eq!(store.list(&failed).unwrap().len(), 1);
    let running = ListFilter {
        status: Some(Status::Running),
        ..Default::default()
    };
    assert!(store.list(&running).unwrap().is_empty());
    let raw = rusqlite::Connection::open(&path).unwrap();
    let status: String = raw
        .query_row("SELECT status FROM traces", [], |r| r.get(0))
        .unwrap();
    assert_eq!(status, "running");
}

/// Writes three 50-span traces as worker `AGENTRACE_TEST_WORKER` into the store named by
/// `AGENTRACE_TEST_STORE`; run as a child process by `eight_processes_at_once_lose_nothing`.
#[test]
#[ignore = "a child process of eight_processes_at_once_lose_nothing"]
fn writer_process() {
    let (Some(path), Some(worker)) = (
        std::env::var_os("AGENTRACE_TEST_STORE"),
        std::env::var("AGENTRACE_TEST_WORKER").ok(),
    ) else {
        return;
    };
    let w: u8 = worker.parse().unwrap();
    let writer = StoreWriter::spawn(crate::store::Store::open(Path::new(&path)).unwrap());
    for n in 0..3u8 {
        let id = trace_id(0x90 + w, n);
        let spans: Vec<Span> = (1..=50u8)
            .map(|i| {
                let s = span(id, i, (i > 1).then_some(1), SpanKind::Command, "step", T0);
                ended(s, T0 + 100, Status::Ok)
            })
            .collect();
        record(&*writer.sink(), trace(id, T0 + i64::from(n)), &spans);
    }
    writer.close().unwrap();
}

#[test]
fn eight_processes_at_once_lose_nothing() {
    let (_dir, path) = temp();
    let exe = std::env::current_exe().unwrap();
    // The test's name as libtest knows it: its module path without the crate's name.
    let (_, module) = module_path!().split_once("::").unwrap();
    let name = format!("{module}::writer_process");
    let children: Vec<_> = (0..8)
        .map(|w| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    &name,
                    "--ignored",
                    "--quiet",
                    // A failing child's panic then reaches this test's stderr.
                    "--nocapture",
                ])
                .env("AGENTRACE_TEST_STORE", &path)
                .env("AGENTRACE_TEST_WORKER", w.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let store = Store::open_existing(&path).unwrap();
    let traces = store.list(&ListFilter::default()).unwrap();
    assert_eq!(traces.len(), 24);
    for t in traces {
        assert_eq!(t.status, Status::Ok);
        assert_eq!(store.load(t.trace_id).unwrap().spans.len(), 50);
    }
}

#[test]
fn a_version_1_store_is_migrated_and_keeps_its_traces() {
    let (_dir, path) = temp();
    drop(Store::open(&path).unwrap());
    // Make it look like a store written before sessions existed.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE session_messages; ALTER TABLE traces DROP COLUMN cost_usd; \
         DROP TABLE fts_traces; DROP TABLE fts_spans; DROP TABLE fts_events; \
         DROP TRIGGER fts_traces_insert; DROP TRIGGER fts_traces_update; \
         DROP TRIGGER fts_traces_delete; DROP TRIGGER IF EXISTS fts_spans_insert; \
         DROP TRIGGER IF EXISTS fts_spans_update; DROP TRIGGER fts_spans_delete; \
         DROP TRIGGER fts_events_insert; DROP TRIGGER fts_events_update; \
         DROP TRIGGER fts_events_delete; \
         DROP TABLE experiment_shards; DROP TABLE experiment_runs; DROP TABLE experiments; \
         DROP INDEX events_by_name; \
         DROP INDEX traces_by_reversed_id; ALTER TABLE traces DROP COLUMN reversed_id; \
         PRAGMA user_version = 1",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, super::schema::VERSION);
    assert_eq!(store.session_messages_before("any", None).unwrap(), vec![]);
}

mod ingest {
    use super::*;
    use crate::store::IngestSummary;
    use crate::trace::ingest::{Ingest, TraceHeader};

    fn header(id: TraceId, name: &str) -> TraceHeader {
        TraceHeader {
            trace_id: id,
            name: name.into(),
            workflow: name.into(),
            group_id: Some("conv_9".into()),
            metadata: obj(json!({"customer": "c1"})),
        }
    }

    fn generation(t: TraceId, id: u8, parent: Option<u8>, tokens: (u64, u64), cost: f64) -> Span {
        let mut s = ended(
            span(
                t,
                id,
                parent,
                SpanKind::Generation,
                "gpt-x",
                T0 + i64::from(id) * 10,
            ),
            T0 + i64::from(id) * 10 + 5,
            Status::Ok,
        );
        s.attributes = obj(
            json!({"model": "gpt-x", "usage": Usage::new(tokens.0, tokens.1), "cost_usd": cost}),
        );
        s
    }

    #[test]
    fn cancelled_spans_make_a_cancelled_trace_and_a_runs_own_trace_is_left_to_it() {
        let (_dir, path) = temp();
        let id = trace_id(0x43, 1);
        let store = crate::store::Store::open(&path).unwrap();
        let stopped = ended(
            span(id, 1, None, SpanKind::Custom, "Batch", T0),
            T0 + 50,
            Status::Cancelled,
        );
        store
            .ingest(&Ingest {
                traces: vec![header(id, "Nightly")],
                spans: vec![stopped],
                rows: Vec::new(),
            })
            .unwrap();
        assert_eq!(store.load(id).unwrap().trace.status, Status::Cancelled);

        // A trace written by a run (with its pid) and then sent back here, say by its own OTLP
        // export: the run's trace row stays as the run wrote it.
        let own = trace_id(0x43, 2);
        let mut t = trace(own, T0);
        t.name = "Local run".into();
        let failed = ended(
            span(own, 1, None, SpanKind::Command, "step", T0),
            T0 + 9,
            Status::Error,
        );
        write(&path, vec![(t, vec![failed.clone()])]);
        let before = store.load(own).unwrap().trace;
        let mut resent = failed;
        resent.status = Status::Ok;
        store
            .ingest(&Ingest {
                traces: vec![header(own, "Renamed")],
                spans: vec![resent],
                rows: Vec::new(),
            })
            .unwrap();
        let after = store.load(own).unwrap().trace;
        assert_eq!(after, before);
    }

    #[test]
    fn last_names_the_newest_run_never_an_ingested_trace() {
        let (_dir, path) = temp();
        let store = crate::store::Store::open(&path).unwrap();
        let sent = trace_id(0x51, 1);
        let future = T0 + 100 * 365 * 24 * 3600 * 1_000_000;
        store
            .ingest(&Ingest {
                traces: vec![header(sent, "Sent")],
                spans: vec![ended(
                    span(sent, 1, None, SpanKind::Agent, "a", future),
                    future + 5,
                    Status::Ok,
                )],
                rows: Vec::new(),
            })
            .unwrap();
        let e = store.resolve("last").unwrap_err();
        assert!(matches!(e, StoreError::NoRuns { .. }), "{e:?}");
        assert!(e.to_string().contains("give the trace's id"), "{e}");
        // The ingested trace is newer, and still not `last`.
        let run = trace_id(0x52, 1);
        write(&path, vec![(trace(run, T0), vec![])]);
        assert_eq!(store.resolve("last").unwrap(), run);
        assert_eq!(store.resolve(&sent.to_string()).unwrap(), sent);
        let newest = store.list(&ListFilter::default()).unwrap();
        assert_eq!(newest[0].trace_id, sent, "listed first, by its start");
    }

    #[test]
    fn an_ingested_trace_is_settled_from_its_spans_whatever_the_order() {
        let (_dir, path) = temp();
        let store = crate::store::Store::open(&path).unwrap();
        let id = trace_id(0x42, 1);
        // A child arrives first, with no trace header and no parent yet.
        let child = generation(id, 2, Some(1), (10, 4), 0.5);
        store
            .ingest(&Ingest {
                traces: vec![],
                spans: vec![child.clone()],
                rows: Vec::new(),
            })
            .unwrap();
        let doc = store.load(id).unwrap();
        assert_eq!(
            doc.trace.name, "gpt-x",
            "a placeholder named after the span"
        );
        assert_eq!(doc.trace.status, Status::Ok);
        assert_eq!(doc.spans.len(), 1);

        // The parent is still open: the trace is running.
        let open = span(id, 1, None, SpanKind::Agent, "Writer", T0);
        store
            .ingest(&Ingest {
                traces: vec![header(id, "Drafting")],
                spans: vec![open.clone()],
                rows: Vec::new(),
            })
            .unwrap();
        let doc = store.load(id).unwrap();
        assert_eq!(doc.trace.name, "Drafting");
        assert_eq!(doc.trace.group_id.as_deref(), Some("conv_9"));
        assert_eq!(doc.trace.metadata["customer"], "c1");
        assert_eq!(doc.trace.status, Status::Running);
        assert_eq!(doc.trace.ended_at, None);
        assert_eq!(doc.trace.started_at, Timestamp(T0));
        assert_eq!(
            doc.spans[0].name, "Writer",
            "parents first once both are here"
        );

        // It ends with an error; a second generation adds its tokens and cost.
        let mut failed = ended(open, T0 + 100, Status::Error);
        failed.error = Some(ErrorInfo::new("tool exploded"));
        let second = generation(id, 3, Some(1), (1, 1), 0.25);
        store
            .ingest(&Ingest {
                traces: vec![],
                spans: vec![failed, second],
                rows: Vec::new(),
            })
            .unwrap();
        let doc = store.load(id).unwrap();
        assert_eq!(doc.trace.status, Status::Error);
        assert_eq!(doc.trace.ended_at, Some(Timestamp(T0 + 100)));
        assert_eq!(doc.trace.usage, Usage::new(11, 5));
        assert_eq!(doc.trace.cost_usd, Some(0.75));
        let error = doc.trace.error.expect("the trace says why");
        assert!(
            error.message.contains("Writer") && error.message.contains("tool exploded"),
            "{error:?}"
        );
        assert_eq!(doc.trace.pid, None, "no process to reconcile");

        // The same spans again change nothing.
        let before = store.load(id).unwrap();
        store
            .ingest(&Ingest {
                traces: vec![header(id, "Drafting")],
                spans: before.spans.clone(),
                rows: Vec::new(),
            })
            .unwrap();
        let after = store.load(id).unwrap();
        assert_eq!(after.spans, before.spans);
        assert_eq!(after.trace.usage, before.trace.usage);
        assert_eq!(after.trace.status, before.trace.status);
        assert_eq!(store.list(&ListFilter::default()).unwrap().len(), 1);
    }

    /// The ingests of the settling test above, as they arrived.
    fn arrivals(id: TraceId) -> Vec<Ingest> {
        let open = span(id, 1, None, SpanKind::Agent, "Writer", T0);
        let mut failed = ended(open.clone(), T0 + 100, Status::Error);
        failed.error = Some(ErrorInfo::new("tool exploded"));
        vec![
            Ingest {
                rows: Vec::new(),
                traces: vec![],
                spans: vec![generation(id, 2, Some(1), (10, 4), 0.5)],
            },
            Ingest {
                rows: Vec::new(),
                traces: vec![header(id, "Drafting")],
                spans: vec![open],
            },
            Ingest {
                rows: Vec::new(),
                traces: vec![],
                spans: vec![failed, generation(id, 3, Some(1), (1, 1), 0.25)],
            },
        ]
    }

    #[test]
    fn a_batch_leaves_the_store_as_its_ingests_one_by_one_would() {
        let (_dir, one_path) = temp();
        let (_dir2, many_path) = temp();
        let one = crate::store::Store::open(&one_path).unwrap();
        let many = crate::store::Store::open(&many_path).unwrap();
        let id = trace_id(0x44, 1);
        let other = trace_id(0x44, 2);
        let mut ingests = arrivals(id);
        // Another sender's trace in the same batch, and the first body sent twice.
        ingests.push(Ingest {
            rows: Vec::new(),
            traces: vec![header(other, "Other")],
            spans: vec![generation(other, 1, None, (2, 2), 0.1)],
        });
        ingests.push(ingests[0].clone());
        let summaries: Vec<IngestSummary> =
            ingests.iter().map(|i| one.ingest(i).unwrap()).collect();
        let batch: Vec<&Ingest> = ingests.iter().collect();
        let answers: Vec<IngestSummary> = many
            .ingest_many(&batch)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(answers, summaries);
        for t in [id, other] {
            let (a, b) = (one.load(t).unwrap(), many.load(t).unwrap());
            assert_eq!(b.spans, a.spans);
            assert_eq!(b.trace.status, a.trace.status);
            assert_eq!(b.trace.name, a.trace.name);
            assert_eq!(b.trace.group_id, a.trace.group_id);
            assert_eq!(b.trace.usage, a.trace.usage);
            assert_eq!(b.trace.cost_usd, a.trace.cost_usd);
            assert_eq!(b.trace.started_at, a.trace.started_at);
            assert_eq!(b.trace.ended_at, a.trace.ended_at);
            assert_eq!(b.trace.error, a.trace.error);
        }
        assert_eq!(many.load(id).unwrap().trace.status, Status::Error);
        assert_eq!(many.load(id).unwrap().spans.len(), 3, "no span twice");
        // Found by search, like an ingest's own spans.
        let found = many
            .list(&ListFilter {
                search: Some("gpt".into()),
                ..ListFilter::default()
            })
            .unwrap();
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn ingest_indexes_the_same_text_for_search_as_the_stored_json_gives() {
        let (_dir, path) = temp();
        let store = Store::open(&path).unwrap();
        let cases = [
            json!({}),
            json!({"model": "m", "usage": {"input_tokens": 3}}),
            json!({"input": "plain", "output": ""}),
            json!({"stdout": "last", "output": [{"role": "assistant", "content": "b \"q\" \u{e9}"}],
                   "input": {"messages": [{"role": "user", "content": "a"}, 7, true, null, ["x", {"k": "y"}]]}}),
            json!({"input": 12, "output": {"n": 1.5}, "other": "not searched"}),
        ];
        for attributes in cases {
            let attributes = obj(attributes);
            let expected: Option<String> = store
                .conn
                .query_row(
                    "SELECT group_concat(value, ' ') FROM (
                         SELECT value FROM json_tree(?1, '$.input') WHERE type = 'text'
                         UNION ALL
                         SELECT value FROM json_tree(?1, '$.output') WHERE type = 'text'
                         UNION ALL
                         SELECT value FROM json_tree(?1, '$.stdout') WHERE type = 'text')",
                    [crate::store::writer::map_json(&attributes)],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(
                super::schema::search_text(&attributes),
                expected,
                "{attributes:?}"
            );
        }
    }

    #[test]
    fn one_ingest_that_cannot_be_written_fails_alone_in_its_batch() {
        let (_dir, path) = temp();
        let store = crate::store::Store::open(&path).unwrap();
        // A store that refuses one span name stands for any write that fails for one body.
        store
            .as_sqlite()
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER poison BEFORE INSERT ON main.spans
                 WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned span'); END",
            )
            .unwrap();
        let (good, bad, later) = (trace_id(0x45, 1), trace_id(0x45, 2), trace_id(0x45, 3));
        let body = |t: TraceId, name: &str| Ingest {
            rows: Vec::new(),
            traces: vec![header(t, "Sent")],
            spans: vec![
                ended(
                    span(t, 1, None, SpanKind::Agent, "root", T0),
                    T0 + 9,
                    Status::Ok,
                ),
                ended(
                    span(t, 2, Some(1), SpanKind::Custom, name, T0),
                    T0 + 5,
                    Status::Ok,
                ),
            ],
        };
        let ingests = [body(good, "fine"), body(bad, "poison"), body(later, "fine")];
        let answers = store.ingest_many(&ingests.iter().collect::<Vec<_>>());
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].as_ref().unwrap().spans, 2);
        let e = answers[1].as_ref().unwrap_err();
        assert!(e.to_string().contains("poisoned span"), "{e}");
        assert_eq!(answers[2].as_ref().unwrap().traces, vec![later]);
        assert_eq!(store.load(good).unwrap().spans.len(), 2);
        assert_eq!(store.load(later).unwrap().spans.len(), 2);
        assert!(matches!(
            store.load(bad).unwrap_err(),
            StoreError::NotFound { .. }
        ));
    }
}

#[test]
fn list_rows_never_carry_large_fields_but_show_has_them_whole() {
    let (_dir, path) = temp();
    let id = trace_id(0x61, 1);
    let mut t = trace(id, T0);
    t.name = "n".repeat(2 << 20);
    t.group_id = Some("g".repeat(5000));
    t.metadata.insert("blob".into(), "m".repeat(1 << 20).into());
    for i in 0..200 {
        t.metadata.insert(format!("k{i}"), i.into());
    }
    t.error = Some(ErrorInfo {
        message: "e".repeat(100_000),
        data: serde_json::json!({"stderr": "x".repeat(100_000)}),
    });
    write(&path, vec![(t.clone(), vec![])]);
    let store = Store::open_existing(&path).unwrap();
    let rows = store.list(&ListFilter::default()).unwrap();
    let row = &rows[0];
    let json = serde_json::to_string(&crate::render::json::summary_json(row)).unwrap();
    assert!(json.len() < 80 * 1024, "a list row of {} bytes", json.len());
    assert!(
        row.name.ends_with("…[truncated: 2097152 bytes in all]"),
        "{}",
        &row.name[1000..]
    );
    assert!(row.group_id.as_ref().unwrap().contains("truncated"));
    assert!(row.error.as_ref().unwrap().message.contains("truncated"));
    assert_eq!(row.metadata.len(), crate::store::rows::LIST_ITEMS + 1);
    // The trace itself is untouched.
    let doc = store.load(id).unwrap();
    assert_eq!(doc.trace.name, t.name);
    assert_eq!(doc.trace.metadata, t.metadata);
    assert_eq!(doc.trace.error, t.error);
}

#[test]
fn many_openers_of_a_new_store_at_once_all_get_it() {
    // Several `agentrace run`s started together on a machine's first run: one switches the new
    // file to WAL while the others read its header; none may fail "locked" or "read-only".
    for _ in 0..20 {
        let (_dir, path) = temp();
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            let result = opener.join().unwrap();
            assert!(result.is_ok(), "{result:?}");
        }
    }
}

/// A uuid-v7-like id: the time digits shared, the tail ours.
fn id_with_tail(head: &str, tail: &str) -> TraceId {
    let hex = format!("{head}{}{tail}", "0".repeat(32 - head.len() - tail.len()));
    TraceId::parse(&hex).unwrap()
}

#[test]
fn a_short_id_is_the_shortest_tail_that_names_one_trace_and_resolves_back() {
    let (_dir, path) = temp();
    // Same millisecond, tails that part at the ninth digit from the end; one whose tail is
    // also the head of every id (a tail is looked up at both ends).
    let a = id_with_tail("0192abcd", "11a2b3c4d");
    let b = id_with_tail("0192abcd", "21a2b3c4d");
    let c = id_with_tail("0192abce", "00c0ffee");
    let d = id_with_tail("0192ab", "777777");
    let e = id_with_tail("0192ab", "0192ab");
    write(
        &path,
        [a, b, c, d, e]
            .iter()
            .map(|id| (trace(*id, T0), vec![]))
            .collect(),
    );
    let store = crate::store::Store::open_existing(&path).unwrap();
    assert_eq!(store.short_id(a).unwrap(), "11a2b3c4d");
    assert_eq!(store.short_id(b).unwrap(), "21a2b3c4d");
    assert_eq!(store.short_id(c).unwrap(), "c0ffee");
    assert_eq!(store.short_id(d).unwrap(), "777777");
    // "0192ab" is e's tail but also the head of every id: one more digit.
    assert_eq!(store.short_id(e).unwrap(), "00192ab");
    for id in [a, b, c, d, e] {
        let short = store.short_id(id).unwrap();
        assert_eq!(store.resolve(&short).unwrap(), id, "{short}");
    }
    // A tail shared by two is ambiguous, and says which ids it matches, full.
    let err = store.resolve("a2b3c4d").unwrap_err();
    assert!(
        matches!(err, StoreError::Ambiguous { total: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&a.to_string()) && err.to_string().contains(&b.to_string()),
        "{err}"
    );
    // `trace_` + digits is a head only.
    assert!(matches!(
        store.resolve("trace_c0ffee"),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn a_tail_is_found_by_a_range_of_the_reversed_id_index() {
    let (_dir, path) = temp();
    write(&path, vec![(trace(trace_id(0xab, 1), T0), vec![])]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT trace_id FROM traces
             WHERE reversed_id >= 'abc' AND reversed_id < 'abc' || 'g'",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|p| p
                .contains("USING INDEX traces_by_reversed_id (reversed_id>? AND reversed_id<?)")),
        "{plan:?}"
    );
    let reversed: String = conn
        .query_row("SELECT reversed_id FROM traces", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        reversed,
        trace_id(0xab, 1).hex().chars().rev().collect::<String>()
    );
}

fn lock_files(path: &Path) -> Vec<String> {
    let mut dir = path.as_os_str().to_owned();
    dir.push(".locks");
    match std::fs::read_dir(PathBuf::from(dir)) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_run_holding_its_lock_is_alive_whatever_its_pid_says() {
    let (_dir, path) = temp();
    // A pid that is gone here (as it looks from another PID namespace, or once reused).
    let mut t = trace(trace_id(0x90, 1), T0);
    t.pid = Some(dead_pid());
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    sink.trace_started(&t);
    sink.span_started(&StartedSpan::of(span(
        t.trace_id,
        1,
        None,
        SpanKind::Command,
        "step",
        T0 + 5,
    )));
    writer.flush().unwrap();
    assert_eq!(lock_files(&path), [format!("{}.lock", t.trace_id)]);

    let reader = Store::open_existing(&path).unwrap();
    assert_eq!(
        reader.load(t.trace_id).unwrap().trace.status,
        Status::Running
    );
    let listed = reader.list(&ListFilter::default()).unwrap();
    assert_eq!(listed[0].status, Status::Running);

    // The run dies without closing its trace (its lock goes with it): the next read closes it
    // and removes the lock file.
    drop(writer);
    let doc = reader.load(t.trace_id).unwrap();
    assert_eq!(doc.trace.status, Status::Error);
    assert_eq!(doc.spans[0].status, Status::Error);
    assert!(lock_files(&path).is_empty());
}

#[test]
fn a_finished_run_removes_its_lock_file() {
    let (_dir, path) = temp();
    let id = trace_id(0x91, 1);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    let sink = writer.sink();
    sink.trace_started(&trace(id, T0));
    writer.flush().unwrap();
    assert_eq!(lock_files(&path).len(), 1);
    let mut done = trace(id, T0);
    done.status = Status::Ok;
    done.ended_at = Some(Timestamp(T0 + 10));
    sink.trace_ended(&done);
    writer.close().unwrap();
    assert!(lock_files(&path).is_empty());
    let store = Store::open_existing(&path).unwrap();
    assert_eq!(store.load(id).unwrap().trace.status, Status::Ok);
}

#[test]
fn a_claimed_trace_id_is_locked_and_a_held_one_cannot_be_claimed() {
    let (_dir, path) = temp();
    let id = trace_id(0x92, 1);
    let first = Store::open(&path).unwrap();
    assert!(first.claim_trace_id(id, "w").unwrap());
    // The placeholder row is a live run's: readers leave it alone.
    let reader = Store::open_existing(&path).unwrap();
    assert_eq!(reader.load(id).unwrap().trace.status, Status::Running);
    let second = Store::open(&path).unwrap();
    assert!(!second.claim_trace_id(id, "w").unwrap());
    // A lost claim does not take the winner's lock file with it.
    drop(second);
    assert_eq!(lock_files(&path).len(), 1);
    assert_eq!(reader.load(id).unwrap().trace.status, Status::Running);
}

#[test]
fn a_released_claim_leaves_nothing_and_the_id_can_be_claimed_again() {
    let (_dir, path) = temp();
    let id = trace_id(0x92, 2);
    let first = Store::open(&path).unwrap();
    assert!(first.claim_trace_id(id, "w").unwrap());
    first.release_trace_id(id).unwrap();
    assert!(matches!(first.load(id), Err(StoreError::NotFound { .. })));
    assert!(lock_files(&path).is_empty());
    let second = Store::open(&path).unwrap();
    assert!(second.claim_trace_id(id, "w").unwrap());
}

#[test]
fn a_trace_without_a_lock_file_is_judged_by_its_pid() {
    // Rows as an agentrace from before run locks wrote them.
    let (_dir, path) = temp();
    drop(Store::open(&path).unwrap());
    let dead = trace_id(0x93, 1);
    let mine = trace_id(0x93, 2);
    let raw = rusqlite::Connection::open(&path).unwrap();
    for (id, pid) in [(dead, dead_pid()), (mine, std::process::id())] {
        raw.execute(
            "INSERT INTO traces (trace_id, name, workflow, status, started_at, pid)
             VALUES (?1, 'w', 'w', 'running', ?2, ?3)",
            rusqlite::params![id.to_string(), T0, pid],
        )
        .unwrap();
    }
    let store = Store::open_existing(&path).unwrap();
    assert_eq!(store.load(dead).unwrap().trace.status, Status::Error);
    assert_eq!(store.load(mine).unwrap().trace.status, Status::Running);
}

#[test]
fn an_immutable_open_takes_any_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd ?#%é dir").join("traces.db");
    let id = trace_id(0x94, 1);
    let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
    writer.sink().trace_started(&trace(id, T0));
    writer.close().unwrap();
    let store = Store::connect_immutable(&path).unwrap();
    assert!(store.read_only);
    assert_eq!(store.load(id).unwrap().trace.trace_id, id);
}
