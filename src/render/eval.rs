//! The report of an experiment (`agentrace eval`, `show EXPERIMENT`): the figures per scorer,
//! the failing cases with their explanations, the live line while it runs, and the stable JSON
//! of `eval --format json` (docs/contract.md).
//!
//! The input is plain data the command assembles from the store ([`CaseResult`] per run of a
//! case, scores read from the trace's evaluation events), so that this module reads the trace
//! model only and the figures can be checked on literal cases. Percentiles are nearest-rank, as
//! in `stats`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::cost;
use super::line::clean;
use super::table::{Column, Grid, pack, start_column};
use super::theme::Theme;
use super::{human_duration, width_of};
use crate::trace::bound::truncate;
use crate::trace::score::Score;
use crate::trace::stats::nearest_rank;
use crate::trace::{Status, Timestamp, TraceId};

/// What the report says about the experiment itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExperimentInfo {
    pub id: String,
    pub name: String,
    pub workflow: String,
    pub dataset: String,
    pub dataset_hash: String,
    /// `running`, `ok`, `error`, `cancelled`.
    pub status: String,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// How many runs it plans: cases × repeat.
    pub runs: u64,
    pub repeat: u32,
    pub metadata: Map<String, Value>,
}

/// One run of one case, as the report sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    pub case_id: String,
    pub attempt: u32,
    /// The trace it recorded; `None` when it never ran to its end.
    pub trace_id: Option<TraceId>,
    /// The trace's status; `None` when it did not run, or its trace was deleted since
    /// (`missing`).
    pub status: Option<Status>,
    /// It ran, and its trace is gone from the store (`rm`, `prune`).
    pub missing: bool,
    /// The first line of the trace's error.
    pub error: Option<String>,
    pub duration_ms: Option<f64>,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    pub scores: Vec<Score>,
}

impl CaseResult {
    /// The run ended ok and no score failed (a score without a verdict fails nothing; one that
    /// could not be given does).
    pub fn passed(&self) -> bool {
        self.status == Some(Status::Ok)
            && self
                .scores
                .iter()
                .all(|s| s.error.is_none() && s.passed != Some(false))
    }
}

/// The figures of one scorer over the cases that carry it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorerRow {
    pub name: String,
    /// How many scores it gave (one per case run, or more when it scores several steps).
    pub n: usize,
    /// The mean of its values, over the scores that have one.
    pub mean: Option<f64>,
    /// The share of its scores with a verdict that passed.
    pub pass_rate: Option<f64>,
    /// Scores it could not give.
    pub errors: usize,
    /// The durations of the cases it scored.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
}

/// The figures of the whole experiment.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Planned runs (cases × repeat), ran to the end, passed.
    pub runs: u64,
    pub ran: u64,
    pub passed: u64,
    /// Ran, and their traces are gone.
    pub missing: u64,
    /// `passed / runs`: a run that never happened is not a pass.
    pub pass_rate: f64,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// With `--repeat K` (K > 1): the share of cases that passed at least once (pass@k) and
    /// every time (pass^k).
    pub pass_at_k: Option<f64>,
    pub pass_all_k: Option<f64>,
    pub scorers: Vec<ScorerRow>,
}

fn sum_cost(cases: &[&CaseResult]) -> Option<f64> {
    cases
        .iter()
        .filter_map(|c| c.cost_usd)
        .fold(None, |acc, c| Some(acc.unwrap_or(0.0) + c))
}

fn percentiles(cases: &[&CaseResult]) -> (Option<f64>, Option<f64>) {
    let mut d: Vec<f64> = cases.iter().filter_map(|c| c.duration_ms).collect();
    d.sort_by(f64::total_cmp);
    (nearest_rank(&d, 50), nearest_rank(&d, 95))
}

