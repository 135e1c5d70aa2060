//! What `serve` receives, written to PostgreSQL with the same rules as SQLite's ingest
//! ([`crate::store`]'s SQLite `ingest.rs` says them): headers and spans upserted by id, then
//! each touched trace's times, status, error, usage and cost derived from its spans, unless a
//! local run owns the trace (it has a writer pid).

use std::collections::{BTreeSet, HashMap};

use postgres::Transaction;

use super::Store;
use super::search::words;
use super::write::{write_spans, write_trace};
use crate::store::StoreError;
use crate::store::rows::derived_status;
use crate::store::writer::map_json;
use crate::trace::ingest::Ingest;
use crate::trace::{Span, TraceId};

impl Store {
    /// Writes several ingests in one transaction, as if one after the other: headers in
    /// order, every span in one statement (the later of two writes of a span wins), then each
    /// touched trace settled once from all its spans.
    pub(crate) fn ingest_batch(&self, batch: &[&Ingest]) -> Result<(), StoreError> {
        let touched = touched(batch.iter().copied());
        let now = crate::trace::Timestamp::now().micros();
        self.with_write_tx(|tx| {
            for ingest in batch {
                for header in &ingest.traces {
                    let words = words([header.name.as_str(), header.workflow.as_str()]);
                    tx.execute(
                        "INSERT INTO traces (trace_id, name, workflow, group_id, metadata,
                                             status, started_at, search)
                         VALUES ($1, $2, $3, $4, $5, 'running', $6,
                                 array_to_tsvector($7::text[]))
                         ON CONFLICT (trace_id) DO UPDATE SET
                             name = excluded.name, workflow = excluded.workflow,
                             group_id = excluded.group_id, metadata = excluded.metadata,
                             search = excluded.search
                         WHERE traces.pid IS NULL",
                        &[
                            &header.trace_id.to_string(),
                            &header.name,
                            &header.workflow,
                            &header.group_id,
                            &map_json(&header.metadata),
                            &now,
                            &words,
                        ],
                    )?;
                }
            }
            // A span whose trace has not been announced gets a placeholder trace named after
            // it (the first such span of each trace names it).
            let mut placeholders: Vec<(String, &str, i64)> = Vec::new();
            let mut seen = BTreeSet::new();
            let spans: Vec<(&Span, bool)> = batch
                .iter()
                .flat_map(|ingest| ingest.spans.iter())
                .map(|span| (span, true))
                .collect();
            for (span, _) in &spans {
                if seen.insert(span.trace_id) {
                    placeholders.push((
                        span.trace_id.to_string(),
                        span.name.as_str(),
                        span.started_at.micros(),
                    ));
                }
            }
            let ids: Vec<&str> = placeholders.iter().map(|p| p.0.as_str()).collect();
            let names: Vec<&str> = placeholders.iter().map(|p| p.1).collect();
            let starts: Vec<i64> = placeholders.iter().map(|p| p.2).collect();
            let words: Vec<String> = names.iter().map(|n| words([*n]).join(" ")).collect();
            tx.execute(
                "INSERT INTO traces (trace_id, name, workflow, status, started_at, search)
                 SELECT t, n, n, 'running', sa, array_to_tsvector(string_to_array(w, ' '))
                 FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[]) AS u (t, n, sa, w)
                 ON CONFLICT (trace_id) DO NOTHING",
                &[&ids, &names, &starts, &words],
            )?;
            write_spans(tx, &spans)?;
            let rows: Vec<&crate::trace::Trace> =
                batch.iter().flat_map(|ingest| ingest.rows.iter()).collect();
            let derived: Vec<TraceId> = touched
                .iter()
                .filter(|id| !rows.iter().any(|r| r.trace_id == **id))
                .copied()
                .collect();
            settle(tx, &derived)?;
            for row in rows {
                write_row(tx, row)?;
            }
            Ok(())
        })
    }
}

/// Writes a pushing run's trace row as it is (see SQLite's `ingest.rs`): not over a local
/// run's row, and not a running row over one that has ended.
fn write_row(tx: &mut Transaction<'_>, t: &crate::trace::Trace) -> Result<(), postgres::Error> {
    let kept = tx
        .query_opt(
            "SELECT pid IS NOT NULL OR (ended_at IS NOT NULL AND $2) FROM traces
             WHERE trace_id = $1",
            &[&t.trace_id.to_string(), &t.ended_at.is_none()],
        )?
        .map(|r| r.try_get::<_, bool>(0))
        .transpose()?
        .unwrap_or(false);
    if kept {
        return Ok(());
    }
    let mut row = t.clone();
    row.pid = None;
    write_trace(tx, &row)
}

