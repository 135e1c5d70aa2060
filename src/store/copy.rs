//! Moving data between stores (`agentrace store copy SRC DST`, `agentrace merge … --into`):
//! traces with their spans, events and scores, conversations, experiments with their runs and
//! shards, in batches of [`BATCH`] traces per transaction, through the methods every backend
//! provides, so that it works between any two of them.
//!
//! A copy is resumable and idempotent: what the destination holds already (compared by id) is
//! skipped, so a copy cut short is finished by running it again, and merging overlapping
//! stores stores nothing twice. A trace copied while its run went on is copied again once the
//! source has moved on. At the end every trace, experiment and run of the source is looked up
//! in the destination: anything missing is an error, not a line in a table.

use std::collections::HashMap;

use super::experiment::{Experiment, SHARDS_KEY};
use super::rows::TraceFingerprint;
use super::{Store, StoreError};
use crate::trace::{Status, TraceId};

/// Traces per transaction (and per read of the source): a big store never needs more than
/// one batch in memory.
pub const BATCH: usize = 500;

/// One kind of record: how many the source holds, how many were written, how many the
/// destination held already.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub source: u64,
    pub copied: u64,
    pub there: u64,
}

impl Counts {
    fn add(&mut self, source: u64, copied: u64) {
        self.source += source;
        self.copied += copied;
        self.there += source.saturating_sub(copied);
    }

    fn merge(&mut self, other: Counts) {
        self.source += other.source;
        self.copied += other.copied;
        self.there += other.there;
    }
}

/// What a copy did, per kind of record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub traces: Counts,
    pub spans: Counts,
    pub events: Counts,
    pub scores: Counts,
    pub session_messages: Counts,
    pub experiments: Counts,
    pub runs: Counts,
    pub shards: Counts,
}

