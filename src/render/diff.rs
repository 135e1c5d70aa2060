//! `agentrace diff A B`: what changed between two runs, span by span.
//!
//! Spans are matched by their **path of names**: the names from the root down, joined with `/`,
//! with `#k` after a name that is the k-th (k ≥ 2) sibling of that name in start order, e.g.
//! `Checks/inventory#2`. Ids are random per run, and names are what the workflow author wrote,
//! so two runs of one workflow line up even when a step was added in between. A span whose
//! parent is missing from the store counts as a root.
//!
//! A span's tokens and cost are those of the model calls in its subtree, as in `stats`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::content::content_text;
use super::cost as cost_text;
use super::table::{Column, Grid, Text, cut};
use super::theme::{Style, Theme};
use super::{human_duration, width_of};
use crate::trace::stats::subtree_figures;
use crate::trace::{Span, SpanKind, Status, Trace, TraceDoc};

/// One side of a span in the diff.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    pub kind: SpanKind,
    pub status: Status,
    pub duration_ms: Option<f64>,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    /// The `input` attribute as text (a model call's messages as `role: content` lines).
    pub input: Option<String>,
    /// The `output` (or `stdout`) attribute as text.
    pub output: Option<String>,
}

/// A span of A, of B, or of both.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanDiff {
    pub path: String,
    pub a: Option<Side>,
    pub b: Option<Side>,
    /// With `--content`: a unified line diff of the inputs, when they differ (a changed prompt).
    pub input_diff: Option<String>,
    /// With `--content`: a unified line diff of the outputs, when they differ.
    pub output_diff: Option<String>,
}

#[derive(Clone, Debug)]
pub struct TraceDiff {
    pub a: Trace,
    pub b: Trace,
    /// B's spans in tree order (matched or added), then the spans only A has, in A's order.
    pub spans: Vec<SpanDiff>,
}

/// Each span's path of names, in the order of `spans`.
pub fn span_paths(spans: &[Span]) -> Vec<String> {
    let index: HashMap<_, _> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut paths: Vec<String> = Vec::with_capacity(spans.len());
    let mut seen: HashMap<(Option<usize>, &str), usize> = HashMap::new();
    for span in spans {
        // Tree order puts parents first, so a parent's path is known; anything else is a root.
        let parent = span
            .parent_id
            .and_then(|p| index.get(&p).copied())
            .filter(|&p| p < paths.len());
        let n = seen.entry((parent, span.name.as_str())).or_insert(0);
        *n += 1;
        let mut path = parent.map_or_else(String::new, |p| format!("{}/", paths[p]));
        path.push_str(&span.name);
        if *n > 1 {
            path.push_str(&format!("#{n}"));
        }
        paths.push(path);
    }
    paths
}

/// Outputs lose their last newline when recorded (a command step's output is its stdout less one
/// trailing newline, docs/contract.md#json-shapes); put it back so that the line diff does not
/// say "No newline at end of file" about every output.
fn with_newline(text: Option<&str>) -> String {
    match text {
        None | Some("") => String::new(),
        Some(t) if t.ends_with('\n') => t.to_string(),
        Some(t) => format!("{t}\n"),
    }
}

/// A unified line diff of two texts of the span at `path` (its output, or with `what` its
/// input), when they differ.
fn line_diff(path: &str, what: &str, a: Option<&str>, b: Option<&str>) -> Option<String> {
    let (before, after) = (with_newline(a), with_newline(b));
    (before != after).then(|| {
        similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{path}{what}"), &format!("b/{path}{what}"))
            .to_string()
    })
}

fn sides(doc: &TraceDoc) -> Vec<(String, Side)> {
    let figures = subtree_figures(&doc.spans);
    span_paths(&doc.spans)
        .into_iter()
        .zip(doc.spans.iter().zip(figures))
        .map(|(path, (s, f))| {
            let output = ["output", "stdout"]
                .iter()
                .find_map(|k| s.attributes.get(*k))
                .map(|v| match v {
                    Value::String(text) => text.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                });
            let side = Side {
                kind: s.kind,
                status: s.status,
                duration_ms: s.duration_ms(),
                tokens: f.tokens,
                cost_usd: f.cost_usd,
                input: s.attributes.get("input").map(content_text),
                output,
            };
            (path, side)
        })
        .collect()
}

