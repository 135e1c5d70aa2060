//! Experiments in SQLite: the `experiments` and `experiment_runs` tables of migration 6, and
//! the reads an eval report needs in few statements whatever the number of cases (the traces of
//! a set of ids, their scores from the events table by the `events_by_name` index).

use std::collections::HashMap;

use rusqlite::{Row, params};

use super::query::{TRACE_COLUMNS, read_trace_row};
use super::writer::write_run;
use super::{Store, StoreError};
use crate::store::experiment::{EXPERIMENT_PREFIX, stored_status};
use crate::store::rows::json_map;
use crate::store::writer::map_json;
use crate::store::{Experiment, ExperimentRun, ExperimentStatus};
use crate::trace::score::{EVALUATION_EVENT, Score};
use crate::trace::{Event, SpanId, Timestamp, Trace, TraceId};

const EXPERIMENT_COLUMNS: &str = "experiment_id, name, workflow, dataset, dataset_hash, \
                                  metadata, status, started_at, ended_at, cases, repeats";

impl Store {
    /// Records a new experiment (its id must be new).
    pub fn create_experiment(&self, e: &Experiment) -> Result<(), StoreError> {
        self.with_write_tx(|tx| insert_experiment(tx, e, ""))
            .map(drop)
    }

    /// Sets how an experiment stands: `ended` with a final status, or `None` with `Running`
    /// when `eval --resume` takes it up again.
    pub fn set_experiment_status(
        &self,
        id: &str,
        status: ExperimentStatus,
        ended: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.with_write_tx(|tx| {
            tx.execute(
                "UPDATE experiments SET status = ?2, ended_at = ?3 WHERE experiment_id = ?1",
                params![id, status.as_str(), ended.map(Timestamp::micros)],
            )?;
            Ok(())
        })
    }

    /// Records the run of a case (replacing an earlier run of the same attempt, whose trace
    /// is gone). The eval's writer thread records runs itself, after their trace's close.
    pub fn record_run(&self, run: &ExperimentRun) -> Result<(), StoreError> {
        self.with_write_tx(|tx| write_run(tx, run))
    }

    /// Takes the lock of the process that runs experiment `id` (as a run holds its trace's:
    /// see [`super::lock`]) until [`Store::release_experiment`] or the process's end. `false`
    /// when another live process holds it.
    pub fn hold_experiment(&self, id: &str) -> bool {
        lock_id(id).is_none_or(|t| self.hold_run(t))
    }

    /// Lets go of the lock of experiment `id` (see [`Store::hold_experiment`]).
    pub fn release_experiment(&self, id: &str) {
        if let Some(t) = lock_id(id) {
            self.release_run(t);
        }
    }