impl CopyReport {
    /// The kinds in the order the table shows them, with their names.
    pub fn rows(&self) -> [(&'static str, Counts); 8] {
        [
            ("traces", self.traces),
            ("spans", self.spans),
            ("events", self.events),
            ("scores", self.scores),
            ("session messages", self.session_messages),
            ("experiments", self.experiments),
            ("experiment runs", self.runs),
            ("experiment shards", self.shards),
        ]
    }

    /// Adds another copy's counts (the inputs of a merge).
    pub fn merge(&mut self, other: &CopyReport) {
        self.traces.merge(other.traces);
        self.spans.merge(other.spans);
        self.events.merge(other.events);
        self.scores.merge(other.scores);
        self.session_messages.merge(other.session_messages);
        self.experiments.merge(other.experiments);
        self.runs.merge(other.runs);
        self.shards.merge(other.shards);
    }
}

/// How an experiment in the source differs from the one of the same id in the destination:
/// `None` when they are the same experiment (its status and end may differ: one of them was
/// copied while it ran). Sharded experiments take their id from their name, so two that
/// disagree here are shards of runs that cannot be merged.
pub fn experiment_mismatch(a: &Experiment, b: &Experiment) -> Option<String> {
    let shards = |e: &Experiment| {
        e.metadata
            .get(SHARDS_KEY)
            .map_or_else(|| "none".to_string(), ToString::to_string)
    };
    let mut why = Vec::new();
    if a.dataset_hash != b.dataset_hash {
        why.push(format!("dataset {} vs {}", a.dataset_hash, b.dataset_hash));
    }
    if shards(a) != shards(b) {
        why.push(format!("shards {} vs {}", shards(a), shards(b)));
    }
    if a.workflow != b.workflow {
        why.push(format!("workflow `{}` vs `{}`", a.workflow, b.workflow));
    }
    if a.repeat != b.repeat {
        why.push(format!("repeat {} vs {}", a.repeat, b.repeat));
    }
    if a.cases != b.cases {
        why.push(format!("{} vs {} cases", a.cases, b.cases));
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// Copies everything `src` holds into `dst` (see the module's doc), calling `progress` after
/// each batch of traces with how many were read so far, and verifies the result.
pub fn copy(
    src: &Store,
    dst: &Store,
    progress: &mut dyn FnMut(u64),
) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport::default();
    copy_experiments(src, dst, &mut report)?;
    copy_traces(src, dst, &mut report, progress)?;
    copy_sessions(src, dst, &mut report)?;
    verify(src, dst)?;
    Ok(report)
}

fn copy_experiments(src: &Store, dst: &Store, report: &mut CopyReport) -> Result<(), StoreError> {
    let there: HashMap<String, Experiment> = dst
        .experiments()?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    for e in src.experiments()? {
        // Checked before anything of it is written: shards that disagree are refused whole.
        if let Some(why) = there.get(&e.id).and_then(|d| experiment_mismatch(&e, d)) {
            return Err(StoreError::ExperimentMismatch {
                name: e.name.clone(),
                id: e.id.clone(),
                why,
            });
        }
        let written = dst.import_experiment(&e)?;
        report.experiments.add(1, u64::from(written));
        let runs = src.experiment_runs(&e.id)?;
        for chunk in runs.chunks(BATCH) {
            let n = dst.import_runs(chunk)?;
            report.runs.add(chunk.len() as u64, n as u64);
        }
        for shard in src.experiment_shards(&e.id)? {
            let n = dst.import_shard(&shard)?;
            report.shards.add(1, u64::from(n));
        }
    }
    Ok(())
}

/// Whether `dst`'s version of a trace (if any) must be replaced by the source's: it has none,
/// or its copy was made while the trace was running and the source has moved on since.
fn needs_copy(src: &TraceFingerprint, dst: Option<&TraceFingerprint>) -> bool {
    match dst {
        None => true,
        Some(d) => d.status == Status::Running && d != src,
    }
}

fn copy_traces(
    src: &Store,
    dst: &Store,
    report: &mut CopyReport,
    progress: &mut dyn FnMut(u64),
) -> Result<(), StoreError> {
    pages(src, dst, |ids, theirs, ours| {
        let need: Vec<TraceId> = ids
            .iter()
            .copied()
            .filter(|id| theirs.get(id).is_some_and(|t| needs_copy(t, ours.get(id))))
            .collect();
        let docs = src.export_traces(&need)?;
        let written = dst.import_traces(&docs)?;
        let sum = |pick: fn(&TraceFingerprint) -> u64, only: Option<&[TraceId]>| -> u64 {
            match only {
                Some(ids) => ids.iter().filter_map(|i| theirs.get(i)).map(pick).sum(),
                None => theirs.values().map(pick).sum(),
            }
        };
        report.traces.add(theirs.len() as u64, written as u64);
        for (counts, pick) in [
            (
                &mut report.spans,
                (|f: &TraceFingerprint| f.spans) as fn(&_) -> u64,
            ),
            (&mut report.events, |f: &TraceFingerprint| f.events),
            (&mut report.scores, |f: &TraceFingerprint| f.scores),
        ] {
            counts.add(sum(pick, None), sum(pick, Some(&need)));
        }
        progress(report.traces.source);
        Ok(())
    })
}

type Fingerprints = HashMap<TraceId, TraceFingerprint>;

/// Calls `f` with each page of the source's trace ids and what each store holds of them.
fn pages(
    src: &Store,
    dst: &Store,
    mut f: impl FnMut(&[TraceId], &Fingerprints, &Fingerprints) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut after: Option<TraceId> = None;
    loop {
        let ids = src.trace_ids_after(after, BATCH)?;
        let Some(&last) = ids.last() else {
            return Ok(());
        };
        after = Some(last);
        f(
            &ids,
            &src.trace_fingerprints(&ids)?,
            &dst.trace_fingerprints(&ids)?,
        )?;
    }
}

fn copy_sessions(src: &Store, dst: &Store, report: &mut CopyReport) -> Result<(), StoreError> {
    let mut after: Option<(String, i64)> = None;
    loop {
        let rows = src.session_rows_after(after.as_ref().map(|(s, n)| (s.as_str(), *n)), BATCH)?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some((last.session.clone(), last.seq));
        let n = dst.import_session_rows(&rows)?;
        report.session_messages.add(rows.len() as u64, n as u64);
    }
    Ok(())
}

/// Every trace of `src` is in `dst` with at least its spans and events (a trace running in the
/// source may have grown since it was read), and every experiment with its runs.
fn verify(src: &Store, dst: &Store) -> Result<(), StoreError> {
    let mut missing: Vec<String> = Vec::new();
    pages(src, dst, |_, theirs, ours| {
        for (id, t) in theirs {
            let ok = ours.get(id).is_some_and(|o| {
                t.status == Status::Running || (o.spans >= t.spans && o.events >= t.events)
            });
            if !ok {
                missing.push(id.to_string());
            }
        }
        Ok(())
    })?;
    let held: HashMap<String, Experiment> = dst
        .experiments()?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    for e in src.experiments()? {
        if !held.contains_key(&e.id) {
            missing.push(e.id.clone());
            continue;
        }
        let runs: std::collections::HashSet<(String, u32)> = dst
            .experiment_runs(&e.id)?
            .into_iter()
            .map(|r| (r.case_id, r.attempt))
            .collect();
        for r in src.experiment_runs(&e.id)? {
            if !runs.contains(&(r.case_id.clone(), r.attempt)) {
                missing.push(format!("{} run {}#{}", e.id, r.case_id, r.attempt));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    Err(StoreError::CopyIncomplete {
        total: missing.len(),
        first: missing.into_iter().take(5).collect(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::StoreWriter;
    use crate::trace::fixture::bare_span;
    use crate::trace::{SpanKind, Timestamp, Trace};

    /// A trace of one span through a writer, as a run records it; closed or left running.
    fn record(writer: &StoreWriter, close: Option<Status>) -> TraceId {
        let id = TraceId::generate();
        let mut t = Trace::running(id, "flow", "flow");
        t.pid = Some(std::process::id());
        let sink = writer.run_sink();
        sink.trace_started(&t);
        let now = Timestamp::now().micros();
        let mut root = bare_span(None, SpanKind::Custom, "flow", now, now + 10);
        root.trace_id = id;
        sink.span_ended(&Arc::new(root));
        if let Some(status) = close {
            t.status = status;
            t.ended_at = Some(Timestamp::now());
            sink.trace_ended(&t);
        }
        id
    }

    #[test]
    fn a_running_trace_is_copied_as_it_is_and_again_once_it_ended() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let src = Store::open(&a).unwrap();
        let dst = Store::open(&b).unwrap();
        let writer = StoreWriter::spawn(Store::open(&a).unwrap());
        let done = record(&writer, Some(Status::Ok));
        let live = record(&writer, None);
        writer.flush().unwrap();

        let first = copy(&src, &dst, &mut |_| {}).unwrap();
        assert_eq!(
            first.traces,
            Counts {
                source: 2,
                copied: 2,
                there: 0
            }
        );
        let copied = dst.export_traces(&[live]).unwrap();
        assert_eq!(copied[0].trace.status, Status::Running);
        assert_eq!(copied[0].trace.pid, None, "its run is not this store's");
        // Its run is alive in the source: a reader of the copy leaves it running.
        assert_eq!(dst.load(live).unwrap().trace.status, Status::Running);

        // The run goes on: a span more, then the close. The next copy brings it again.
        let mut t = Trace::running(live, "flow", "flow");
        let now = Timestamp::now().micros();
        let mut more = bare_span(None, SpanKind::Custom, "more", now, now + 5);
        more.trace_id = live;
        writer.sink().span_ended(&Arc::new(more));
        t.status = Status::Error;
        t.ended_at = Some(Timestamp::now());
        writer.sink().trace_ended(&t);
        writer.close().unwrap();
        let second = copy(&src, &dst, &mut |_| {}).unwrap();
        assert_eq!(
            second.traces,
            Counts {
                source: 2,
                copied: 1,
                there: 1
            }
        );
        assert_eq!(
            second.spans,
            Counts {
                source: 3,
                copied: 2,
                there: 1
            }
        );
        let doc = dst.load(live).unwrap();
        assert_eq!((doc.trace.status, doc.spans.len()), (Status::Error, 2));
        assert_eq!(dst.load(done).unwrap().trace.status, Status::Ok);
        let third = copy(&src, &dst, &mut |_| {}).unwrap();
        assert_eq!(
            third.traces,
            Counts {
                source: 2,
                copied: 0,
                there: 2
            }
        );
    }

    #[test]
    fn pages_of_a_big_store_neither_skip_nor_repeat_a_trace() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let writer = StoreWriter::spawn(Store::open(&a).unwrap());
        let ids: Vec<TraceId> = (0..2 * BATCH + 17)
            .map(|_| record(&writer, Some(Status::Ok)))
            .collect();
        writer.close().unwrap();
        let (src, dst) = (Store::open(&a).unwrap(), Store::open(&b).unwrap());
        // The destination holds every third trace already (a copy cut short, or an overlap).
        let some: Vec<TraceId> = ids.iter().copied().step_by(3).collect();
        dst.import_traces(&src.export_traces(&some).unwrap())
            .unwrap();
        let mut seen = Vec::new();
        let report = copy(&src, &dst, &mut |n| seen.push(n)).unwrap();
        let total = ids.len() as u64;
        let held = some.len() as u64;
        assert_eq!(
            report.traces,
            Counts {
                source: total,
                copied: total - held,
                there: held
            }
        );
        assert_eq!(report.spans.source, total);
        assert_eq!(
            seen,
            [BATCH as u64, 2 * BATCH as u64, total],
            "one call per batch"
        );
        assert_eq!(dst.trace_fingerprints(&ids).unwrap().len(), ids.len());
    }

    #[test]
    fn messages_of_one_session_from_two_stores_are_both_kept_once() {
        use crate::llm::Message;
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| Store::open(dir.path().join(name)).unwrap();
        let (a, b, all) = (open("a.db"), open("b.db"), open("all.db"));
        a.append_session("s", TraceId::generate(), &[Message::user("from a")])
            .unwrap();
        b.append_session("s", TraceId::generate(), &[Message::user("from b")])
            .unwrap();
        for _ in 0..2 {
            copy(&a, &all, &mut |_| {}).unwrap();
            copy(&b, &all, &mut |_| {}).unwrap();
        }
        assert_eq!(
            all.session_messages("s").unwrap(),
            [Message::user("from a"), Message::user("from b")]
        );
    }

    #[test]
    fn experiments_of_one_id_that_differ_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| Store::open(dir.path().join(name)).unwrap();
        let (a, b) = (open("a.db"), open("b.db"));
        let mut e = Experiment::start("nightly", "flow");
        e.dataset_hash = "sha256:aa".into();
        a.create_experiment(&e).unwrap();
        e.dataset_hash = "sha256:bb".into();
        b.create_experiment(&e).unwrap();
        let err = copy(&a, &b, &mut |_| {}).unwrap_err();
        assert!(
            err.to_string().contains("dataset sha256:aa vs sha256:bb"),
            "{err}"
        );
    }
}