/// The traces ingests name, by header or by span.
fn touched<'a>(batch: impl IntoIterator<Item = &'a Ingest>) -> BTreeSet<TraceId> {
    batch
        .into_iter()
        .flat_map(|ingest| {
            ingest
                .traces
                .iter()
                .map(|t| t.trace_id)
                .chain(ingest.spans.iter().map(|s| s.trace_id))
        })
        .collect()
}

/// A number at `path` in a span's attributes, or NULL.
fn number(path: &str) -> String {
    format!(
        "CASE WHEN jsonb_typeof(attributes::jsonb #> '{path}') = 'number' \
         THEN (attributes::jsonb #>> '{path}')::numeric END"
    )
}

/// Derives the touched traces' times, status, error, usage and cost from their spans, in
/// three statements whatever their number (a batch of 16 bodies touches 16 traces).
fn settle(tx: &mut Transaction<'_>, traces: &[TraceId]) -> Result<(), postgres::Error> {
    if traces.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = traces.iter().map(ToString::to_string).collect();
    let sql = format!(
        "SELECT trace_id, min(started_at),
                CASE WHEN count(*) = count(ended_at) THEN max(ended_at) END,
                count(*) - count(ended_at),
                count(CASE WHEN status = 'cancelled' THEN 1 END),
                coalesce(sum(CASE WHEN kind = 'generation' THEN {} END), 0)::bigint,
                coalesce(sum(CASE WHEN kind = 'generation' THEN {} END), 0)::bigint,
                coalesce(sum(CASE WHEN kind = 'generation' THEN {} END), 0)::bigint,
                sum(CASE WHEN kind = 'generation' THEN {} END)::double precision
         FROM spans WHERE trace_id = ANY($1) GROUP BY trace_id",
        number("{usage,input_tokens}"),
        number("{usage,output_tokens}"),
        number("{usage,total_tokens}"),
        number("{cost_usd}"),
    );
    let totals = tx.query(&sql, &[&ids])?;
    // The span where the failure happened explains a failed trace: the first failed span,
    // outermost first, that does not point at another (`caused_by`, see trace/failure.rs).
    let mut failed: HashMap<String, (String, Option<String>)> = HashMap::new();
    for r in tx.query(
        "SELECT DISTINCT ON (trace_id) trace_id, name,
                CASE WHEN error IS NOT NULL AND jsonb_typeof(error::jsonb) = 'object'
                     THEN error::jsonb ->> 'message' END
         FROM spans WHERE trace_id = ANY($1) AND status = 'error'
         ORDER BY trace_id,
                  (CASE WHEN error IS NOT NULL AND jsonb_typeof(error::jsonb) = 'object'
                        THEN error::jsonb -> 'data' ->> 'caused_by' END) IS NOT NULL,
                  started_at, seq",
        &[&ids],
    )? {
        failed.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
    }
    let mut ids_out: Vec<String> = Vec::with_capacity(totals.len());
    let mut starts: Vec<i64> = Vec::with_capacity(totals.len());
    let mut ends: Vec<Option<i64>> = Vec::with_capacity(totals.len());
    let mut statuses: Vec<&str> = Vec::with_capacity(totals.len());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(totals.len());
    let mut tokens: [Vec<i64>; 3] = Default::default();
    let mut costs: Vec<Option<f64>> = Vec::with_capacity(totals.len());
    for row in &totals {
        let id: String = row.try_get(0)?;
        let open: i64 = row.try_get(3)?;
        let cancelled: i64 = row.try_get(4)?;
        let (status, error) = derived_status(open, cancelled, failed.remove(&id));
        ids_out.push(id);
        starts.push(row.try_get(1)?);
        ends.push(row.try_get(2)?);
        statuses.push(status);
        errors.push(error);
        for (i, column) in tokens.iter_mut().enumerate() {
            column.push(row.try_get(5 + i)?);
        }
        costs.push(row.try_get(8)?);
    }
    tx.execute(
        "UPDATE traces SET started_at = u.sa, ended_at = u.ea, status = u.st, error = u.er,
                input_tokens = u.i, output_tokens = u.o, total_tokens = u.tt, cost_usd = u.c
         FROM unnest($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::int8[],
                     $7::int8[], $8::int8[], $9::float8[])
              AS u (id, sa, ea, st, er, i, o, tt, c)
         WHERE traces.trace_id = u.id AND traces.pid IS NULL",
        &[
            &ids_out, &starts, &ends, &statuses, &errors, &tokens[0], &tokens[1], &tokens[2],
            &costs,
        ],
    )?;
    Ok(())
}
