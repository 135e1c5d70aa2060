//! `agentrace eval report EXPERIMENT`: the report of a stored experiment with the gates of
//! `eval` (the same flags, the same outputs). For a sharded experiment (`eval --shard K/N`,
//! merged with `agentrace merge` or recorded into one shared store) it is the merged report,
//! given once every shard is in; until then it names the shards that are missing or still
//! running and exits [`ExitCode::Incomplete`], so that a CI job never gates on part of the
//! cases.

use super::{GateArgs, Labels, conclude, sharded};
use crate::cli::Globals;
use crate::error::{Error, ExitCode};
use crate::eval::report::stored_report;
use crate::store::{ExperimentStatus, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The experiment (id, id prefix or name)
    #[arg(value_name = "EXPERIMENT")]
    experiment: String,

    #[command(flatten)]
    gates: GateArgs,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    args.gates.check()?;
    let store = Store::open_existing(&globals.store)?;
    let experiment = store.find_experiment(&args.experiment)?;
    if let Some(total) = sharded::shards_of(&experiment) {
        let shards = store.experiment_shards(&experiment.id)?;
        if let Some(other) = shards.iter().find(|s| s.shards != total) {
            return Err(Error::usage(format!(
                "experiment {} ({}): shard {}/{} does not belong to an experiment of {total} \
                 shards",
                experiment.name, experiment.id, other.shard, other.shards
            )));
        }
        let label = |k: &u32| format!("{k}/{total}");
        let missing: Vec<String> = (1..=total)
            .filter(|k| !shards.iter().any(|s| s.shard == *k))
            .map(|k| label(&k))
            .collect();
        let unfinished: Vec<String> = shards
            .iter()
            .filter(|s| {
                matches!(
                    s.status,
                    ExperimentStatus::Running | ExperimentStatus::Cancelled
                )
            })
            .map(|s| format!("{} ({})", label(&s.shard), s.status.as_str()))
            .collect();
        if !missing.is_empty() || !unfinished.is_empty() {
            let mut why = Vec::new();
            if !missing.is_empty() {
                why.push(format!("missing shards {}", missing.join(", ")));
            }
            if !unfinished.is_empty() {
                why.push(format!("unfinished shards {}", unfinished.join(", ")));
            }
            eprintln!(
                "error: experiment {} ({}) is not complete: {}; {} of {total} shards are in \
                 (merge their stores with `agentrace merge … --into STORE`, or run the \
                 cancelled ones again with `eval --resume {} --shard K/{total}`)",
                experiment.name,
                experiment.id,
                why.join("; "),
                shards.len() - unfinished.len(),
                experiment.name
            );
            return Ok(ExitCode::Incomplete);
        }
    }
    let (info, results) = stored_report(&store, &experiment)?;
    let workflow = experiment
        .metadata
        .get("workflow.file")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&experiment.workflow)
        .to_string();
    let code = conclude(
        &store,
        &experiment,
        &info,
        &results,
        &args.gates,
        &Labels {
            workflow: &workflow,
            dataset: &experiment.dataset,
            lines: &std::collections::HashMap::new(),
        },
        globals,
    )?;
    Ok(match experiment.status {
        ExperimentStatus::Error => ExitCode::Failed,
        _ => code,
    })
}