/// The figures of `cases` (every run, in report order) for an experiment of `runs` planned
/// runs, each case `repeat` times.
pub fn summarize(cases: &[CaseResult], runs: u64, repeat: u32) -> Summary {
    let all: Vec<&CaseResult> = cases.iter().collect();
    let ran: Vec<&CaseResult> = cases.iter().filter(|c| c.status.is_some()).collect();
    let passed = cases.iter().filter(|c| c.passed()).count() as u64;
    let (p50_ms, p95_ms) = percentiles(&ran);
    let mut by_scorer: BTreeMap<&str, Vec<(&CaseResult, &Score)>> = BTreeMap::new();
    for case in &ran {
        for score in &case.scores {
            by_scorer
                .entry(&score.name)
                .or_default()
                .push((case, score));
        }
    }
    let scorers = by_scorer
        .into_iter()
        .map(|(name, scored)| {
            let values: Vec<f64> = scored.iter().filter_map(|(_, s)| s.value).collect();
            let verdicts: Vec<bool> = scored
                .iter()
                .filter(|(_, s)| s.passed.is_some() || s.error.is_some())
                .map(|(_, s)| s.is_pass())
                .collect();
            let mut cases: Vec<&CaseResult> = scored.iter().map(|(c, _)| *c).collect();
            cases.dedup_by(|a, b| std::ptr::eq(*a, *b));
            let (p50_ms, p95_ms) = percentiles(&cases);
            ScorerRow {
                name: name.to_string(),
                n: scored.len(),
                mean: (!values.is_empty())
                    .then(|| values.iter().sum::<f64>() / values.len() as f64),
                pass_rate: (!verdicts.is_empty()).then(|| {
                    verdicts.iter().filter(|p| **p).count() as f64 / verdicts.len() as f64
                }),
                errors: scored.iter().filter(|(_, s)| s.error.is_some()).count(),
                p50_ms,
                p95_ms,
                tokens: cases.iter().map(|c| c.tokens).sum(),
                cost_usd: sum_cost(&cases),
            }
        })
        .collect();
    let (pass_at_k, pass_all_k) = if repeat > 1 {
        let mut per_case: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for c in cases {
            let e = per_case.entry(&c.case_id).or_default();
            e.0 += 1;
            e.1 += usize::from(c.passed());
        }
        let n = per_case.len().max(1) as f64;
        let at = per_case.values().filter(|(_, p)| *p > 0).count() as f64 / n;
        let every = per_case
            .values()
            .filter(|(k, p)| *p == *k && *k >= repeat as usize)
            .count() as f64
            / n;
        (Some(at), Some(every))
    } else {
        (None, None)
    };
    Summary {
        runs,
        ran: ran.len() as u64,
        passed,
        missing: cases.iter().filter(|c| c.missing).count() as u64,
        pass_rate: if runs == 0 {
            0.0
        } else {
            passed as f64 / runs as f64
        },
        tokens: all.iter().map(|c| c.tokens).sum(),
        cost_usd: sum_cost(&all),
        p50_ms,
        p95_ms,
        pass_at_k,
        pass_all_k,
        scorers,
    }
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn dur(d: Option<f64>) -> String {
    d.map_or_else(|| String::from("-"), human_duration)
}

/// Why a case did not pass, in one line: the run's error, then each failing score with its
/// explanation.
pub fn failure_reasons(case: &CaseResult) -> Vec<String> {
    let mut out = Vec::new();
    match case.status {
        None if case.missing => out.push("its trace was deleted from the store".to_string()),
        None => out.push("did not run".to_string()),
        Some(Status::Ok) => {}
        Some(status) => out.push(match &case.error {
            Some(e) => format!("run {status}: {e}"),
            None => format!("run {status}"),
        }),
    }
    for s in &case.scores {
        if let Some(e) = &s.error {
            out.push(format!("{}: error: {e}", s.name));
        } else if s.passed == Some(false) {
            let value = s.value.map(|v| format!(" {v}")).unwrap_or_default();
            let label = s
                .label
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            let why = s
                .explanation
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            out.push(format!("{}: failed{value}{label}{why}", s.name));
        }
    }
    out
}

/// The case's id, and its attempt under `--repeat`: `refund-3 #2`.
pub fn case_label(case: &CaseResult, repeat: u32) -> String {
    if repeat > 1 {
        format!("{} #{}", case.case_id, case.attempt)
    } else {
        case.case_id.clone()
    }
}

/// The report on a terminal: a heading, the totals, a table per scorer and the failing cases.
///
/// Every line fits `width`: the heading and the totals are packed onto more lines, tables are
/// fitted, and a failing case's reasons are cut.
pub fn report_text(
    info: &ExperimentInfo,
    cases: &[CaseResult],
    theme: &Theme,
    width: usize,
) -> String {
    let s = summarize(cases, info.runs, info.repeat);
    let heading = format!("experiment {} ({})", clean(&info.name), info.id);
    let mut out = if width_of(&heading) <= width {
        pack(&[heading, info.status.clone()], width)
    } else {
        pack(
            &[
                format!("experiment {}", clean(&info.name)),
                format!("({})", info.id),
                info.status.clone(),
            ],
            width,
        )
    };
    out.push_str(&pack(
        &[
            format!("workflow {}", clean(&info.workflow)),
            format!(
                "dataset {} ({})",
                clean(&info.dataset),
                truncate(&info.dataset_hash, 19)
            ),
        ],
        width,
    ));
    out.push_str(&pack(
        &[
            format!("{} runs", s.runs),
            format!("{} passed", s.passed),
            format!("{} failed", s.runs - s.passed),
            format!("pass rate {}", percent(s.pass_rate)),
            format!("tokens {}", s.tokens),
            format!("cost {}", cost(s.cost_usd)),
            format!("p50 {}", dur(s.p50_ms)),
            format!("p95 {}", dur(s.p95_ms)),
        ],
        width,
    ));
    if let (Some(at), Some(all)) = (s.pass_at_k, s.pass_all_k) {
        out.push_str(&format!(
            "pass@{k} {}  pass^{k} {}\n",
            percent(at),
            percent(all),
            k = info.repeat
        ));
    }
    if !s.scorers.is_empty() {
        out.push('\n');
        out.push_str(&scorer_table(&s.scorers, theme, width));
    }
    let failing: Vec<&CaseResult> = cases.iter().filter(|c| !c.passed()).collect();
    if !failing.is_empty() {
        out.push_str(&format!("\nfailing cases ({})\n", failing.len()));
        for case in failing {
            let reasons = failure_reasons(case);
            out.push_str(&format!(
                "  {}\n",
                truncate(
                    &clean(&case_label(case, info.repeat)),
                    width.saturating_sub(2)
                )
            ));
            for r in reasons {
                out.push_str(&format!(
                    "    {}\n",
                    truncate(&clean(&r), width.saturating_sub(4).min(240))
                ));
            }
        }
    }
    out
}

/// At the width: the name is cut first, then the tokens, p95, errors and cost are dropped.
fn scorer_table(rows: &[ScorerRow], theme: &Theme, width: usize) -> String {
    let mut grid = Grid::new(
        theme,
        vec![
            Column::left("SCORER").shrink(1, 12),
            Column::right("N"),
            Column::right("MEAN"),
            Column::right("PASS"),
            Column::right("ERRORS").drop(3),
            Column::right("P50"),
            Column::right("P95").drop(2),
            Column::right("TOKENS").drop(1),
            Column::right("COST").drop(4),
        ],
    );
    for r in rows {
        grid.row(vec![
            truncate(&r.name, 40).into(),
            r.n.to_string().into(),
            r.mean
                .map_or_else(|| "-".into(), |m| format!("{m:.3}"))
                .into(),
            r.pass_rate.map_or_else(|| "-".into(), percent).into(),
            r.errors.to_string().into(),
            dur(r.p50_ms).into(),
            dur(r.p95_ms).into(),
            r.tokens.to_string().into(),
            cost(r.cost_usd).into(),
        ]);
    }
    grid.render(width)
}

pub(super) fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn opt(x: Option<f64>, places: i32) -> Value {
    x.map_or(Value::Null, |v| json!(round(v, places)))
}

/// A score in the report's JSON (the fields of `Score`, `null` when absent).
pub fn score_json(s: &Score) -> Value {
    json!({
        "name": s.name,
        "value": s.value,
        "label": s.label,
        "explanation": s.explanation,
        "passed": s.passed,
        "threshold": s.threshold,
        "source": s.source.as_str(),
        "error": s.error,
    })
}

/// An experiment as JSON: the `experiment` of a report, an item of `list --experiments`.
pub fn experiment_json(info: &ExperimentInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "workflow": info.workflow,
        "dataset": info.dataset,
        "dataset_hash": info.dataset_hash,
        "status": info.status,
        "started_at": info.started_at.map(Timestamp::to_rfc3339),
        "ended_at": info.ended_at.map(Timestamp::to_rfc3339),
        "runs": info.runs,
        "repeat": info.repeat,
        "metadata": info.metadata,
    })
}

