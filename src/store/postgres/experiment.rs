//! Experiments on PostgreSQL: the same rows and reads as SQLite's (see
//! [`crate::store::experiment`]), with arrays for the sets of ids a report asks about.

use std::collections::HashMap;

use postgres::Row;

use super::Store;
use super::write::write_run;
use crate::store::experiment::{EXPERIMENT_PREFIX, stored_status};
use crate::store::rows::json_map;
use crate::store::writer::map_json;
use crate::store::{Experiment, ExperimentRun, ExperimentStatus, StoreError};
use crate::trace::score::{EVALUATION_EVENT, Score};
use crate::trace::{Event, SpanId, Timestamp, Trace, TraceId};

const EXPERIMENT_COLUMNS: &str = "experiment_id, name, workflow, dataset, dataset_hash, \
                                  metadata, status, started_at, ended_at, cases, repeats";

impl Store {
    /// Records a new experiment (its id must be new).
    pub fn create_experiment(&self, e: &Experiment) -> Result<(), StoreError> {
        self.with_write_tx(|tx| insert_experiment(tx, e, "").map(drop))
    }

    /// Writes a pushed experiment and its runs in one transaction (see SQLite's
    /// `experiment_ingest.rs`): the newer row replaces the stored one unless it is still
    /// running and the stored one has ended; each run is kept once by case and attempt.
    pub fn ingest_experiment(
        &self,
        e: &Experiment,
        runs: &[ExperimentRun],
    ) -> Result<(), StoreError> {
        self.with_write_tx(|tx| {
            insert_experiment(
                tx,
                e,
                "ON CONFLICT (experiment_id) DO UPDATE SET
                     name = excluded.name, workflow = excluded.workflow,
                     dataset = excluded.dataset, dataset_hash = excluded.dataset_hash,
                     metadata = excluded.metadata, status = excluded.status,
                     started_at = excluded.started_at, ended_at = excluded.ended_at,
                     cases = excluded.cases, repeats = excluded.repeats
                 WHERE NOT (excluded.ended_at IS NULL AND experiments.ended_at IS NOT NULL)",
            )?;
            for run in runs {
                write_run(tx, run)?;
            }
            Ok(())
        })
    }

    /// Sets how an experiment stands.
    pub fn set_experiment_status(
        &self,
        id: &str,
        status: ExperimentStatus,
        ended: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.with_write_tx(|tx| {
            tx.execute(
                "UPDATE experiments SET status = $2, ended_at = $3 WHERE experiment_id = $1",
                &[&id, &status.as_str(), &ended.map(Timestamp::micros)],
            )?;
            Ok(())
        })
    }

    /// Records the run of a case.
    pub fn record_run(&self, run: &ExperimentRun) -> Result<(), StoreError> {
        self.with_write_tx(|tx| write_run(tx, run))
    }

    /// Takes the lock of the process that runs experiment `id` (an advisory lock, as a run's).
    pub fn hold_experiment(&self, id: &str) -> bool {
        lock_id(id).is_none_or(|t| self.hold_run(t))
    }

    /// Lets go of the lock of experiment `id`.
    pub fn release_experiment(&self, id: &str) {
        if let Some(t) = lock_id(id) {
            self.release_run(t);
        }
    }

