//! `eval --shard K/N --experiment NAME`: one of N machines running its part of one experiment.
//!
//! Every shard derives the experiment's id from its name, so that shards which never talk to
//! each other (each writing its own SQLite file in a CI matrix) record one experiment, and
//! `agentrace merge` puts them back together; in a shared store they meet on the same row.
//! Each shard records a row of its own (which shard, how many cases, how it ended), which is
//! how `eval report` knows which shards are in. Shards that disagree about the experiment
//! (another dataset, another N) are refused when they meet: here, at merge, or at report.

use serde_json::json;

use crate::error::Error;
use crate::eval::shard::Shard;
use crate::store::copy::experiment_mismatch;
use crate::store::experiment::{SHARDS_KEY, sharded_experiment_id};
use crate::store::{Experiment, ExperimentShard, ExperimentStatus, Store};
use crate::trace::Timestamp;

/// Makes a new experiment the one every shard of `shard.total` named `e.name` records into.
pub(super) fn shape(e: &mut Experiment, shard: Shard) {
    e.id = sharded_experiment_id(&e.name);
    e.metadata.insert(SHARDS_KEY.into(), json!(shard.total));
}

/// The number of shards of a stored experiment, if it is sharded.
pub(super) fn shards_of(e: &Experiment) -> Option<u32> {
    e.metadata
        .get(SHARDS_KEY)
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
}

/// Records `e` (or finds it, written by another shard) and checks that it is the same
/// experiment, and that this shard has not run yet.
pub(super) fn join(store: &Store, e: &Experiment, shard: Shard) -> Result<(), Error> {
    let stored = store.join_experiment(e)?;
    if let Some(why) = experiment_mismatch(e, &stored) {
        return Err(Error::usage(format!(
            "experiment {} ({}) was started by another shard with other settings ({why}); \
             every shard of one experiment runs the same workflow on the same dataset with the \
             same --shard N, --repeat, --filter and --limit",
            e.name, e.id
        )));
    }
    if let Some(there) = store
        .experiment_shards(&e.id)?
        .into_iter()
        .find(|s| s.shard == shard.index)
    {
        return Err(Error::usage(format!(
            "shard {shard} of experiment {} ({}) is recorded already ({}): give each run its \
             own --experiment name (e.g. {}-$GITHUB_RUN_ID), or `--resume {} --shard {shard}` \
             to run the cases it has not",
            e.name,
            e.id,
            there.status.as_str(),
            e.name,
            e.name
        )));
    }
    Ok(())
}

/// `--resume` of a sharded experiment needs the same `--shard K/N`, and an unsharded one none.
pub(super) fn check_resume(
    e: &Experiment,
    shard: Option<Shard>,
    reference: &str,
) -> Result<(), Error> {
    match (shards_of(e), shard) {
        (None, None) => Ok(()),
        (Some(n), Some(s)) if s.total == n => Ok(()),
        (Some(n), Some(s)) => Err(Error::usage(format!(
            "--resume {reference}: {} has {n} shards, not {} (--shard {s})",
            e.id, s.total
        ))),
        (Some(n), None) => Err(Error::usage(format!(
            "--resume {reference}: {} is sharded: give --shard K/{n} (the shard to continue)",
            e.id
        ))),
        (None, Some(_)) => Err(Error::usage(format!(
            "--resume {reference}: {} was not run in shards; drop --shard",
            e.id
        ))),
    }
}

/// Records how shard `shard` of `id`, of `cases` cases, stands; its start stays that of its
/// first process.
pub(super) fn mark(
    store: &Store,
    id: &str,
    shard: Shard,
    cases: u64,
    status: ExperimentStatus,
    ended_at: Option<Timestamp>,
) -> Result<(), Error> {
    let started_at = store
        .experiment_shards(id)?
        .into_iter()
        .find(|s| s.shard == shard.index)
        .map_or_else(Timestamp::now, |s| s.started_at);
    store.record_shard(&ExperimentShard {
        experiment: id.to_string(),
        shard: shard.index,
        shards: shard.total,
        cases,
        status,
        started_at,
        ended_at,
    })?;
    Ok(())
}
