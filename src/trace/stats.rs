//! The figures of `agentrace stats` and of `diff`, computed over traces already loaded: pure
//! functions of the trace model, so that the store only selects and loads, and render only
//! lays out.
//!
//! Percentiles are exact, computed here rather than in SQL: **nearest-rank** over the selected
//! durations (sorted ascending, the p-th percentile is the value at rank ⌈p/100 · n⌉, counting
//! from 1), always a duration that really occurred. A span's tokens and cost are those of the
//! model calls in its subtree (itself included), so a `custom` span shows what its phase spent
//! and an agent span what its calls spent.

use std::collections::{BTreeMap, HashMap};

use super::{Span, SpanId, SpanKind, Status, TraceDoc};

/// What the rows of `stats` are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsBy {
    /// Every span, by its name.
    Name,
    /// Agent spans, by agent.
    Agent,
    /// Model calls (generation spans), by their `model` attribute.
    Model,
    /// Whole traces, by workflow: the unit is the trace, not the span.
    Workflow,
    /// Every span, by its kind.
    Kind,
}

impl StatsBy {
    /// The name of the key column (and of the key in the JSON objects).
    pub fn as_str(self) -> &'static str {
        match self {
            StatsBy::Name => "name",
            StatsBy::Agent => "agent",
            StatsBy::Model => "model",
            StatsBy::Workflow => "workflow",
            StatsBy::Kind => "kind",
        }
    }
}

/// One row of `stats`: the figures of every span (or trace) that shares a key.
#[derive(Clone, Debug, PartialEq)]
pub struct StatRow {
    pub key: String,
    pub count: usize,
    /// How many ended with status `error`.
    pub errors: usize,
    /// Nearest-rank percentiles and the maximum of the durations, in ms; `None` when nothing in
    /// the row has ended.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Total tokens.
    pub tokens: u64,
    /// Summed `cost_usd`; `None` when no model call in the row had a known price.
    pub cost_usd: Option<f64>,
}

impl StatRow {
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }
}

/// The value at nearest rank ⌈p/100 · n⌉ of `sorted` (ascending); `None` when it is empty.
pub fn nearest_rank(sorted: &[f64], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p.min(100) * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The tokens and cost of the model calls in one span's subtree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpanFigures {
    pub tokens: u64,
    pub cost_usd: Option<f64>,
}

/// [`SpanFigures`] for every span of `spans`, in the same order: each generation span's usage
/// and `cost_usd` added to it and to each of its ancestors.
pub fn subtree_figures(spans: &[Span]) -> Vec<SpanFigures> {
    let index: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut figures = vec![SpanFigures::default(); spans.len()];
    for (i, span) in spans.iter().enumerate() {
        if span.kind != SpanKind::Generation {
            continue;
        }
        let tokens = span.usage().map_or(0, |u| u.total_tokens);
        let cost = span.attributes.get("cost_usd").and_then(|v| v.as_f64());
        let mut at = Some(i);
        // A damaged store could hold a cycle; no chain is longer than the number of spans.
        for _ in 0..spans.len() {
            let Some(j) = at else { break };
            let f = &mut figures[j];
            f.tokens += tokens;
            if let Some(c) = cost {
                f.cost_usd = Some(f.cost_usd.unwrap_or(0.0) + c);
            }
            at = spans[j].parent_id.and_then(|p| index.get(&p).copied());
        }
    }
    figures
}

/// Gathers the figures of one row before the percentiles are taken.
#[derive(Default)]
struct Acc {
    count: usize,
    errors: usize,
    durations: Vec<f64>,
    tokens: u64,
    cost_usd: Option<f64>,
}

impl Acc {
    fn add(&mut self, status: Status, duration: Option<f64>, tokens: u64, cost: Option<f64>) {
        self.count += 1;
        if status == Status::Error {
            self.errors += 1;
        }
        if let Some(d) = duration.filter(|d| d.is_finite()) {
            self.durations.push(d.max(0.0));
        }
        self.tokens += tokens;
        if let Some(c) = cost {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
        }
    }

    fn into_row(mut self, key: String) -> StatRow {
        self.durations.sort_by(f64::total_cmp);
        StatRow {
            key,
            count: self.count,
            errors: self.errors,
            p50_ms: nearest_rank(&self.durations, 50),
            p95_ms: nearest_rank(&self.durations, 95),
            max_ms: self.durations.last().copied(),
            tokens: self.tokens,
            cost_usd: self.cost_usd,
        }
    }
}

/// The rows of `stats` over `docs`, the most frequent first (then by key). Skipped spans did
/// not run and are left out; spans still running count but have no duration.
pub fn compute(docs: &[TraceDoc], by: StatsBy) -> Vec<StatRow> {
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for doc in docs {
        if by == StatsBy::Workflow {
            let t = &doc.trace;
            groups.entry(t.workflow.clone()).or_default().add(
                t.status,
                t.duration_ms(),
                t.usage.total_tokens,
                t.cost_usd,
            );
            continue;
        }
        let figures = subtree_figures(&doc.spans);
        for (span, f) in doc.spans.iter().zip(figures) {
            if span.status == Status::Skipped {
                continue;
            }
            let key = match by {
                StatsBy::Name => span.name.clone(),
                StatsBy::Kind => span.kind.as_str().to_string(),
                StatsBy::Agent if span.kind == SpanKind::Agent => span.name.clone(),
                StatsBy::Model if span.kind == SpanKind::Generation => span
                    .attributes
                    .get("model")
                    .and_then(|m| m.as_str())
                    .unwrap_or(&span.name)
                    .to_string(),
                _ => continue,
            };
            groups.entry(key).or_default().add(
                span.status,
                span.duration_ms(),
                f.tokens,
                f.cost_usd,
            );
        }
    }
    let mut rows: Vec<StatRow> = groups
        .into_iter()
        .map(|(key, acc)| acc.into_row(key))
        .collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    rows
}