    /// Every experiment, newest first.
    pub fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        self.experiments_where("1 = 1 ORDER BY started_at DESC, rowid DESC", &[])
    }

    /// The experiment of this exact id.
    pub(crate) fn experiment_by_id(&self, id: &str) -> Result<Option<Experiment>, StoreError> {
        Ok(self.experiments_where("experiment_id = ?1", &[id])?.pop())
    }

    /// The newest experiment of this name.
    pub(crate) fn newest_experiment_named(
        &self,
        name: &str,
    ) -> Result<Option<Experiment>, StoreError> {
        Ok(self
            .experiments_where(
                "name = ?1 ORDER BY started_at DESC, rowid DESC LIMIT 1",
                &[name],
            )?
            .pop())
    }

    /// The newest `limit` experiments whose id starts with `prefix` (`exp_` and hex digits:
    /// no GLOB metacharacters).
    pub(crate) fn experiments_starting_with(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Experiment>, StoreError> {
        self.experiments_where(
            &format!("experiment_id GLOB ?1 ORDER BY started_at DESC LIMIT {limit}"),
            &[&format!("{prefix}*")],
        )
    }

    /// The runs of an experiment, by case id then attempt.
    pub fn experiment_runs(&self, id: &str) -> Result<Vec<ExperimentRun>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT case_id, attempt, trace_id FROM experiment_runs
                 WHERE experiment_id = ?1 ORDER BY case_id, attempt",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(case_id, attempt, trace)| {
                Some(ExperimentRun {
                    experiment: id.to_string(),
                    case_id,
                    attempt: u32::try_from(attempt).ok()?,
                    trace_id: TraceId::parse(&trace)?,
                })
            })
            .collect())
    }

    /// The trace rows of `ids` that are still in the store (in no particular order): those
    /// that `rm` or `prune` deleted are simply absent.
    pub fn traces_by_id(&self, ids: &[TraceId]) -> Result<Vec<Trace>, StoreError> {
        let list = id_list(ids);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {TRACE_COLUMNS} FROM traces
                 WHERE trace_id IN (SELECT value FROM json_each(?1))"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([list], read_trace_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.into_iter().map(|r| r.into_trace(&self.path)).collect()
    }

    /// The scores recorded in the traces `ids`, each with its span, in the order they were
    /// written; a trace without scores has no entry.
    pub fn scores_of_traces(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, Vec<(SpanId, Score)>>, StoreError> {
        let list = id_list(ids);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT trace_id, span_id, time, attributes FROM events
                 WHERE name = ?1 AND trace_id IN (SELECT value FROM json_each(?2))
                 ORDER BY seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![EVALUATION_EVENT, list], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let mut scores: HashMap<TraceId, Vec<(SpanId, Score)>> = HashMap::new();
        for (trace, span, time, attributes) in rows {
            let (Some(trace), Some(span)) = (TraceId::parse(&trace), SpanId::parse(&span)) else {
                continue;
            };
            let event = Event {
                name: EVALUATION_EVENT.to_string(),
                time: Timestamp(time),
                attributes: json_map(attributes.as_deref()),
            };
            if let Some(score) = Score::from_event(&event) {
                scores.entry(trace).or_default().push((span, score));
            }
        }
        Ok(scores)
    }

    /// The traces tagged with experiment `id` that no run of it names: what an interrupted
    /// eval left (a case cut short by Ctrl-C or `kill -9`). Dead runs among them are closed
    /// first, as every read does; traces still running are not returned.
    pub fn unrecorded_traces(&self, id: &str) -> Result<Vec<TraceId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT trace_id FROM traces
                 WHERE json_extract(metadata, '$.\"eval.experiment\"') = ?1
                   AND trace_id NOT IN (SELECT trace_id FROM experiment_runs
                                        WHERE experiment_id = ?1)",
            )
            .map_err(|e| self.sql(e))?;
        let ids = stmt
            .query_map([id], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let mut done = Vec::new();
        for id in ids.iter().filter_map(|t| TraceId::parse(t)) {
            // `load` closes the trace of a dead run.
            if self.load(id)?.trace.status != crate::trace::Status::Running {
                done.push(id);
            }
        }
        Ok(done)
    }

    /// A `running` experiment whose process is gone (its lock is free) reads as `cancelled`:
    /// `eval --resume` continues it. Only the value returned changes.
    ///
    /// A sharded experiment (`eval --shard`) has no process of its own: its status is that of
    /// its shards, each judged by its own lock.
    fn unless_dead(&self, mut e: Experiment) -> Experiment {
        if e.status != ExperimentStatus::Running {
            return e;
        }
        match self.experiment_shards(&e.id) {
            Ok(shards) if !shards.is_empty() => {
                e.status = crate::store::experiment::sharded_status(&shards);
            }
            _ => {
                if self.lock_is_dead(&e.id) {
                    e.status = ExperimentStatus::Cancelled;
                }
            }
        }
        e
    }

    /// Whether the lock `key` (an experiment's or a shard's) was held by a process that is
    /// gone: it is free and its file is still there.
    pub(super) fn lock_is_dead(&self, key: &str) -> bool {
        lock_id(key).is_some_and(|t| {
            let probe = Trace::running(t, "", "");
            matches!(self.liveness(&probe), super::lock::Liveness::Dead(_))
        })
    }

    fn experiments_where(
        &self,
        clause: &str,
        args: &[&str],
    ) -> Result<Vec<Experiment>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE {clause}"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), read_experiment)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(|(e, status)| {
                let status = stored_status(&status, &self.path, "experiment")?;
                Ok(Experiment { status, ..e })
            })
            .map(|e| e.map(|e| self.unless_dead(e)))
            .collect()
    }
}

