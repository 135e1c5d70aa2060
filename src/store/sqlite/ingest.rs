//! Writing what `agentrace serve` receives: trace headers and spans from other programs.
//!
//! Unlike a run, an ingest sender never says when a trace ends or how it went. The store keeps
//! what was sent (name, group, metadata from headers; spans as they come, in any order and over
//! any number of requests) and derives the rest from the spans after every request: the trace
//! starts with its first span and ends with its last, is `running` while a span is open, `error`
//! when a span failed, `ok` otherwise, and its usage and cost are the sums over its generation
//! spans, as for a run (`cancelled` when a span was cancelled and none failed). A span whose
//! trace has not been announced yet gets a placeholder trace named after the span until the
//! header arrives. A trace recorded by a local `run` (it has a writer pid) is that run's: an
//! ingest of the same trace (its own OTLP export sent back here) adds spans but never rewrites
//! the trace row.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};

use super::schema::index_spans_from;
use super::writer::{map_json, write_events, write_span};
use super::{Store, StoreError};
use crate::store::IngestSummary;
use crate::trace::ingest::Ingest;
use crate::trace::{Span, TraceId};

impl Store {
    /// Writes `ingest` in one transaction: all of it or, on error, nothing.
    pub fn ingest(&self, ingest: &Ingest) -> Result<IngestSummary, StoreError> {
        let touched = touched(ingest);
        self.with_write_tx(|tx| {
            let mut seqs = Vec::with_capacity(ingest.spans.len());
            write(tx, ingest, &mut seqs, &mut HashSet::new())?;
            finish(tx, &touched, &seqs)
        })?;
        Ok(summary(ingest, touched))
    }

    /// Writes several requests' ingests in ONE transaction (a group commit: `serve`'s writer
    /// gathers what arrives while it writes), with one result per ingest, in order. The store
    /// ends exactly as if each had gone through [`Store::ingest`] in turn: the traces are
    /// settled once, after all their spans are in, from the same spans. When the transaction
    /// fails, each ingest is written again alone, so that one bad ingest fails only itself —
    /// except when the store as a whole refuses (locked too long, disk full): then every ingest
    /// gets that answer at once rather than waiting for it again one by one.
    pub fn ingest_many(&self, batch: &[&Ingest]) -> Vec<Result<IngestSummary, StoreError>> {
        if batch.len() <= 1 {
            return batch.iter().map(|ingest| self.ingest(ingest)).collect();
        }
        let each: Vec<BTreeSet<TraceId>> = batch.iter().map(|ingest| touched(ingest)).collect();
        let all: BTreeSet<TraceId> = each.iter().flatten().copied().collect();
        let spans = batch.iter().map(|ingest| ingest.spans.len()).sum();
        let written = self.with_write_tx(|tx| {
            let mut seqs = Vec::with_capacity(spans);
            let mut present = HashSet::new();
            for ingest in batch {
                write(tx, ingest, &mut seqs, &mut present)?;
            }
            finish(tx, &all, &seqs)
        });
        match written {
            Ok(()) => batch
                .iter()
                .zip(each)
                .map(|(ingest, touched)| Ok(summary(ingest, touched)))
                .collect(),
            Err(StoreError::Busy { .. }) => batch
                .iter()
                .map(|_| {
                    Err(StoreError::Busy {
                        path: self.path.clone(),
                    })
                })
                .collect(),
            Err(StoreError::DiskFull { .. }) => batch
                .iter()
                .map(|_| {
                    Err(StoreError::DiskFull {
                        path: self.path.clone(),
                    })
                })
                .collect(),
            Err(_) => batch.iter().map(|ingest| self.ingest(ingest)).collect(),
        }
    }
}

/// The traces an ingest names, by header or by span.
fn touched(ingest: &Ingest) -> BTreeSet<TraceId> {
    ingest
        .traces
        .iter()
        .map(|t| t.trace_id)
        .chain(ingest.spans.iter().map(|s| s.trace_id))
        .collect()
}

fn summary(ingest: &Ingest, touched: BTreeSet<TraceId>) -> IngestSummary {
    IngestSummary {
        traces: touched.into_iter().collect(),
        spans: ingest.spans.len(),
    }
}