impl TraceDiff {
    pub fn new(a: &TraceDoc, b: &TraceDoc, content: bool) -> TraceDiff {
        let a_sides = sides(a);
        let mut in_a: HashMap<&str, &Side> = a_sides.iter().map(|(p, s)| (p.as_str(), s)).collect();
        let mut spans = Vec::new();
        for (path, side) in sides(b) {
            let old = in_a.remove(path.as_str()).cloned();
            let (input_diff, output_diff) = match (&old, content) {
                (Some(old), true) => (
                    line_diff(
                        &path,
                        " (input)",
                        old.input.as_deref(),
                        side.input.as_deref(),
                    ),
                    line_diff(&path, "", old.output.as_deref(), side.output.as_deref()),
                ),
                _ => (None, None),
            };
            spans.push(SpanDiff {
                path,
                a: old,
                b: Some(side),
                input_diff,
                output_diff,
            });
        }
        for (path, side) in &a_sides {
            if in_a.contains_key(path.as_str()) {
                spans.push(SpanDiff {
                    path: path.clone(),
                    a: Some(side.clone()),
                    b: None,
                    input_diff: None,
                    output_diff: None,
                });
            }
        }
        TraceDiff {
            a: a.trace.clone(),
            b: b.trace.clone(),
            spans,
        }
    }

    pub fn added(&self) -> impl Iterator<Item = &SpanDiff> {
        self.spans.iter().filter(|s| s.a.is_none())
    }

    pub fn removed(&self) -> impl Iterator<Item = &SpanDiff> {
        self.spans.iter().filter(|s| s.b.is_none())
    }

    pub fn matched(&self) -> impl Iterator<Item = (&SpanDiff, &Side, &Side)> {
        self.spans
            .iter()
            .filter_map(|s| Some((s, s.a.as_ref()?, s.b.as_ref()?)))
    }
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn num(x: Option<f64>, places: i32) -> Value {
    x.filter(|v| v.is_finite())
        .map_or(Value::Null, |v| json!(round(v, places)))
}

fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

/// `(b - a) / a` in percent; `None` when `a` is zero or unknown.
fn pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let a = a.filter(|a| *a != 0.0)?;
    Some((b? - a) / a * 100.0)
}

fn duration_json(a: Option<f64>, b: Option<f64>) -> Value {
    json!({"a": num(a, 3), "b": num(b, 3), "delta": num(delta(a, b), 3), "pct": num(pct(a, b), 1)})
}

fn tokens_json(a: u64, b: u64) -> Value {
    json!({"a": a, "b": b, "delta": i128::from(b) - i128::from(a)})
}

/// Unknown costs count as zero in a delta, unless both are unknown.
fn cost_delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    (a.is_some() || b.is_some()).then(|| b.unwrap_or(0.0) - a.unwrap_or(0.0))
}

fn cost_json(a: Option<f64>, b: Option<f64>) -> Value {
    json!({"a": num(a, 9), "b": num(b, 9), "delta": num(cost_delta(a, b), 9)})
}

fn trace_json(t: &Trace) -> Value {
    json!({
        "trace_id": t.trace_id.to_string(),
        "name": t.name,
        "workflow": t.workflow,
        "status": t.status.as_str(),
        "duration_ms": num(t.duration_ms(), 3),
        "tokens": t.usage.total_tokens,
        "cost_usd": num(t.cost_usd, 9),
    })
}

fn one_side_json(path: &str, s: &Side) -> Value {
    json!({
        "path": path,
        "kind": s.kind.as_str(),
        "status": s.status.as_str(),
        "duration_ms": num(s.duration_ms, 3),
        "tokens": s.tokens,
        "cost_usd": num(s.cost_usd, 9),
    })
}

/// The object of `diff --format json` (see the README for its shape).
pub fn diff_json(d: &TraceDiff) -> Value {
    let (a, b) = (&d.a, &d.b);
    json!({
        "a": trace_json(a),
        "b": trace_json(b),
        "totals": {
            "status": {"a": a.status.as_str(), "b": b.status.as_str()},
            "duration_ms": duration_json(a.duration_ms(), b.duration_ms()),
            "tokens": tokens_json(a.usage.total_tokens, b.usage.total_tokens),
            "cost_usd": cost_json(a.cost_usd, b.cost_usd),
        },
        "added": d.added().filter_map(|s| Some(one_side_json(&s.path, s.b.as_ref()?))).collect::<Vec<_>>(),
        "removed": d.removed().filter_map(|s| Some(one_side_json(&s.path, s.a.as_ref()?))).collect::<Vec<_>>(),
        "matched": d.matched().map(|(s, a, b)| json!({
            "path": s.path,
            "kind": b.kind.as_str(),
            "status": {"a": a.status.as_str(), "b": b.status.as_str()},
            "duration_ms": duration_json(a.duration_ms, b.duration_ms),
            "tokens": tokens_json(a.tokens, b.tokens),
            "cost_usd": cost_json(a.cost_usd, b.cost_usd),
            "input_diff": s.input_diff,
            "output_diff": s.output_diff,
        })).collect::<Vec<_>>(),
    })
}

