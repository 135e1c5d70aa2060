//! An experiment's results as its report reads them: every planned run with its trace's status
//! and figures and the scores recorded in it, read back from the store (so a resumed
//! experiment's report covers the runs of every process). Here, not in the CLI, because
//! `show EXPERIMENT`, `eval` and `serve`'s experiment pages all read the same thing.

use crate::render::eval::{CaseResult, ExperimentInfo};
use crate::store::{Experiment, Store, StoreError};

/// What the report says about `e`, which plans `runs` runs.
pub fn info_of(e: &Experiment, runs: u64) -> ExperimentInfo {
    ExperimentInfo {
        id: e.id.clone(),
        name: e.name.clone(),
        workflow: e.workflow.clone(),
        dataset: e.dataset.clone(),
        dataset_hash: e.dataset_hash.clone(),
        status: e.status.as_str().to_string(),
        started_at: Some(e.started_at),
        ended_at: e.ended_at,
        runs,
        repeat: e.repeat,
        metadata: e.metadata.clone(),
    }
}

/// What the report says about a stored experiment: it plans every case of its dataset `repeat`
/// times.
pub fn stored_info(e: &Experiment) -> ExperimentInfo {
    info_of(e, e.cases * u64::from(e.repeat))
}

/// The result of every planned `(case id, attempt)`, in that order, read from the store: its
/// trace's status and figures and the scores recorded in it.
pub fn results_of(
    store: &Store,
    experiment: &Experiment,
    planned: &[(String, u32)],
) -> Result<Vec<CaseResult>, StoreError> {
    let runs = store.experiment_runs(&experiment.id)?;
    let ids: Vec<_> = runs.iter().map(|r| r.trace_id).collect();
    let traces: std::collections::HashMap<_, _> = store
        .traces_by_id(&ids)?
        .into_iter()
        .map(|t| (t.trace_id, t))
        .collect();
    let mut scores = store.scores_of_traces(&ids)?;
    let by_case: std::collections::HashMap<(&str, u32), &crate::store::ExperimentRun> = runs
        .iter()
        .map(|r| ((r.case_id.as_str(), r.attempt), r))
        .collect();
    Ok(planned
        .iter()
        .map(|(case_id, attempt)| {
            let run = by_case.get(&(case_id.as_str(), *attempt));
            let trace = run.and_then(|r| traces.get(&r.trace_id));
            CaseResult {
                case_id: case_id.clone(),
                attempt: *attempt,
                trace_id: run.map(|r| r.trace_id),
                status: trace.map(|t| t.status),
                missing: run.is_some() && trace.is_none(),
                error: trace.and_then(|t| {
                    t.error
                        .as_ref()
                        .map(|e| e.message.lines().next().unwrap_or("").to_string())
                }),
                duration_ms: trace.and_then(crate::trace::Trace::duration_ms),
                tokens: trace.map_or(0, |t| t.usage.total_tokens),
                cost_usd: trace.and_then(|t| t.cost_usd),
                scores: run
                    .and_then(|r| scores.remove(&r.trace_id))
                    .map(|s| s.into_iter().map(|(_, s)| s).collect())
                    .unwrap_or_default(),
            }
        })
        .collect())
}

/// An experiment's report as `show EXPERIMENT` prints it: the runs it recorded (the cases of
/// its dataset it never ran cannot be named without the dataset; they count as not passed).
pub fn stored_report(
    store: &Store,
    e: &Experiment,
) -> Result<(ExperimentInfo, Vec<CaseResult>), StoreError> {
    let planned: Vec<(String, u32)> = store
        .experiment_runs(&e.id)?
        .into_iter()
        .map(|r| (r.case_id, r.attempt))
        .collect();
    let results = results_of(store, e, &planned)?;
    Ok((stored_info(e), results))
}