/// Writes an ingest's headers, spans and events; pushes the spans' row numbers (with the span)
/// onto `seqs`.
/// `present` holds the traces that have a row in this transaction already: a span of one of them
/// needs no placeholder (whose insert would do nothing), so a body of 100 spans of one trace
/// makes one placeholder insert, not 100.
fn write<'a>(
    tx: &Transaction<'_>,
    ingest: &'a Ingest,
    seqs: &mut Vec<(i64, &'a Span)>,
    present: &mut HashSet<TraceId>,
) -> rusqlite::Result<()> {
    for header in &ingest.traces {
        tx.prepare_cached(
            "INSERT INTO traces (trace_id, name, workflow, group_id, metadata, status,
                                 started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)
             ON CONFLICT (trace_id) DO UPDATE SET
                 name = excluded.name, workflow = excluded.workflow,
                 group_id = excluded.group_id, metadata = excluded.metadata
             WHERE traces.pid IS NULL",
        )?
        .execute(params![
            header.trace_id.to_string(),
            header.name,
            header.workflow,
            header.group_id,
            map_json(&header.metadata),
            crate::trace::Timestamp::now().micros(),
        ])?;
        present.insert(header.trace_id);
    }
    for span in &ingest.spans {
        if present.insert(span.trace_id) {
            tx.prepare_cached(
                "INSERT INTO traces (trace_id, name, workflow, status, started_at)
                 VALUES (?1, ?2, ?2, 'running', ?3)
                 ON CONFLICT (trace_id) DO NOTHING",
            )?
            .execute(params![
                span.trace_id.to_string(),
                span.name,
                span.started_at.micros(),
            ])?;
        }
        seqs.push((write_span(tx, span)?, span));
        write_events(tx, span)?;
    }
    Ok(())
}

/// Settles the touched traces and indexes the written spans for search.
fn finish(
    tx: &Transaction<'_>,
    touched: &BTreeSet<TraceId>,
    seqs: &[(i64, &Span)],
) -> rusqlite::Result<()> {
    for trace_id in touched {
        settle(tx, *trace_id)?;
    }
    index_spans_from(tx, seqs)
}

/// What a trace's spans add up to.
struct Totals {
    started: i64,
    ended: Option<i64>,
    /// Spans not ended yet.
    open: i64,
    cancelled: i64,
    /// Input, output and total tokens of the generation spans.
    tokens: [i64; 3],
    cost: Option<f64>,
}

/// Derives a trace's times, status, error, usage and cost from its spans.
fn settle(tx: &Transaction<'_>, trace_id: TraceId) -> rusqlite::Result<()> {
    let id = trace_id.to_string();
    let row: Option<Totals> = tx
        .prepare_cached(
            "SELECT min(started_at),
                    CASE WHEN count(*) = count(ended_at) THEN max(ended_at) END,
                    count(*) - count(ended_at),
                    count(CASE WHEN status = 'cancelled' THEN 1 END),
                    coalesce(sum(CASE WHEN kind = 'generation' THEN
                        json_extract(attributes, '$.usage.input_tokens') END), 0),
                    coalesce(sum(CASE WHEN kind = 'generation' THEN
                        json_extract(attributes, '$.usage.output_tokens') END), 0),
                    coalesce(sum(CASE WHEN kind = 'generation' THEN
                        json_extract(attributes, '$.usage.total_tokens') END), 0),
                    sum(CASE WHEN kind = 'generation' THEN
                        json_extract(attributes, '$.cost_usd') END)
             FROM spans WHERE trace_id = ?1 HAVING count(*) > 0",
        )?
        .query_row([&id], |r| {
            Ok(Totals {
                started: r.get(0)?,
                ended: r.get(1)?,
                open: r.get(2)?,
                cancelled: r.get(3)?,
                tokens: [r.get(4)?, r.get(5)?, r.get(6)?],
                cost: r.get(7)?,
            })
        })
        .optional()?;
    let Some(totals) = row else {
        return Ok(());
    };
    // The first failed span, outermost first, explains a failed trace.
    let failed: Option<(String, Option<String>)> = tx
        .prepare_cached(
            "SELECT name, json_extract(error, '$.message') FROM spans
             WHERE trace_id = ?1 AND status = 'error' ORDER BY started_at, seq LIMIT 1",
        )?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let status = if totals.open > 0 {
        "running"
    } else if failed.is_some() {
        "error"
    } else if totals.cancelled > 0 {
        "cancelled"
    } else {
        "ok"
    };
    let error = failed.map(|(name, message)| {
        let message = match message {
            Some(m) => format!("span `{name}` failed: {m}"),
            None => format!("span `{name}` failed"),
        };
        serde_json::json!({"message": message, "data": {}}).to_string()
    });
    tx.prepare_cached(
        "UPDATE traces SET started_at = ?2, ended_at = ?3, status = ?4, error = ?5,
                input_tokens = ?6, output_tokens = ?7, total_tokens = ?8, cost_usd = ?9
         WHERE trace_id = ?1 AND pid IS NULL",
    )?
    .execute(params![
        id,
        totals.started,
        totals.ended,
        status,
        error,
        totals.tokens[0],
        totals.tokens[1],
        totals.tokens[2],
        totals.cost
    ])?;
    Ok(())
}
