//! Experiments as every backend keeps them: one row per `agentrace eval` (what ran, on which
//! dataset, how it ended) and one row per run of a case, naming the trace that run recorded.
//!
//! The runs point at traces by id only: `rm` and `prune` delete traces without asking about
//! experiments, and an experiment whose traces are gone still lists its cases (the report names
//! the ones whose trace is missing). A run row is written only once its trace is closed, by the
//! same writer and after it, so that "has a run row" means "finished" when an interrupted eval
//! is resumed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::store::StoreError;
use crate::trace::{Timestamp, TraceId};

/// The prefix of an experiment id: `exp_` + 32 hex digits of a UUIDv7 (time-ordered).
pub const EXPERIMENT_PREFIX: &str = "exp_";

/// The metadata key a case's trace carries its experiment's id under (the SQLite backend
/// finds an experiment's traces by it).
pub const EXPERIMENT_KEY: &str = "eval.experiment";
/// The metadata key a case's trace carries its case id under.
pub const CASE_KEY: &str = "eval.case";

/// How an experiment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentStatus {
    /// Started and not finished (or its process died: `eval --resume` continues it).
    Running,
    /// Every case ran to the end (whether its scores passed or not).
    Ok,
    /// It stopped before every case ran: a budget, a store failure.
    Error,
    /// Interrupted (Ctrl-C, SIGTERM).
    Cancelled,
}

impl ExperimentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentStatus::Running => "running",
            ExperimentStatus::Ok => "ok",
            ExperimentStatus::Error => "error",
            ExperimentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ExperimentStatus> {
        match s {
            "running" => Some(ExperimentStatus::Running),
            "ok" => Some(ExperimentStatus::Ok),
            "error" => Some(ExperimentStatus::Error),
            "cancelled" => Some(ExperimentStatus::Cancelled),
            _ => None,
        }
    }
}

/// One experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// `exp_` + 32 hex digits.
    pub id: String,
    /// `--experiment NAME`, or a generated one; several experiments may share a name (the
    /// newest answers to it).
    pub name: String,
    /// The workflow's name.
    pub workflow: String,
    /// The dataset's name and the `sha256:` hash of its bytes.
    pub dataset: String,
    pub dataset_hash: String,
    /// The git commit, the models, `--meta K=V`, the workflow file.
    pub metadata: Map<String, Value>,
    pub status: ExperimentStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// How many cases it runs (after `--filter` and `--limit`), each `repeat` times.
    pub cases: u64,
    pub repeat: u32,
}

impl Experiment {
    /// A new running experiment with a fresh id, started now.
    pub fn start(name: impl Into<String>, workflow: impl Into<String>) -> Experiment {
        Experiment {
            id: format!("{EXPERIMENT_PREFIX}{}", uuid::Uuid::now_v7().simple()),
            name: name.into(),
            workflow: workflow.into(),
            dataset: String::new(),
            dataset_hash: String::new(),
            metadata: Map::new(),
            status: ExperimentStatus::Running,
            started_at: Timestamp::now(),
            ended_at: None,
            cases: 0,
            repeat: 1,
        }
    }
}

/// One run of one case: attempt `attempt` (1..=repeat) recorded trace `trace_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentRun {
    pub experiment: String,
    pub case_id: String,
    pub attempt: u32,
    pub trace_id: TraceId,
}

/// One shard of an experiment run by `eval --shard K/N`: shard `shard` (1-based) of `shards`,
/// holding `cases` of the experiment's cases, and how it ended. Each machine of a CI matrix
/// records its own; `agentrace merge` brings them into one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExperimentShard {
    pub experiment: String,
    pub shard: u32,
    pub shards: u32,
    pub cases: u64,
    pub status: ExperimentStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
}

/// The id of the experiment every shard of `eval --shard K/N --experiment NAME` records into:
/// derived from the name alone, so that N machines that never talk to each other write one
/// experiment, and shards that disagree about it (another dataset, another N) meet on one id
/// and are refused instead of passing as two experiments of the same name. `exp_` + 32 hex
/// digits, like every experiment id.
pub fn sharded_experiment_id(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("agentrace experiment shards\0{name}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{EXPERIMENT_PREFIX}{hex}")
}