fn signed_duration(d: f64) -> String {
    let sign = if d < 0.0 { "-" } else { "+" };
    format!("{sign}{}", human_duration(d.abs()))
}

/// The smallest change of time and cost the table shows: less reads as no change (`=`), not
/// as `-<0.1ms` or `+$0.000000`.
const TIME_EPSILON_MS: f64 = 0.05;
const COST_EPSILON_USD: f64 = 0.000_000_5;

/// The time, tokens and cost cells of a row: the signed change, `=` when there is none to
/// show, empty when there is nothing to compare (a time or cost unknown on both sides, or no
/// tokens on either).
fn change_cells(
    a: Option<f64>,
    b: Option<f64>,
    tokens: (u64, u64),
    cost: (Option<f64>, Option<f64>),
) -> [String; 3] {
    const SAME: &str = "=";
    let time = match (delta(a, b), pct(a, b)) {
        (Some(d), _) if d.abs() < TIME_EPSILON_MS => SAME.to_string(),
        (Some(d), Some(p)) => format!("{} {p:+.0}%", signed_duration(d)),
        (Some(d), None) => signed_duration(d),
        _ => String::new(),
    };
    let tokens = match (tokens, i128::from(tokens.1) - i128::from(tokens.0)) {
        ((0, 0), _) => String::new(),
        (_, 0) => SAME.to_string(),
        (_, n) => format!("{n:+}"),
    };
    let cost = match cost_delta(cost.0, cost.1) {
        Some(c) if c.abs() < COST_EPSILON_USD => SAME.to_string(),
        Some(c) => {
            let sign = if c < 0.0 { "-" } else { "+" };
            format!("{sign}{}", cost_text(Some(c.abs())))
        }
        None => String::new(),
    };
    [time, tokens, cost]
}

fn dur(d: Option<f64>) -> String {
    d.map_or_else(String::new, human_duration)
}

fn status_change(a: Status, b: Status) -> String {
    if a == b {
        a.as_str().to_string()
    } else {
        format!("{a} → {b}")
    }
}

