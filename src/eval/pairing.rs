//! Two experiments paired case by case, as `eval compare A B`, `eval --baseline` and `serve`'s
//! compare page all show them.
//!
//! Cases are paired by id (a case run several times counts once: its mean value, and a pass
//! only when every attempt passed). Per scorer: the mean change B − A with a 95% paired
//! bootstrap interval (fixed seed), McNemar's exact test for pass/fail, the counts of improved,
//! regressed and unchanged cases, and the verdict in words ([`super::compare`]). The overall
//! `(case)` row compares whether each case passed at all, so two experiments without scorers
//! still compare.

use std::collections::BTreeMap;

use super::compare::{
    RESAMPLES, SEED, Verdict, mcnemar_exact, paired_bootstrap, pass_verdict, score_verdict,
};
use super::report::stored_report;
use crate::render::eval::CaseResult;
use crate::render::eval_compare::{CaseChange, ScorerCompare};
use crate::store::{Experiment, Store, StoreError};

/// The row that compares whether each case passed at all (the parentheses keep it apart from
/// scorer names).
const CASE_ROW: &str = "(case)";

/// A case's value and verdict on one scorer, over its attempts.
#[derive(Default, Clone, Copy)]
struct Cell {
    sum: f64,
    values: usize,
    passes: usize,
    verdicts: usize,
}

impl Cell {
    fn value(&self) -> Option<f64> {
        (self.values > 0).then(|| self.sum / self.values as f64)
    }
    fn passed(&self) -> Option<bool> {
        (self.verdicts > 0).then_some(self.passes == self.verdicts)
    }
}

/// Scorer → case id → cell, with the [`CASE_ROW`] (the case passed, 1 or 0).
fn cells(results: &[CaseResult]) -> BTreeMap<String, BTreeMap<String, Cell>> {
    let mut out: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.status.is_some()) {
        let passed = r.passed();
        let c = out
            .entry(CASE_ROW.into())
            .or_default()
            .entry(r.case_id.clone())
            .or_default();
        c.sum += f64::from(u8::from(passed));
        c.values += 1;
        c.passes += usize::from(passed);
        c.verdicts += 1;
        for s in &r.scores {
            let c = out
                .entry(s.name.clone())
                .or_default()
                .entry(r.case_id.clone())
                .or_default();
            if let Some(v) = s.value.filter(|v| v.is_finite()) {
                c.sum += v;
                c.values += 1;
            }
            if s.passed.is_some() || s.error.is_some() {
                c.passes += usize::from(s.is_pass());
                c.verdicts += 1;
            }
        }
    }
    out
}

fn experiment_results(store: &Store, e: &Experiment) -> Result<Vec<CaseResult>, StoreError> {
    Ok(stored_report(store, e)?.1)
}

/// Every scorer of either experiment compared over the cases both scored, and the cases whose
/// value or verdict changed (regressions first).
pub fn compare(
    store: &Store,
    a: &Experiment,
    b: &Experiment,
) -> Result<(Vec<ScorerCompare>, Vec<CaseChange>), StoreError> {
    let ca = cells(&experiment_results(store, a)?);
    let cb = cells(&experiment_results(store, b)?);
    let mut rows = Vec::new();
    let mut changes = Vec::new();
    for (scorer, a_cases) in &ca {
        let Some(b_cases) = cb.get(scorer) else {
            continue;
        };
        let paired: Vec<(&String, &Cell, &Cell)> = a_cases
            .iter()
            .filter_map(|(id, x)| b_cases.get(id).map(|y| (id, x, y)))
            .collect();
        if paired.is_empty() {
            continue;
        }
        let diffs: Vec<f64> = paired
            .iter()
            .filter_map(|(_, x, y)| Some(y.value()? - x.value()?))
            .collect();
        let (mut improved, mut regressed, mut unchanged) = (0, 0, 0);
        let (mut pass_up, mut pass_down, mut pass_pairs) = (0u64, 0u64, 0usize);
        for (id, x, y) in &paired {
            if let (Some(p), Some(q)) = (x.passed(), y.passed()) {
                pass_pairs += 1;
                pass_up += u64::from(!p && q);
                pass_down += u64::from(p && !q);
            }
            let delta = match (x.value(), y.value()) {
                (Some(u), Some(v)) => v - u,
                _ => match (x.passed(), y.passed()) {
                    (Some(p), Some(q)) => f64::from(u8::from(q)) - f64::from(u8::from(p)),
                    _ => 0.0,
                },
            };
            if delta.abs() < 1e-12 {
                unchanged += 1;
                continue;
            }
            if delta > 0.0 {
                improved += 1;
            } else {
                regressed += 1;
            }
            changes.push(CaseChange {
                case_id: (*id).clone(),
                scorer: scorer.clone(),
                a: x.value(),
                b: y.value(),
                a_passed: x.passed(),
                b_passed: y.passed(),
                regressed: delta < 0.0,
            });
        }
        let interval = paired_bootstrap(&diffs, RESAMPLES, SEED);
        let value_verdict = interval.as_ref().map(|i| score_verdict(i, diffs.len()));
        let pass = (pass_pairs > 0).then(|| pass_verdict(pass_down, pass_up, pass_pairs));
        let verdicts = [value_verdict, pass];
        let verdict = if verdicts.contains(&Some(Verdict::Worse)) {
            Verdict::Worse
        } else if verdicts.contains(&Some(Verdict::Better)) {
            Verdict::Better
        } else {
            value_verdict.or(pass).unwrap_or(Verdict::TooFew)
        };
        let mean = |cells: Vec<Option<f64>>| {
            let v: Vec<f64> = cells.into_iter().flatten().collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        rows.push(ScorerCompare {
            name: scorer.clone(),
            pairs: paired.len(),
            mean_a: mean(paired.iter().map(|(_, x, _)| x.value()).collect()),
            mean_b: mean(paired.iter().map(|(_, _, y)| y.value()).collect()),
            change: interval.map(|i| (i.mean, i.low, i.high)),
            improved,
            regressed,
            unchanged,
            p_value: (pass_pairs > 0).then(|| mcnemar_exact(pass_down, pass_up)),
            verdict: verdict.words().to_string(),
            worse: verdict == Verdict::Worse,
        });
    }
    changes.sort_by(|x, y| {
        y.regressed
            .cmp(&x.regressed)
            .then(x.case_id.cmp(&y.case_id))
    });
    Ok((rows, changes))
}