/// `list --experiments`: one row per experiment, newest first.
///
/// At the width: the dataset, the workflow, then the name are cut; if that is not enough the
/// id goes first (`show` takes the name too), then the dataset and the workflow.
pub fn experiment_table(
    infos: &[ExperimentInfo],
    theme: &Theme,
    width: usize,
    tz: &jiff::tz::TimeZone,
) -> String {
    if infos.is_empty() {
        return String::from("(no experiments)\n");
    }
    let times: Vec<Option<Timestamp>> = infos.iter().map(|i| i.started_at).collect();
    let (started, cells) = start_column(&times, tz, false);
    let mut grid = Grid::new(
        theme,
        vec![
            Column::left("ID").drop(1),
            Column::left("NAME").shrink(4, 12),
            Column::left("WORKFLOW").shrink(2, 10).drop(3),
            Column::left("DATASET").shrink(1, 10).drop(2),
            Column::left("STATUS"),
            Column::left(&started),
            Column::right("RUNS"),
        ],
    );
    for (i, started) in infos.iter().zip(cells) {
        grid.row(vec![
            i.id.as_str().into(),
            truncate(&i.name, 40).into(),
            truncate(&i.workflow, 30).into(),
            truncate(&i.dataset, 30).into(),
            i.status.as_str().into(),
            started.into(),
            i.runs.to_string().into(),
        ]);
    }
    grid.render(width)
}

