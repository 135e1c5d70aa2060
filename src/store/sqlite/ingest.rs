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
//!
//! A pushing run (`AGENTRACE_REMOTE`) sends its own trace row with every request
//! ([`Ingest::rows`]): that row is written as it is, not derived, so that its trace reads back
//! as a local run's would (its error, its usage without the judges', its start before its
//! first span). A row that is still running never replaces one that has ended: a request
//! retried late cannot turn a finished trace back into a running one.

use std::collections::{BTreeSet, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};

use super::schema::index_spans_from;
use super::writer::{SpanRows, write_events, write_trace};
use super::{Store, StoreError};
use crate::store::rows::derived_status;
use crate::store::writer::map_json;
use crate::trace::ingest::Ingest;
use crate::trace::{Span, TraceId};

impl Store {
    /// Writes ingests in ONE transaction, as if one after the other (the headers, spans and
    /// events of each in turn), then settles every trace they touched once, from all its spans,
    /// and writes the pushed trace rows ([`Ingest::rows`]). All or nothing. The rules of one
    /// result per ingest and of retrying a failed batch live above the backends
    /// ([`crate::store::Store::ingest_many`]).
    pub(crate) fn ingest_batch(&self, batch: &[&Ingest]) -> Result<(), StoreError> {
        let touched: BTreeSet<TraceId> = batch
            .iter()
            .flat_map(|ingest| {
                ingest
                    .traces
                    .iter()
                    .map(|t| t.trace_id)
                    .chain(ingest.spans.iter().map(|s| s.trace_id))
            })
            .collect();
        let spans = batch.iter().map(|ingest| ingest.spans.len()).sum();
        self.with_write_tx(|tx| {
            let mut seqs = Vec::with_capacity(spans);
            let mut present = HashSet::new();
            for ingest in batch {
                write(tx, ingest, &mut seqs, &mut present)?;
            }
            for trace_id in &touched {
                if !batch
                    .iter()
                    .any(|ingest| ingest.rows.iter().any(|r| r.trace_id == *trace_id))
                {
                    settle(tx, *trace_id)?;
                }
            }
            for row in batch.iter().flat_map(|ingest| ingest.rows.iter()) {
                write_row(tx, row)?;
            }
            index_spans_from(tx, &seqs, &foldhash::HashSet::default())
        })
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
    let mut rows = SpanRows::new(tx);
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
        seqs.push((rows.write(span)?, span));
        write_events(tx, span)?;
    }
    Ok(())
}

/// Writes a pushing run's trace row as it is (see the module docs): not over a local run's
/// row, and not a running row over one that has ended.
fn write_row(tx: &Transaction<'_>, t: &crate::trace::Trace) -> rusqlite::Result<()> {
    let kept: bool = tx
        .prepare_cached(
            "SELECT pid IS NOT NULL OR (ended_at IS NOT NULL AND ?2) FROM traces
             WHERE trace_id = ?1",
        )?
        .query_row(params![t.trace_id.to_string(), t.ended_at.is_none()], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(false);
    if kept {
        return Ok(());
    }
    let mut row = t.clone();
    row.pid = None;
    write_trace(tx, &row)
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
    // The span where the failure happened explains a failed trace: the first failed span,
    // outermost first, that does not point at another (`caused_by`, see trace/failure.rs).
    let failed: Option<(String, Option<String>)> = tx
        .prepare_cached(
            "SELECT name, json_extract(error, '$.message') FROM spans
             WHERE trace_id = ?1 AND status = 'error'
             ORDER BY json_extract(error, '$.data.caused_by') IS NOT NULL, started_at, seq
             LIMIT 1",
        )?
        .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (status, error) = derived_status(totals.open, totals.cancelled, failed);
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
