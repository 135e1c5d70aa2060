//! The `stats` table and its JSON: one row per span name (or agent, model, workflow, kind).

use comfy_table::{Cell, CellAlignment};
use serde_json::{Map, Value, json};

use super::human_duration;
use super::table::plain_table;
use super::theme::Theme;
use crate::trace::bound::truncate;
use crate::trace::stats::{StatRow, StatsBy};

/// The longest a key is shown before it is cut with `…`.
const KEY_MAX: usize = 48;

/// Durations in ms rounded to microseconds; rates to four decimals; costs to 1e-9 USD, so that
/// float sums print as people expect.
fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

fn ms(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |v| json!(round(v, 3)))
}

/// The JSON array of `stats --format json`: objects with the key (named after `by`), `count`,
/// `errors`, `error_rate`, `p50_ms`, `p95_ms`, `max_ms`, `tokens` and `cost_usd`, in that order.
pub fn stats_json(rows: &[StatRow], by: StatsBy) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut o = Map::new();
                o.insert(by.as_str().into(), Value::String(r.key.clone()));
                o.insert("count".into(), json!(r.count));
                o.insert("errors".into(), json!(r.errors));
                o.insert("error_rate".into(), json!(round(r.error_rate(), 4)));
                o.insert("p50_ms".into(), ms(r.p50_ms));
                o.insert("p95_ms".into(), ms(r.p95_ms));
                o.insert("max_ms".into(), ms(r.max_ms));
                o.insert("tokens".into(), json!(r.tokens));
                o.insert(
                    "cost_usd".into(),
                    r.cost_usd.map_or(Value::Null, |c| json!(round(c, 9))),
                );
                Value::Object(o)
            })
            .collect(),
    )
}

/// `$0.0123`, with enough digits for small sums; `-` when unknown.
pub fn cost(c: Option<f64>) -> String {
    match c {
        None => String::from("-"),
        Some(c) if c.abs() >= 0.01 || c == 0.0 => format!("${c:.4}"),
        Some(c) => format!("${c:.6}"),
    }
}

pub fn stats_table(rows: &[StatRow], by: StatsBy, theme: &Theme) -> String {
    if rows.is_empty() {
        return String::from("(no spans)\n");
    }
    let key = by.as_str().to_ascii_uppercase();
    let header = [
        key.as_str(),
        "COUNT",
        "ERRORS",
        "P50",
        "P95",
        "MAX",
        "TOKENS",
        "COST",
    ];
    let mut table = plain_table(theme, &header);
    let dur = |d: Option<f64>| d.map_or_else(|| String::from("-"), human_duration);
    for r in rows {
        let errors = if r.errors == 0 {
            String::from("0")
        } else {
            format!("{} ({:.0}%)", r.errors, r.error_rate() * 100.0)
        };
        table.add_row(vec![
            Cell::new(truncate(&r.key.replace(char::is_control, " "), KEY_MAX)),
            Cell::new(r.count),
            Cell::new(errors),
            Cell::new(dur(r.p50_ms)),
            Cell::new(dur(r.p95_ms)),
            Cell::new(dur(r.max_ms)),
            Cell::new(if r.tokens == 0 {
                String::from("-")
            } else {
                r.tokens.to_string()
            }),
            Cell::new(cost(r.cost_usd)),
        ]);
    }
    let last = header.len() - 1;
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index == last { 0 } else { 2 }));
        if index > 0 {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<StatRow> {
        vec![
            StatRow {
                key: "fetch".into(),
                count: 3,
                errors: 1,
                p50_ms: Some(20.0),
                p95_ms: Some(30.0),
                max_ms: Some(30.0),
                tokens: 0,
                cost_usd: None,
            },
            StatRow {
                key: "clerk".into(),
                count: 2,
                errors: 0,
                p50_ms: Some(60.0),
                p95_ms: Some(1500.0),
                max_ms: Some(1500.0),
                tokens: 270,
                cost_usd: Some(0.1 + 0.2),
            },
        ]
    }

    #[test]
    fn json_has_the_documented_shape() {
        assert_eq!(
            serde_json::to_string(&stats_json(&rows(), StatsBy::Agent)).unwrap(),
            r#"[{"agent":"fetch","count":3,"errors":1,"error_rate":0.3333,"p50_ms":20.0,"p95_ms":30.0,"max_ms":30.0,"tokens":0,"cost_usd":null},{"agent":"clerk","count":2,"errors":0,"error_rate":0.0,"p50_ms":60.0,"p95_ms":1500.0,"max_ms":1500.0,"tokens":270,"cost_usd":0.3}]"#
        );
    }

    #[test]
    fn the_table_reads_naturally() {
        insta::assert_snapshot!(stats_table(&rows(), StatsBy::Name, &Theme::plain()));
        assert_eq!(
            stats_table(&[], StatsBy::Name, &Theme::plain()),
            "(no spans)\n"
        );
    }
}
