//! The shards of an experiment in SQLite (migration 7's `experiment_shards`): each shard of
//! `eval --shard K/N` records its own row, and the experiment's status is derived from the
//! shards present, so that a shard merged in later (`agentrace merge`) updates it.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreError};
use crate::store::ExperimentStatus;
use crate::store::experiment::{ExperimentShard, shard_lock_id, sharded_status, stored_shard};
use crate::trace::Timestamp;

impl Store {
    /// Records how shard `s` stands (replacing its earlier row), and the experiment's status
    /// as its shards now give it.
    pub fn record_shard(&self, s: &ExperimentShard) -> Result<(), StoreError> {
        self.with_write_tx(|tx| {
            write_shard(tx, s, true)?;
            settle(tx, &s.experiment)
        })
    }

    /// The shards of experiment `id` recorded in this store, by shard number. A `running`
    /// shard whose process is gone reads as `cancelled` (as an experiment does).
    pub fn experiment_shards(&self, id: &str) -> Result<Vec<ExperimentShard>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT shard, shards, cases, status, started_at, ended_at
                 FROM experiment_shards WHERE experiment_id = ?1 ORDER BY shard",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(|row| {
                let mut s = stored_shard(id, row, &self.path)?;
                if s.status == ExperimentStatus::Running
                    && self.lock_is_dead(&shard_lock_id(id, s.shard))
                {
                    s.status = ExperimentStatus::Cancelled;
                }
                Ok(s)
            })
            .collect()
    }

    /// Copies the row of shard `s` from another store: written when this store has no row of
    /// that shard or only a `running` one (the shard finished since it was last copied).
    /// Whether it was written.
    pub fn import_shard(&self, s: &ExperimentShard) -> Result<bool, StoreError> {
        self.with_write_tx(|tx| {
            let written = write_shard(tx, s, false)?;
            if written {
                settle(tx, &s.experiment)?;
            }
            Ok(written)
        })
    }
}

/// Writes a shard row: always when `replace`, else only over nothing or a `running` row.
fn write_shard(tx: &Transaction<'_>, s: &ExperimentShard, replace: bool) -> rusqlite::Result<bool> {
    if !replace {
        let there: Option<String> = tx
            .query_row(
                "SELECT status FROM experiment_shards WHERE experiment_id = ?1 AND shard = ?2",
                params![s.experiment, s.shard],
                |r| r.get(0),
            )
            .optional()?;
        if there
            .is_some_and(|st| st != ExperimentStatus::Running.as_str() || s.status.as_str() == st)
        {
            return Ok(false);
        }
    }
    tx.execute(
        "INSERT INTO experiment_shards (experiment_id, shard, shards, cases, status, started_at,
                                        ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (experiment_id, shard) DO UPDATE SET
             shards = excluded.shards, cases = excluded.cases, status = excluded.status,
             started_at = excluded.started_at, ended_at = excluded.ended_at",
        params![
            s.experiment,
            s.shard,
            s.shards,
            i64::try_from(s.cases).unwrap_or(i64::MAX),
            s.status.as_str(),
            s.started_at.micros(),
            s.ended_at.map(Timestamp::micros),
        ],
    )?;
    Ok(true)
}

/// The experiment's status and end from its shards' rows (see [`sharded_status`]): it ends
/// when its last shard present does.
fn settle(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "SELECT status, ended_at FROM experiment_shards WHERE experiment_id = ?1",
    )?;
    let rows = stmt
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let shards: Vec<ExperimentShard> = rows
        .iter()
        .map(|(status, ended)| ExperimentShard {
            experiment: id.to_string(),
            shard: 0,
            shards: 0,
            cases: 0,
            status: ExperimentStatus::parse(status).unwrap_or(ExperimentStatus::Error),
            started_at: Timestamp(0),
            ended_at: ended.map(Timestamp),
        })
        .collect();
    let status = sharded_status(&shards);
    let ended = if status == ExperimentStatus::Running {
        None
    } else {
        shards.iter().filter_map(|s| s.ended_at).max()
    };
    tx.execute(
        "UPDATE experiments SET status = ?2, ended_at = ?3 WHERE experiment_id = ?1",
        params![id, status.as_str(), ended.map(Timestamp::micros)],
    )?;
    Ok(())
}
