//! `agentrace eval compare A B` (and `eval --baseline`): per scorer, how B changed against A
//! over the cases both ran, with the interval, the p-value and the verdict in plain words; then
//! the cases that changed. The statistics are computed by the command (`eval::compare`); this
//! module lays them out, as text and as the JSON of docs/contract.md.

use serde_json::{Value, json};

use super::eval::round;
use super::line::clean;
use super::table::{Column, Grid};
use super::theme::Theme;
use crate::trace::bound::truncate;

/// One scorer compared.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorerCompare {
    pub name: String,
    /// Cases scored in both.
    pub pairs: usize,
    pub mean_a: Option<f64>,
    pub mean_b: Option<f64>,
    /// The mean change B − A and its 95% paired bootstrap interval.
    pub change: Option<(f64, f64, f64)>,
    pub improved: usize,
    pub regressed: usize,
    pub unchanged: usize,
    /// McNemar's exact p-value, for a scorer with pass/fail verdicts.
    pub p_value: Option<f64>,
    /// "better", "worse", "not distinguishable", "too few paired cases to tell".
    pub verdict: String,
    /// B is significantly worse on it.
    pub worse: bool,
}

/// One case whose score changed.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseChange {
    pub case_id: String,
    pub scorer: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub a_passed: Option<bool>,
    pub b_passed: Option<bool>,
    /// B did worse on it.
    pub regressed: bool,
}

fn num(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

fn signed(x: f64) -> String {
    format!("{x:+.3}")
}

/// The comparison on a terminal. At the width, the scorer is cut first, then the columns a
/// verdict needs least are dropped: the counts of better / worse / same, the means, the
/// difference's interval, the pairs.
pub fn compare_text(
    a: &str,
    b: &str,
    rows: &[ScorerCompare],
    changes: &[CaseChange],
    theme: &Theme,
    width: usize,
) -> String {
    let mut out = format!(
        "A {}\nB {}\n\n",
        truncate(&clean(a), width.saturating_sub(2)),
        truncate(&clean(b), width.saturating_sub(2))
    );
    if rows.is_empty() {
        out.push_str("(no case ran in both)\n");
        return out;
    }
    let mut grid = Grid::new(
        theme,
        vec![
            Column::left("SCORER").shrink(1, 12),
            Column::right("PAIRS").drop(8),
            Column::right("A").drop(4),
            Column::right("B").drop(5),
            Column::right("B − A"),
            Column::right("95% CI").drop(6),
            Column::right("BETTER").drop(1),
            Column::right("WORSE").drop(2),
            Column::right("SAME").drop(3),
            Column::right("P").drop(7),
            Column::left("VERDICT"),
        ],
    );
    for r in rows {
        grid.row(vec![
            truncate(&r.name, 40).into(),
            r.pairs.to_string().into(),
            num(r.mean_a).into(),
            num(r.mean_b).into(),
            r.change
                .map_or_else(|| "-".into(), |(m, _, _)| signed(m))
                .into(),
            r.change
                .map_or_else(
                    || "-".into(),
                    |(_, lo, hi)| format!("[{}, {}]", signed(lo), signed(hi)),
                )
                .into(),
            r.improved.to_string().into(),
            r.regressed.to_string().into(),
            r.unchanged.to_string().into(),
            r.p_value
                .map_or_else(|| "-".into(), |p| format!("{p:.3}"))
                .into(),
            r.verdict.as_str().into(),
        ]);
    }
    out.push_str(&grid.render(width));
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{}\n",
            truncate(
                &format!("{}: {}", clean(&r.name), sentence(&r.verdict)),
                width
            )
        ));
    }
    let shown: Vec<&CaseChange> = changes.iter().filter(|c| c.regressed).take(20).collect();
    if !shown.is_empty() {
        out.push_str(&format!(
            "\nregressed cases ({})\n",
            changes.iter().filter(|c| c.regressed).count()
        ));
        for c in shown {
            let line = format!(
                "{}  {}: {} → {}",
                clean(&c.case_id),
                clean(&c.scorer),
                side(c.a, c.a_passed),
                side(c.b, c.b_passed)
            );
            out.push_str(&format!("  {}\n", truncate(&line, width.saturating_sub(2))));
        }
    }
    out
}

/// A verdict in a sentence: "B is worse than A".
fn sentence(verdict: &str) -> String {
    match verdict {
        "better" | "worse" => format!("B is {verdict} than A"),
        "not distinguishable" => "B is not distinguishable from A".to_string(),
        other => other.to_string(),
    }
}

fn side(value: Option<f64>, passed: Option<bool>) -> String {
    match (value, passed) {
        (Some(v), Some(p)) => format!("{v} ({})", if p { "pass" } else { "fail" }),
        (Some(v), None) => v.to_string(),
        (None, Some(p)) => (if p { "pass" } else { "fail" }).to_string(),
        (None, None) => "-".to_string(),
    }
}

fn opt(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |v| json!(round(v, 6)))
}

/// `eval compare --format json`: `{a, b, scorers, changes}` (docs/contract.md).
pub fn compare_json(a: &str, b: &str, rows: &[ScorerCompare], changes: &[CaseChange]) -> Value {
    json!({
        "a": a,
        "b": b,
        "scorers": rows.iter().map(|r| json!({
            "name": r.name,
            "pairs": r.pairs,
            "mean_a": opt(r.mean_a),
            "mean_b": opt(r.mean_b),
            "change": opt(r.change.map(|c| c.0)),
            "ci_low": opt(r.change.map(|c| c.1)),
            "ci_high": opt(r.change.map(|c| c.2)),
            "improved": r.improved,
            "regressed": r.regressed,
            "unchanged": r.unchanged,
            "p_value": opt(r.p_value),
            "verdict": r.verdict,
            "worse": r.worse,
        })).collect::<Vec<_>>(),
        "changes": changes.iter().map(|c| json!({
            "case": c.case_id,
            "scorer": c.scorer,
            "a": c.a,
            "b": c.b,
            "a_passed": c.a_passed,
            "b_passed": c.b_passed,
            "regressed": c.regressed,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comparison_reads_naturally() {
        let rows = vec![
            ScorerCompare {
                name: "exact".into(),
                pairs: 30,
                mean_a: Some(0.8),
                mean_b: Some(0.6),
                change: Some((-0.2, -0.333, -0.067)),
                improved: 1,
                regressed: 7,
                unchanged: 22,
                p_value: Some(0.0703),
                verdict: "worse".into(),
                worse: true,
            },
            ScorerCompare {
                name: "helpful".into(),
                pairs: 30,
                mean_a: Some(0.7),
                mean_b: Some(0.72),
                change: Some((0.02, -0.05, 0.09)),
                improved: 5,
                regressed: 4,
                unchanged: 21,
                p_value: None,
                verdict: "not distinguishable".into(),
                worse: false,
            },
        ];
        let changes = vec![CaseChange {
            case_id: "refund-3".into(),
            scorer: "exact".into(),
            a: Some(1.0),
            b: Some(0.0),
            a_passed: Some(true),
            b_passed: Some(false),
            regressed: true,
        }];
        insta::assert_snapshot!(compare_text(
            "baseline (exp_01)",
            "candidate (exp_02)",
            &rows,
            &changes,
            &Theme::plain(),
            120
        ));
        let v = compare_json("exp_01", "exp_02", &rows, &changes);
        assert_eq!(v["scorers"][0]["ci_high"], json!(-0.067));
        assert_eq!(v["scorers"][0]["worse"], json!(true));
        assert_eq!(v["changes"][0]["b_passed"], json!(false));
    }
}