/// The diff for people: a header per trace (its short id from `ids`), a table of spans, the
/// totals, then any output diffs. At the width, a span's path is cut at its start, then the
/// token, A-duration and cost columns are dropped.
pub fn diff_table(d: &TraceDiff, theme: &Theme, width: usize, ids: [&str; 2]) -> String {
    let mut out = String::new();
    for ((label, t), id) in [("A", &d.a), ("B", &d.b)].into_iter().zip(ids) {
        let duration = t
            .duration_ms()
            .map_or_else(|| String::from("-"), human_duration);
        let status = t.status.as_str();
        // The name takes what the rest leaves.
        let rest = width_of(label) + width_of(id) + width_of(status) + width_of(&duration) + 8;
        out.push_str(&format!(
            "{label}  {id}  {}  {}  {duration}\n",
            cut(
                &t.name.replace(char::is_control, " "),
                width.saturating_sub(rest).max(1)
            ),
            theme.paint(status, Style::Status(t.status)),
        ));
    }
    out.push('\n');
    let mut grid = Grid::new(
        theme,
        vec![
            Column::left(""),
            Column::left("SPAN").shrink(1, 12).keep(24).cut_start(),
            Column::left("STATUS"),
            Column::right("A").drop(2),
            Column::right("B"),
            Column::right("Δ TIME"),
            Column::right("Δ TOKENS").drop(1),
            Column::right("Δ COST").drop(3),
        ],
    );
    for s in &d.spans {
        let (mark, status, a_ms, b_ms, changes) = match (&s.a, &s.b) {
            (Some(a), Some(b)) => (
                if a.status != b.status { "~" } else { " " },
                status_change(a.status, b.status),
                a.duration_ms,
                b.duration_ms,
                change_cells(
                    a.duration_ms,
                    b.duration_ms,
                    (a.tokens, b.tokens),
                    (a.cost_usd, b.cost_usd),
                ),
            ),
            (None, Some(b)) => (
                "+",
                b.status.to_string(),
                None,
                b.duration_ms,
                Default::default(),
            ),
            (Some(a), None) => (
                "-",
                a.status.to_string(),
                a.duration_ms,
                None,
                Default::default(),
            ),
            (None, None) => continue,
        };
        let [time, tokens, cost] = changes;
        let mark = match mark {
            "+" => Text::styled(mark, Style::Status(Status::Ok)),
            "-" => Text::styled(mark, Style::Error),
            _ => mark.into(),
        };
        grid.row(vec![
            mark,
            s.path.as_str().into(),
            status.into(),
            dur(a_ms).into(),
            dur(b_ms).into(),
            time.into(),
            tokens.into(),
            cost.into(),
        ]);
    }
    let (a, b) = (&d.a, &d.b);
    let [time, tokens, cost] = change_cells(
        a.duration_ms(),
        b.duration_ms(),
        (a.usage.total_tokens, b.usage.total_tokens),
        (a.cost_usd, b.cost_usd),
    );
    grid.row(vec![
        "".into(),
        "(trace)".into(),
        status_change(a.status, b.status).into(),
        dur(a.duration_ms()).into(),
        dur(b.duration_ms()).into(),
        time.into(),
        tokens.into(),
        cost.into(),
    ]);
    out.push_str(&grid.render(width));
    let (added, removed) = (d.added().count(), d.removed().count());
    let changed = d.matched().filter(|(_, a, b)| a.status != b.status).count();
    out.push_str(&format!(
        "\n{added} added, {removed} removed, {changed} changed status, {} matched\n",
        d.matched().count()
    ));
    // A span's input diff (a changed prompt) before its output diff.
    let texts = d
        .spans
        .iter()
        .flat_map(|s| [&s.input_diff, &s.output_diff])
        .flatten();
    for text in texts {
        out.push('\n');
        for line in text.lines() {
            let style = if line.starts_with("+++") || line.starts_with("---") {
                Style::Bold
            } else if line.starts_with('+') {
                Style::Status(Status::Ok)
            } else if line.starts_with('-') {
                Style::Error
            } else if line.starts_with("@@") {
                Style::Muted
            } else {
                Style::Plain
            };
            out.push_str(&theme.paint(line, style));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::render::json::tests::sample_doc;
    use crate::trace::{SpanId, Timestamp};

    /// B: the sample with the agent slower and costlier, `notify` fixed, an extra `Inventory
    /// Check` sibling, and the inventory output changed; A: the sample.
    fn pair() -> (TraceDoc, TraceDoc) {
        let mut a = sample_doc();
        a.spans[1]
            .attributes
            .insert("stdout".into(), json!("10 units\nSKU-1\n"));
        a.spans[3].attributes.insert("cost_usd".into(), json!(0.25));
        let mut b = a.clone();
        b.trace.trace_id.0[15] = 0x43;
        b.trace.ended_at = Some(Timestamp(b.trace.started_at.0 + 1_000_000));
        b.trace.cost_usd = Some(0.3);
        b.spans[1]
            .attributes
            .insert("stdout".into(), json!("12 units\nSKU-1\n"));
        b.spans[3].attributes.insert("cost_usd".into(), json!(0.3));
        b.spans[3].attributes.insert(
            "usage".into(),
            json!({"input_tokens": 120, "output_tokens": 380, "total_tokens": 500}),
        );
        b.spans[2].ended_at = Some(Timestamp(b.spans[2].started_at.0 + 300_000));
        b.spans[4].status = Status::Ok;
        b.spans[4].error = None;
        let mut extra = b.spans[1].clone();
        extra.span_id = SpanId([9; 8]);
        extra.started_at = Timestamp(extra.started_at.0 + 1);
        b.spans.insert(2, extra);
        // A has a span B lacks.
        let mut gone = a.spans[4].clone();
        gone.span_id = SpanId([8; 8]);
        gone.name = "cleanup".into();
        a.spans.push(gone);
        (a, b)
    }

    #[test]
    fn paths_number_repeated_siblings() {
        let (_, b) = pair();
        assert_eq!(
            span_paths(&b.spans),
            [
                "Order Validation",
                "Order Validation/Inventory Check",
                "Order Validation/Inventory Check#2",
                "Order Validation/researcher",
                "Order Validation/researcher/gpt-4o-mini",
                "notify",
            ]
        );
    }

    #[test]
    fn json_reports_added_removed_and_deltas() {
        let (a, b) = pair();
        let d = TraceDiff::new(&a, &b, true);
        let v = diff_json(&d);
        assert_eq!(
            serde_json::to_string(&v["totals"]).unwrap(),
            r#"{"status":{"a":"ok","b":"ok"},"duration_ms":{"a":812.4,"b":1000.0,"delta":187.6,"pct":23.1},"tokens":{"a":460,"b":460,"delta":0},"cost_usd":{"a":0.000222,"b":0.3,"delta":0.299778}}"#
        );
        assert_eq!(
            serde_json::to_string(&v["added"]).unwrap(),
            r#"[{"path":"Order Validation/Inventory Check#2","kind":"command","status":"ok","duration_ms":5.099,"tokens":0,"cost_usd":null}]"#
        );
        assert_eq!(
            serde_json::to_string(&v["removed"]).unwrap(),
            r#"[{"path":"cleanup","kind":"command","status":"error","duration_ms":3.0,"tokens":0,"cost_usd":null}]"#
        );
        let matched = v["matched"].as_array().unwrap();
        assert_eq!(matched.len(), 5);
        assert_eq!(
            serde_json::to_string(&matched[2]).unwrap(),
            r#"{"path":"Order Validation/researcher","kind":"agent","status":{"a":"ok","b":"ok"},"duration_ms":{"a":200.1,"b":300.0,"delta":99.9,"pct":49.9},"tokens":{"a":460,"b":500,"delta":40},"cost_usd":{"a":0.25,"b":0.3,"delta":0.05},"input_diff":null,"output_diff":null}"#
        );
        assert_eq!(matched[4]["status"], json!({"a": "error", "b": "ok"}));
        assert_eq!(
            matched[1]["output_diff"],
            json!(
                "--- a/Order Validation/Inventory Check\n+++ b/Order Validation/Inventory Check\n@@ -1,2 +1,2 @@\n-10 units\n+12 units\n SKU-1\n"
            )
        );
        // Without --content there is no output diff.
        let plain = diff_json(&TraceDiff::new(&a, &b, false));
        assert_eq!(plain["matched"][1]["output_diff"], Value::Null);
    }

    #[test]
    fn content_compares_inputs_too_and_no_change_reads_as_equals() {
        let mut a = sample_doc();
        a.spans[3].attributes.insert(
            "input".into(),
            json!([{"role": "system", "content": "Answer in five points."},
                   {"role": "user", "content": "Research AI in healthcare"}]),
        );
        let mut b = a.clone();
        b.spans[3].attributes.insert(
            "input".into(),
            json!([{"role": "system", "content": "Answer in three points."},
                   {"role": "user", "content": "Research AI in healthcare"}]),
        );
        // Less than the table shows: no change.
        b.trace.cost_usd = a.trace.cost_usd.map(|c| c + 1e-9);
        b.trace.ended_at = a.trace.ended_at.map(|t| Timestamp(t.0 + 20));
        let d = TraceDiff::new(&a, &b, true);
        let agent = &d.spans[3];
        assert_eq!(agent.output_diff, None);
        assert_eq!(
            agent.input_diff.as_deref(),
            Some(
                "--- a/Order Validation/researcher/gpt-4o-mini (input)\n\
                 +++ b/Order Validation/researcher/gpt-4o-mini (input)\n\
                 @@ -1,2 +1,2 @@\n\
                 -system: Answer in five points.\n\
                 +system: Answer in three points.\n \
                 user: Research AI in healthcare\n"
            )
        );
        assert_eq!(
            diff_json(&d)["matched"][3]["input_diff"],
            json!(agent.input_diff)
        );
        let table = diff_table(&d, &Theme::plain(), 200, ["a", "b"]);
        assert!(
            table.contains("\n+system: Answer in three points.\n"),
            "{table}"
        );
        let trace = table.lines().find(|l| l.contains("(trace)")).unwrap();
        let cells: Vec<&str> = trace.split_whitespace().collect();
        assert_eq!(cells[cells.len() - 3..], ["=", "=", "="], "{trace}");
        // Without --content, no input diff either.
        assert_eq!(TraceDiff::new(&a, &b, false).spans[3].input_diff, None);
    }

    #[test]
    fn the_table_marks_added_removed_and_changed_spans() {
        let (a, b) = pair();
        let ids = [a.trace.trace_id.to_string(), b.trace.trace_id.to_string()];
        let out = diff_table(
            &TraceDiff::new(&a, &b, true),
            &Theme::plain(),
            200,
            [&ids[0], &ids[1]],
        );
        insta::assert_snapshot!(out);
        for width in [80, 60] {
            let ids = ["3f9a2c", "77e01b"];
            let out = diff_table(&TraceDiff::new(&a, &b, false), &Theme::plain(), width, ids);
            assert!(
                out.lines().all(|l| l.chars().count() <= width),
                "{width}:\n{out}"
            );
            insta::assert_snapshot!(format!("diff_at_{width}"), out);
        }
    }
}
