//! The shards of an experiment on PostgreSQL (migration 2's `experiment_shards`), as SQLite's
//! `shard.rs` keeps them: a row per shard, the experiment's status derived from them.

use postgres::Transaction;

use super::Store;
use crate::store::experiment::{ExperimentShard, shard_lock_id, sharded_status, stored_shard};
use crate::store::{ExperimentStatus, StoreError};
use crate::trace::Timestamp;

impl Store {
    /// Records how shard `s` stands, and the experiment's status as its shards now give it.
    pub fn record_shard(&self, s: &ExperimentShard) -> Result<(), StoreError> {
        self.with_write_tx(|tx| {
            write_shard(tx, s, true)?;
            settle(tx, &s.experiment)
        })
    }

    /// The shards of experiment `id`, by shard number; a `running` shard whose process is
    /// gone reads as `cancelled`.
    pub fn experiment_shards(&self, id: &str) -> Result<Vec<ExperimentShard>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                "SELECT shard, shards, cases, status, started_at, ended_at
                 FROM experiment_shards WHERE experiment_id = $1 ORDER BY shard",
                &[&id],
            )
        })?;
        let path = self.label();
        rows.iter()
            .map(|r| {
                let row = (|| {
                    Ok::<_, postgres::Error>((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                        r.try_get(5)?,
                    ))
                })()
                .map_err(|e| self.sql(e))?;
                let mut s = stored_shard(id, row, &path)?;
                if s.status == ExperimentStatus::Running
                    && self.lock_is_dead(&shard_lock_id(id, s.shard))
                {
                    s.status = ExperimentStatus::Cancelled;
                }
                Ok(s)
            })
            .collect()
    }

    /// Copies the row of shard `s` from another store (over nothing or a `running` row).
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
fn write_shard(
    tx: &mut Transaction<'_>,
    s: &ExperimentShard,
    replace: bool,
) -> Result<bool, postgres::Error> {
    if !replace {
        let there: Option<String> = tx
            .query_opt(
                "SELECT status FROM experiment_shards WHERE experiment_id = $1 AND shard = $2",
                &[&s.experiment, &i64::from(s.shard)],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        if there
            .is_some_and(|st| st != ExperimentStatus::Running.as_str() || s.status.as_str() == st)
        {
            return Ok(false);
        }
    }
    tx.execute(
        "INSERT INTO experiment_shards (experiment_id, shard, shards, cases, status, started_at,
                                        ended_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (experiment_id, shard) DO UPDATE SET
             shards = excluded.shards, cases = excluded.cases, status = excluded.status,
             started_at = excluded.started_at, ended_at = excluded.ended_at",
        &[
            &s.experiment,
            &i64::from(s.shard),
            &i64::from(s.shards),
            &i64::try_from(s.cases).unwrap_or(i64::MAX),
            &s.status.as_str(),
            &s.started_at.micros(),
            &s.ended_at.map(Timestamp::micros),
        ],
    )?;
    Ok(true)
}

/// The experiment's status and end from its shards' rows (see [`sharded_status`]).
fn settle(tx: &mut Transaction<'_>, id: &str) -> Result<(), postgres::Error> {
    let rows = tx.query(
        "SELECT status, ended_at FROM experiment_shards WHERE experiment_id = $1",
        &[&id],
    )?;
    let mut shards = Vec::with_capacity(rows.len());
    for r in &rows {
        let status: String = r.try_get(0)?;
        shards.push(ExperimentShard {
            experiment: id.to_string(),
            shard: 0,
            shards: 0,
            cases: 0,
            status: ExperimentStatus::parse(&status).unwrap_or(ExperimentStatus::Error),
            started_at: Timestamp(0),
            ended_at: r.try_get::<_, Option<i64>>(1)?.map(Timestamp),
        });
    }
    let status = sharded_status(&shards);
    let ended = if status == ExperimentStatus::Running {
        None
    } else {
        shards.iter().filter_map(|s| s.ended_at).max()
    };
    tx.execute(
        "UPDATE experiments SET status = $2, ended_at = $3 WHERE experiment_id = $1",
        &[&id, &status.as_str(), &ended.map(Timestamp::micros)],
    )?;
    Ok(())
}