/// Inserts an experiment row; `conflict` is what follows the values (an `ON CONFLICT` clause,
/// or nothing: a second row of one id is then an error). How many rows it wrote.
pub(super) fn insert_experiment(
    tx: &rusqlite::Transaction<'_>,
    e: &Experiment,
    conflict: &str,
) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO experiments ({EXPERIMENT_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) {conflict}"
        ),
        params![
            e.id,
            e.name,
            e.workflow,
            e.dataset,
            e.dataset_hash,
            map_json(&e.metadata),
            e.status.as_str(),
            e.started_at.micros(),
            e.ended_at.map(Timestamp::micros),
            i64::try_from(e.cases).unwrap_or(i64::MAX),
            e.repeat,
        ],
    )
}

/// The lock of an experiment is that of a run whose trace id has the experiment id's digits
/// (both are UUIDv7s: they do not collide).
fn lock_id(id: &str) -> Option<TraceId> {
    TraceId::parse(id.strip_prefix(EXPERIMENT_PREFIX)?)
}

/// An experiment row, with its status as text (checked by the caller).
fn read_experiment(r: &Row<'_>) -> rusqlite::Result<(Experiment, String)> {
    Ok((
        Experiment {
            id: r.get(0)?,
            name: r.get(1)?,
            workflow: r.get(2)?,
            dataset: r.get(3)?,
            dataset_hash: r.get(4)?,
            metadata: json_map(r.get::<_, Option<String>>(5)?.as_deref()),
            status: ExperimentStatus::Running,
            started_at: Timestamp(r.get(7)?),
            ended_at: r.get::<_, Option<i64>>(8)?.map(Timestamp),
            cases: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
            repeat: u32::try_from(r.get::<_, i64>(10)?).unwrap_or(1),
        },
        r.get(6)?,
    ))
}