/// `eval --format json`: `{experiment, summary, scorers, cases}` (docs/contract.md).
pub fn report_json(info: &ExperimentInfo, cases: &[CaseResult]) -> Value {
    let s = summarize(cases, info.runs, info.repeat);
    json!({
        "experiment": experiment_json(info),
        "summary": {
            "runs": s.runs,
            "ran": s.ran,
            "passed": s.passed,
            "failed": s.runs - s.passed,
            "missing": s.missing,
            "pass_rate": round(s.pass_rate, 4),
            "pass_at_k": opt(s.pass_at_k, 4),
            "pass_all_k": opt(s.pass_all_k, 4),
            "tokens": s.tokens,
            "cost_usd": opt(s.cost_usd, 9),
            "p50_ms": opt(s.p50_ms, 3),
            "p95_ms": opt(s.p95_ms, 3),
        },
        "scorers": s.scorers.iter().map(|r| json!({
            "name": r.name,
            "n": r.n,
            "mean": opt(r.mean, 6),
            "pass_rate": opt(r.pass_rate, 4),
            "errors": r.errors,
            "p50_ms": opt(r.p50_ms, 3),
            "p95_ms": opt(r.p95_ms, 3),
            "tokens": r.tokens,
            "cost_usd": opt(r.cost_usd, 9),
        })).collect::<Vec<_>>(),
        "cases": cases.iter().map(|c| json!({
            "id": c.case_id,
            "attempt": c.attempt,
            "trace_id": c.trace_id.map(|t| t.to_string()),
            "status": c.status.map(|s| s.as_str()),
            "missing": c.missing,
            "passed": c.passed(),
            "error": c.error,
            "duration_ms": opt(c.duration_ms, 3),
            "tokens": c.tokens,
            "cost_usd": opt(c.cost_usd, 9),
            "scores": c.scores.iter().map(score_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// The live line on a terminal: `eval 12/40  pass 83.3%  $0.0123  ETA 14s`.
pub fn live_line(
    done: u64,
    total: u64,
    passed: u64,
    cost_usd: Option<f64>,
    eta_ms: Option<f64>,
) -> String {
    let rate = if done == 0 {
        "-".to_string()
    } else {
        percent(passed as f64 / done as f64)
    };
    format!(
        "eval {done}/{total}  pass {rate}  cost {}  ETA {}",
        cost(cost_usd),
        eta_ms.map_or_else(|| "-".to_string(), human_duration)
    )
}

/// One plain line per finished case (no terminal, or CI): `[12/40] pass  case-3  1.20s`.
pub fn plain_case_line(done: u64, total: u64, case: &CaseResult, repeat: u32) -> String {
    let verdict = if case.passed() { "pass" } else { "FAIL" };
    let mut line = format!(
        "[{done}/{total}] {verdict}  {}  {}",
        clean(&case_label(case, repeat)),
        dur(case.duration_ms)
    );
    if let Some(first) = failure_reasons(case).first() {
        line.push_str(&format!("  ({})", truncate(&clean(first), 160)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::score::ScoreSource;

    fn score(name: &str, value: f64, passed: bool, why: Option<&str>) -> Score {
        Score {
            value: Some(value),
            passed: Some(passed),
            explanation: why.map(str::to_string),
            ..Score::new(name, ScoreSource::Check)
        }
    }

    fn case(id: &str, ms: f64, scores: Vec<Score>) -> CaseResult {
        CaseResult {
            case_id: id.into(),
            attempt: 1,
            trace_id: Some(TraceId([7; 16])),
            status: Some(Status::Ok),
            missing: false,
            error: None,
            duration_ms: Some(ms),
            tokens: 100,
            cost_usd: Some(0.001),
            scores,
        }
    }

    fn cases() -> Vec<CaseResult> {
        let mut failed_run = case("refund-2", 900.0, vec![]);
        failed_run.status = Some(Status::Error);
        failed_run.error = Some("step answer: the model server answered 500".into());
        let mut gone = case("refund-5", 0.0, vec![]);
        gone.status = None;
        gone.missing = true;
        gone.duration_ms = None;
        gone.tokens = 0;
        gone.cost_usd = None;
        vec![
            case(
                "refund-1",
                1200.0,
                vec![
                    score("exact", 1.0, true, None),
                    score("helpful", 0.8, true, Some("clear and polite")),
                ],
            ),
            failed_run,
            case(
                "refund-3",
                2400.0,
                vec![
                    score("exact", 0.0, false, Some("expected \"42\", got \"41\"")),
                    Score::failed(
                        "helpful",
                        ScoreSource::Judge,
                        "the judge answered off-scale: 11",
                    ),
                ],
            ),
            case(
                "refund-4",
                600.0,
                vec![
                    score("exact", 1.0, true, None),
                    score("helpful", 0.4, false, Some("too curt")),
                ],
            ),
            gone,
        ]
    }

    fn info() -> ExperimentInfo {
        ExperimentInfo {
            id: "exp_0193".into(),
            name: "nightly".into(),
            workflow: "Support".into(),
            dataset: "cases".into(),
            dataset_hash: "sha256:0123456789abcdef0123".into(),
            status: "ok".into(),
            runs: 5,
            repeat: 1,
            ..ExperimentInfo::default()
        }
    }

    #[test]
    fn the_figures_per_scorer_are_over_the_cases_that_carry_it() {
        let s = summarize(&cases(), 5, 1);
        assert_eq!((s.runs, s.ran, s.passed, s.missing), (5, 4, 1, 1));
        assert!((s.pass_rate - 0.2).abs() < 1e-12);
        let exact = &s.scorers[0];
        assert_eq!(
            (exact.name.as_str(), exact.n, exact.errors),
            ("exact", 3, 0)
        );
        assert!((exact.mean.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((exact.pass_rate.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        // Nearest rank over 600, 1200, 2400.
        assert_eq!((exact.p50_ms, exact.p95_ms), (Some(1200.0), Some(2400.0)));
        let helpful = &s.scorers[1];
        assert_eq!((helpful.n, helpful.errors), (3, 1));
        assert!(
            (helpful.mean.unwrap() - 0.6).abs() < 1e-12,
            "the error has no value"
        );
        assert!((helpful.pass_rate.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.pass_at_k, None);
    }

    #[test]
    fn repeats_give_pass_at_k_and_pass_every_time() {
        let mut runs = Vec::new();
        for (id, verdicts) in [
            ("a", [true, true]),
            ("b", [true, false]),
            ("c", [false, false]),
        ] {
            for (i, ok) in verdicts.into_iter().enumerate() {
                let mut c = case(
                    id,
                    10.0,
                    vec![score("exact", f64::from(u8::from(ok)), ok, None)],
                );
                c.attempt = i as u32 + 1;
                runs.push(c);
            }
        }
        let s = summarize(&runs, 6, 2);
        assert!((s.pass_at_k.unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.pass_all_k.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn the_report_reads_naturally() {
        insta::assert_snapshot!(report_text(&info(), &cases(), &Theme::plain(), 120));
    }

    #[test]
    fn the_json_has_the_documented_keys() {
        let v = report_json(&info(), &cases());
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&v), ["experiment", "summary", "scorers", "cases"]);
        assert_eq!(
            keys(&v["summary"]),
            [
                "runs",
                "ran",
                "passed",
                "failed",
                "missing",
                "pass_rate",
                "pass_at_k",
                "pass_all_k",
                "tokens",
                "cost_usd",
                "p50_ms",
                "p95_ms"
            ]
        );
        assert_eq!(
            v["cases"][2]["scores"][1]["error"],
            json!("the judge answered off-scale: 11")
        );
        assert_eq!(v["cases"][4]["missing"], json!(true));
        assert_eq!(v["summary"]["pass_rate"], json!(0.2));
    }

    #[test]
    fn live_and_plain_lines() {
        assert_eq!(
            live_line(3, 40, 2, Some(0.0123), Some(14_000.0)),
            "eval 3/40  pass 66.7%  cost $0.0123  ETA 14.00s"
        );
        assert_eq!(
            live_line(0, 40, 0, None, None),
            "eval 0/40  pass -  cost -  ETA -"
        );
        let c = &cases()[2];
        assert_eq!(
            plain_case_line(3, 5, c, 1),
            "[3/5] FAIL  refund-3  2.40s  (exact: failed 0 (none): expected \"42\", got \"41\")"
                .replace(" (none)", "")
        );
    }
}