    /// Every experiment, newest first.
    pub fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        self.experiments_where("true ORDER BY started_at DESC, seq DESC", &[])
    }

    /// The experiment of this exact id.
    pub(crate) fn experiment_by_id(&self, id: &str) -> Result<Option<Experiment>, StoreError> {
        Ok(self.experiments_where("experiment_id = $1", &[id])?.pop())
    }

    /// The newest experiment of this name.
    pub(crate) fn newest_experiment_named(
        &self,
        name: &str,
    ) -> Result<Option<Experiment>, StoreError> {
        Ok(self
            .experiments_where(
                "name = $1 ORDER BY started_at DESC, seq DESC LIMIT 1",
                &[name],
            )?
            .pop())
    }

    /// The newest `limit` experiments whose id starts with `prefix` (`exp_` and hex digits: a
    /// range of the index, as for traces).
    pub(crate) fn experiments_starting_with(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Experiment>, StoreError> {
        self.experiments_where(
            &format!(
                "experiment_id >= $1 AND experiment_id < $1 || 'g'
                 ORDER BY started_at DESC LIMIT {limit}"
            ),
            &[prefix],
        )
    }

    /// The runs of an experiment, by case id then attempt.
    pub fn experiment_runs(&self, id: &str) -> Result<Vec<ExperimentRun>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT case_id, attempt, trace_id FROM experiment_runs
                 WHERE experiment_id = $1 ORDER BY case_id COLLATE \"C\", attempt",
                &[&id],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(ExperimentRun {
                    experiment: id.to_string(),
                    case_id: r.try_get(0).ok()?,
                    attempt: u32::try_from(r.try_get::<_, i64>(1).ok()?).ok()?,
                    trace_id: TraceId::parse(&r.try_get::<_, String>(2).ok()?)?,
                })
            })
            .collect())
    }

    /// The scores recorded in the traces `ids`, each with its span, in the order written.
    pub fn scores_of_traces(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, Vec<(SpanId, Score)>>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = self.read(|c| {
            c.query(
                "SELECT trace_id, span_id, time, attributes FROM events
                 WHERE name = $1 AND trace_id = ANY($2) ORDER BY seq",
                &[&EVALUATION_EVENT, &ids],
            )
        })?;
        let mut scores: HashMap<TraceId, Vec<(SpanId, Score)>> = HashMap::new();
        for r in &rows {
            let (Ok(trace), Ok(span), Ok(time), Ok(attributes)) = (
                r.try_get::<_, String>(0),
                r.try_get::<_, String>(1),
                r.try_get::<_, i64>(2),
                r.try_get::<_, Option<String>>(3),
            ) else {
                continue;
            };
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

    /// The finished traces tagged with experiment `id` that no run of it names.
    pub fn unrecorded_traces(&self, id: &str) -> Result<Vec<TraceId>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT trace_id FROM traces
                 WHERE metadata::jsonb ->> 'eval.experiment' = $1
                   AND trace_id NOT IN (SELECT trace_id FROM experiment_runs
                                        WHERE experiment_id = $1)",
                &[&id],
            )
        })?;
        let mut done = Vec::new();
        for id in rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .filter_map(|t| TraceId::parse(&t))
        {
            // `load` closes the trace of a dead run.
            if self.load(id)?.trace.status != crate::trace::Status::Running {
                done.push(id);
            }
        }
        Ok(done)
    }

    /// A `running` experiment whose process is gone (its lock is free) reads as `cancelled`;
    /// a sharded one (`eval --shard`) takes its status from its shards, each judged by its
    /// own lock.
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

    /// Whether the lock `key` (an experiment's or a shard's) is free: its process is gone.
    pub(super) fn lock_is_dead(&self, key: &str) -> bool {
        lock_id(key).is_some_and(|t| {
            let mut probe = Trace::running(t, "", "");
            probe.pid = Some(0);
            let dead = self.is_dead(&probe);
            if dead {
                self.unlock(t);
            }
            dead
        })
    }

    fn experiments_where(
        &self,
        clause: &str,
        args: &[&str],
    ) -> Result<Vec<Experiment>, StoreError> {
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self.read(|c| {
            c.query(
                &format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE {clause}"),
                &params,
            )
        })?;
        rows.iter()
            .map(|r| {
                let (e, status) = read_experiment(r).map_err(|e| self.sql(e))?;
                let status = stored_status(&status, &self.label(), "experiment")?;
                Ok(self.unless_dead(Experiment { status, ..e }))
            })
            .collect()
    }
}

/// Inserts an experiment row, with `conflict` (an `ON CONFLICT` clause, or nothing) after it;
/// returns how many rows were written.
pub(super) fn insert_experiment(
    tx: &mut postgres::Transaction<'_>,
    e: &Experiment,
    conflict: &str,
) -> Result<u64, postgres::Error> {
    tx.execute(
        &format!(
            "INSERT INTO experiments ({EXPERIMENT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) {conflict}"
        ),
        &[
            &e.id,
            &e.name,
            &e.workflow,
            &e.dataset,
            &e.dataset_hash,
            &map_json(&e.metadata),
            &e.status.as_str(),
            &e.started_at.micros(),
            &e.ended_at.map(Timestamp::micros),
            &i64::try_from(e.cases).unwrap_or(i64::MAX),
            &i64::from(e.repeat),
        ],
    )
}

/// The lock of an experiment is that of a run whose trace id has the experiment id's digits.
fn lock_id(id: &str) -> Option<TraceId> {
    TraceId::parse(id.strip_prefix(EXPERIMENT_PREFIX)?)
}

/// An experiment row, with its status as text (checked by the caller).
fn read_experiment(r: &Row) -> Result<(Experiment, String), postgres::Error> {
    Ok((
        Experiment {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            workflow: r.try_get(2)?,
            dataset: r.try_get(3)?,
            dataset_hash: r.try_get(4)?,
            metadata: json_map(r.try_get::<_, Option<String>>(5)?.as_deref()),
            status: ExperimentStatus::Running,
            started_at: Timestamp(r.try_get(7)?),
            ended_at: r.try_get::<_, Option<i64>>(8)?.map(Timestamp),
            cases: u64::try_from(r.try_get::<_, i64>(9)?).unwrap_or(0),
            repeat: u32::try_from(r.try_get::<_, i64>(10)?).unwrap_or(1),
        },
        r.try_get(6)?,
    ))
}