/// The status of a sharded experiment, from the shards recorded so far: an error in any shard
/// is the experiment's, then a cancelled one, then one still running; `ok` when every shard
/// present is. Missing shards do not count here: `eval report` names them.
pub fn sharded_status(shards: &[ExperimentShard]) -> ExperimentStatus {
    let has = |s: ExperimentStatus| shards.iter().any(|x| x.status == s);
    if has(ExperimentStatus::Error) {
        ExperimentStatus::Error
    } else if has(ExperimentStatus::Cancelled) {
        ExperimentStatus::Cancelled
    } else if has(ExperimentStatus::Running) {
        ExperimentStatus::Running
    } else {
        ExperimentStatus::Ok
    }
}

/// The key of the lock the process running shard `shard` of experiment `id` holds (see
/// `Store::hold_experiment`): one per shard, so that shards of one experiment run at once
/// into one store, and a shard cannot run twice at once.
pub fn shard_lock_id(id: &str, shard: u32) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("agentrace shard lock\0{id}\0{shard}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{EXPERIMENT_PREFIX}{hex}")
}

/// The metadata key of a sharded experiment's number of shards (`eval --shard K/N`'s N).
pub const SHARDS_KEY: &str = "eval.shards";

/// What a pushing `eval` (`AGENTRACE_REMOTE`) sends to `serve` (`POST /v1/experiments`): the
/// experiment's row as it stands and the runs recorded so far. Sent again as the experiment
/// goes on; the server keeps the newest row (a running row never replaces an ended one) and
/// each run once by case and attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentPush {
    pub experiment: Experiment,
    #[serde(default)]
    pub runs: Vec<ExperimentRun>,
}

impl ExperimentPush {
    /// Refuses what no eval sends (an id that is not `exp_` and 32 hex digits, runs of another
    /// experiment, an attempt 0) and cuts names and metadata to the ingest limits; returns how
    /// many fields were cut.
    pub fn check(&mut self) -> Result<usize, String> {
        use crate::trace::bound::{bound_map, truncate_str};
        use crate::trace::ingest::{MAX_METADATA, MAX_METADATA_ITEMS, MAX_NAME};
        let e = &mut self.experiment;
        let digits = e.id.strip_prefix(EXPERIMENT_PREFIX).unwrap_or("");
        if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "experiment.id: expected `{EXPERIMENT_PREFIX}` and 32 hex digits, got {:?}",
                crate::trace::bound::truncate(&e.id, 60)
            ));
        }
        if let Some(run) = self.runs.iter().find(|r| r.experiment != e.id) {
            return Err(format!(
                "runs: a run of experiment {:?} in the push of {}",
                crate::trace::bound::truncate(&run.experiment, 60),
                e.id
            ));
        }
        if self.runs.iter().any(|r| r.attempt == 0) {
            return Err("runs: attempts count from 1".into());
        }
        let mut cut = 0;
        for text in [
            &mut e.name,
            &mut e.workflow,
            &mut e.dataset,
            &mut e.dataset_hash,
        ] {
            cut += usize::from(truncate_str(text, MAX_NAME));
        }
        for run in &mut self.runs {
            cut += usize::from(truncate_str(&mut run.case_id, MAX_NAME));
        }
        cut += usize::from(bound_map(&mut e.metadata, MAX_METADATA, MAX_METADATA_ITEMS));
        Ok(cut)
    }
}

/// An experiment's or a shard's status as a backend stored it; `what` names the row in the
/// error about a status no agentrace writes.
pub(crate) fn stored_status(
    status: &str,
    path: &std::path::Path,
    what: &'static str,
) -> Result<ExperimentStatus, StoreError> {
    ExperimentStatus::parse(status).ok_or_else(|| StoreError::Malformed {
        path: path.to_path_buf(),
        what,
        detail: format!("unknown status {status:?}"),
    })
}

/// A shard row as every backend reads it: shard, shards, cases, status, start, end.
pub(crate) type ShardRow = (i64, i64, i64, String, i64, Option<i64>);

/// The shard of experiment `experiment` a stored row describes.
pub(crate) fn stored_shard(
    experiment: &str,
    (shard, shards, cases, status, started, ended): ShardRow,
    path: &std::path::Path,
) -> Result<ExperimentShard, StoreError> {
    Ok(ExperimentShard {
        experiment: experiment.to_string(),
        shard: u32::try_from(shard).unwrap_or(0),
        shards: u32::try_from(shards).unwrap_or(0),
        cases: u64::try_from(cases).unwrap_or(0),
        status: stored_status(&status, path, "experiment shard")?,
        started_at: Timestamp(started),
        ended_at: ended.map(Timestamp),
    })
}
