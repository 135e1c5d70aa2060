//! The `stats` table and its JSON: one row per span name (or agent, model, workflow, kind).

use serde_json::{Map, Value, json};

use super::table::{Column, Grid};
use super::theme::Theme;
use super::{cost, human_duration};
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

/// At the width: the key is cut first, then the tokens, the max and the p95 are dropped.
pub fn stats_table(rows: &[StatRow], by: StatsBy, theme: &Theme, width: usize) -> String {
    if rows.is_empty() {
        return String::from("(no spans)\n");
    }
    let key = by.as_str().to_ascii_uppercase();
    let mut grid = Grid::new(
        theme,
        vec![
            Column::left(&key).shrink(1, KEY_MIN),
            Column::right("COUNT"),
            Column::right("ERRORS"),
            Column::right("P50"),
            Column::right("P95").drop(3),
            Column::right("MAX").drop(2),
            Column::right("TOKENS").drop(1),
            Column::right("COST"),
        ],
    );
    let dur = |d: Option<f64>| d.map_or_else(|| String::from("-"), human_duration);
    for r in rows {
        let errors = if r.errors == 0 {
            String::from("0")
        } else {
            format!("{} ({:.0}%)", r.errors, r.error_rate() * 100.0)
        };
        grid.row(vec![
            truncate(&r.key, KEY_MAX).into(),
            r.count.to_string().into(),
            errors.into(),
            dur(r.p50_ms).into(),
            dur(r.p95_ms).into(),
            dur(r.max_ms).into(),
            if r.tokens == 0 {
                String::from("-")
            } else {
                r.tokens.to_string()
            }
            .into(),
            cost(r.cost_usd).into(),
        ]);
    }
    grid.render(width)
}

/// The narrowest a key is cut to.
const KEY_MIN: usize = 12;

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
        insta::assert_snapshot!(stats_table(&rows(), StatsBy::Name, &Theme::plain(), 120));
        assert_eq!(
            stats_table(&[], StatsBy::Name, &Theme::plain(), 120),
            "(no spans)\n"
        );
    }

    #[test]
    fn at_80_and_60_columns_the_key_is_cut_then_columns_go() {
        let mut rows = rows();
        rows[0].key = "The step that says the word it was given by the case".into();
        rows[0].tokens = 123_456;
        for width in [80, 60] {
            let out = stats_table(&rows, StatsBy::Name, &Theme::plain(), width);
            assert!(
                out.lines().all(|l| l.chars().count() <= width),
                "{width}:\n{out}"
            );
            insta::assert_snapshot!(format!("stats_at_{width}"), out);
        }
    }
}
