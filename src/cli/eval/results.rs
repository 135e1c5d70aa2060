//! The results of the runs `eval` planned, and the exit code of the gates.

use super::Job;
use crate::error::{Error, ExitCode};
use crate::eval::report::results_of;
use crate::render;
use crate::render::eval::CaseResult;
use crate::store::{Experiment, Store};

/// The result of every planned run, in dataset order, read from the store: its trace's status
/// and figures and the scores recorded in it.
pub(crate) fn case_results(
    store: &Store,
    experiment: &Experiment,
    jobs: &[Job],
) -> Result<Vec<CaseResult>, Error> {
    let planned: Vec<(String, u32)> = jobs
        .iter()
        .map(|j| (j.case.id.clone(), j.attempt))
        .collect();
    Ok(results_of(store, experiment, &planned)?)
}

/// The exit code of a report: 1 below `--min-pass-rate`, or without it when any run failed.
pub(crate) fn gate(results: &[CaseResult], runs: u64, repeat: u32, min: Option<f64>) -> ExitCode {
    let s = render::eval::summarize(results, runs, repeat);
    let failed = match min {
        Some(p) => s.pass_rate + 1e-12 < p,
        None => s.passed < s.runs,
    };
    if failed {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    }
}
