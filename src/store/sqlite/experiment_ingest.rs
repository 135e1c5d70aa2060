//! Experiments that a pushing `eval` sends to `serve` (`POST /v1/experiments`): written like the
//! eval's own writer would, but idempotent, because a push may be sent again (a retry, a spool
//! sent twice): the experiment's row is replaced by the newer one unless that one is still
//! running and the stored one has ended, and each run is kept once by case and attempt.

use super::experiment::insert_experiment;
use super::writer::write_run;
use super::{Store, StoreError};
use crate::store::{Experiment, ExperimentRun};

impl Store {
    /// Writes a pushed experiment and its runs in one transaction.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ExperimentStatus;
    use crate::trace::{Timestamp, TraceId};

    #[test]
    fn a_pushed_experiment_is_kept_once_and_never_goes_back_to_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path().join("t.db")).unwrap();
        let mut e = Experiment::start("nightly", "wf");
        e.cases = 2;
        store.ingest_experiment(&e, &[]).unwrap();
        assert_eq!(store.find_experiment("nightly").unwrap(), e);

        let runs: Vec<ExperimentRun> = ["a", "b"]
            .iter()
            .map(|case| ExperimentRun {
                experiment: e.id.clone(),
                case_id: (*case).to_string(),
                attempt: 1,
                trace_id: TraceId::generate(),
            })
            .collect();
        let mut done = e.clone();
        done.status = ExperimentStatus::Ok;
        done.ended_at = Some(Timestamp(e.started_at.micros() + 5));
        for _ in 0..2 {
            store.ingest_experiment(&done, &runs).unwrap();
        }
        // The first push again, late: the experiment stays ended, its runs stay.
        store.ingest_experiment(&e, &[]).unwrap();
        assert_eq!(store.find_experiment(&e.id).unwrap(), done);
        assert_eq!(store.experiment_runs(&e.id).unwrap(), runs);
    }
}