pub(super) fn id_list(ids: &[TraceId]) -> String {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::store::StoreWriter;
    use crate::store::experiment::EXPERIMENT_KEY;
    use crate::trace::fixture::bare_span;
    use crate::trace::score::ScoreSource;
    use crate::trace::{SpanKind, Status};

    /// Records one finished case trace with `scores` on its root span, through `writer` as an
    /// eval does, and its run after it.
    fn case(writer: &StoreWriter, exp: &str, case_id: &str, scores: &[Score]) -> TraceId {
        let id = TraceId::generate();
        let mut t = Trace::running(id, "flow", "flow");
        t.metadata
            .insert(EXPERIMENT_KEY.into(), json!(exp.to_string()));
        let sink = writer.run_sink();
        sink.trace_started(&t);
        let now = Timestamp::now().micros();
        let mut root = bare_span(None, SpanKind::Custom, "flow", now, now + 10);
        root.trace_id = id;
        root.events = scores
            .iter()
            .map(|s| s.to_event(Timestamp::now()))
            .collect();
        sink.span_ended(&Arc::new(root));
        t.status = Status::Ok;
        t.ended_at = Some(Timestamp::now());
        sink.trace_ended(&t);
        writer.record_run(ExperimentRun {
            experiment: exp.to_string(),
            case_id: case_id.to_string(),
            attempt: 1,
            trace_id: id,
        });
        id
    }

    fn pass(name: &str, ok: bool) -> Score {
        Score {
            value: Some(if ok { 1.0 } else { 0.0 }),
            passed: Some(ok),
            ..Score::new(name, ScoreSource::Check)
        }
    }

    #[test]
    fn an_experiment_keeps_its_runs_and_their_scores_and_survives_rm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.db");
        let store = crate::store::Store::open(&path).unwrap();
        let mut first = Experiment::start("baseline", "flow");
        first.dataset = "cases".into();
        first.dataset_hash = "sha256:ab".into();
        first.cases = 2;
        first.metadata.insert("git.commit".into(), json!("abc123"));
        store.create_experiment(&first).unwrap();
        let mut second = Experiment::start("baseline", "flow");
        second.started_at = Timestamp(first.started_at.0 + 1);
        store.create_experiment(&second).unwrap();

        let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
        let a = case(
            &writer,
            &first.id,
            "a",
            &[pass("exact", true), pass("tone", false)],
        );
        let b = case(&writer, &first.id, "b", &[pass("exact", false)]);
        writer.close().unwrap();
        store
            .set_experiment_status(&first.id, ExperimentStatus::Ok, Some(Timestamp::now()))
            .unwrap();

        // By id, by prefix, by name (the newest of that name).
        let found = store.find_experiment(&first.id).unwrap();
        assert_eq!(found.status, ExperimentStatus::Ok);
        assert_eq!(found.metadata["git.commit"], json!("abc123"));
        assert_eq!((found.dataset_hash.as_str(), found.cases), ("sha256:ab", 2));
        assert_eq!(store.find_experiment(&first.id[4..]).unwrap().id, first.id);
        // Ids made within a minute share their first 8 hex digits (UUIDv7 starts with the time).
        assert!(matches!(
            store.find_experiment(&first.id[..12]),
            Err(StoreError::Ambiguous { total: 2, .. })
        ));
        assert_eq!(store.find_experiment("baseline").unwrap().id, second.id);
        assert!(matches!(
            store.find_experiment("nope"),
            Err(StoreError::NoExperiment { .. })
        ));
        let listed: Vec<String> = store
            .experiments()
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(listed, [second.id.clone(), first.id.clone()]);

        let runs = store.experiment_runs(&first.id).unwrap();
        let ids: Vec<(&str, TraceId)> = runs
            .iter()
            .map(|r| (r.case_id.as_str(), r.trace_id))
            .collect();
        assert_eq!(ids, [("a", a), ("b", b)]);
        let scores = store.scores_of_traces(&[a, b]).unwrap();
        let names = |t: TraceId| -> Vec<(String, bool)> {
            scores[&t]
                .iter()
                .map(|(_, s)| (s.name.clone(), s.is_pass()))
                .collect()
        };
        assert_eq!(names(a), [("exact".into(), true), ("tone".into(), false)]);
        assert_eq!(names(b), [("exact".into(), false)]);

        // rm of a case's trace: the run stays, its trace is simply absent.
        store.delete(&[b]).unwrap();
        assert_eq!(store.experiment_runs(&first.id).unwrap().len(), 2);
        let traces = store.traces_by_id(&[a, b]).unwrap();
        assert_eq!(traces.iter().map(|t| t.trace_id).collect::<Vec<_>>(), [a]);
        assert!(!store.scores_of_traces(&[b]).unwrap().contains_key(&b));
        assert_eq!(store.unrecorded_traces(&first.id).unwrap(), []);
    }

    #[test]
    fn what_an_interrupted_case_left_is_found_and_a_running_experiment_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traces.db");
        let store = crate::store::Store::open(&path).unwrap();
        let e = Experiment::start("nightly", "flow");
        store.create_experiment(&e).unwrap();
        assert!(store.hold_experiment(&e.id));
        // Another process's view: the experiment is running, and cannot be taken.
        let other = crate::store::Store::open(&path).unwrap();
        let seen = other.find_experiment("nightly").unwrap();
        assert_eq!(seen.status, ExperimentStatus::Running);
        assert!(!other.hold_experiment(&e.id));

        let writer = StoreWriter::spawn(crate::store::Store::open(&path).unwrap());
        let done = case(&writer, &e.id, "a", &[]);
        // A case cut short: its trace closed (as a cancelled run's does) but no run recorded.
        let cut = TraceId::generate();
        let mut t = Trace::running(cut, "flow", "flow");
        t.metadata
            .insert(EXPERIMENT_KEY.into(), json!(e.id.clone()));
        let sink = writer.run_sink();
        sink.trace_started(&t);
        t.status = Status::Cancelled;
        t.ended_at = Some(Timestamp::now());
        sink.trace_ended(&t);
        writer.close().unwrap();
        assert_eq!(store.unrecorded_traces(&e.id).unwrap(), [cut]);
        assert_eq!(store.experiment_runs(&e.id).unwrap()[0].trace_id, done);

        store.release_experiment(&e.id);
        assert!(other.hold_experiment(&e.id), "free once released");
    }

    #[test]
    fn the_scores_query_uses_the_events_name_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("traces.db")).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT trace_id FROM events
                 WHERE name = 'gen_ai.evaluation.result' AND trace_id IN (SELECT value FROM json_each('[]'))",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter().any(|p| p.contains("events_by_name")),
            "{plan:?}"
        );
    }
}
