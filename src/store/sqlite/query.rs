//! Reading traces back: resolving what the user typed to a trace id, loading one trace in tree
//! order, and listing traces. Every read first closes the runs that died without closing their
//! trace (see [`super::reconcile`]).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, params, params_from_iter, types::Value as SqlValue};

use super::lock::Liveness;
use super::reconcile::Reconciled;
use super::{ListFilter, Store, StoreError};
use crate::store::reference::{End, Matches};
use crate::store::rows::{SpanRow, TraceRow, attach_events, list_row, tree_order};
use crate::trace::model::META_OFFLINE;
use crate::trace::{Span, Trace, TraceDoc, TraceId};

pub(super) const TRACE_COLUMNS: &str = "trace_id, name, workflow, group_id, metadata, status, started_at, \
                             ended_at, input_tokens, output_tokens, total_tokens, error, pid, \
                             cost_usd";

impl Store {
    /// The newest trace a `run` recorded (it has a writer pid), by start time.
    pub(crate) fn newest_run(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT trace_id FROM traces WHERE pid IS NOT NULL
                 ORDER BY started_at DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Whether the store holds any trace.
    pub(crate) fn has_traces(&self) -> Result<bool, StoreError> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM traces)", [], |r| r.get(0))
            .map_err(|e| self.sql(e))
    }

    /// The trace ids whose `end` holds `key` (see [`End::key`]): how many, and the newest
    /// `limit`. A range of an index, never a scan: the primary key for a head, the index of
    /// the reversed id (migration 8) for a tail; `count(*) OVER ()` counts the whole range
    /// before the limit, in the same query.
    pub(crate) fn traces_matching(
        &self,
        end: End,
        key: &str,
        limit: usize,
    ) -> Result<Matches, StoreError> {
        let sql = match end {
            End::Head => {
                "SELECT trace_id, count(*) OVER () FROM traces
                 WHERE trace_id >= ?1 AND trace_id < ?1 || 'g'
                 ORDER BY started_at DESC, rowid DESC LIMIT ?2"
            }
            End::Tail => {
                "SELECT trace_id, count(*) OVER () FROM traces
                 WHERE reversed_id >= ?1 AND reversed_id < ?1 || 'g'
                 ORDER BY started_at DESC, rowid DESC LIMIT ?2"
            }
        };
        let rows = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| {
                stmt.query_map(params![key, limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.sql(e))?;
        Ok(Matches {
            total: rows
                .first()
                .map_or(0, |(_, n)| usize::try_from(*n).unwrap_or(usize::MAX)),
            newest: rows.into_iter().map(|(id, _)| id).collect(),
        })
    }

    /// One trace with its spans in tree order (parents before children, siblings by start time
    /// then insertion order) and each span's events in time order. Spans whose parent is missing
    /// come last, as roots.
    pub fn load(&self, id: TraceId) -> Result<TraceDoc, StoreError> {
        let mut trace = self.trace_row(id)?.ok_or_else(|| StoreError::NotFound {
            id: id.to_string(),
            path: self.path.clone(),
        })?;
        let mut spans = self.spans(id)?;
        self.attach_events(id, &mut spans)?;
        if let Liveness::Dead(dead) = self.liveness(&trace)
            && self.reconcile(&mut trace, &mut spans, dead) == Reconciled::Stale
        {
            // Its run closed it just now: what it wrote is the truth.
            trace = self.trace_row(id)?.unwrap_or(trace);
            spans = self.spans(id)?;
            self.attach_events(id, &mut spans)?;
        }
        Ok(TraceDoc {
            trace,
            spans: tree_order(spans),
        })
    }

    /// Traces matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Trace>, StoreError> {
        // Close dead runs first, so that a status filter sees their real status. When the
        // store cannot be written, the patched rows are remembered and filtered here instead.
        let mut patched: HashMap<TraceId, Trace> = HashMap::new();
        for mut trace in self.running_traces()? {
            let Liveness::Dead(dead) = self.liveness(&trace) else {
                continue;
            };
            let mut spans = self.spans(trace.trace_id)?;
            // Its events count towards the run's last record, as in `load`.
            self.attach_events(trace.trace_id, &mut spans)?;
            if self.reconcile(&mut trace, &mut spans, dead) == Reconciled::InMemory {
                patched.insert(trace.trace_id, trace);
            }
        }
        let in_sql = patched.is_empty();
        let mut sql = format!("SELECT {TRACE_COLUMNS} FROM traces WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(group) = &filter.group {
            sql.push_str(" AND group_id = ?");
            args.push(SqlValue::Text(group.clone()));
        }
        if let Some(workflow) = &filter.workflow {
            sql.push_str(" AND workflow = ?");
            args.push(SqlValue::Text(workflow.clone()));
        }
        if let (Some(status), true) = (filter.status, in_sql) {
            sql.push_str(" AND status = ?");
            args.push(SqlValue::Text(status.as_str().to_string()));
        }
        for (key, value) in &filter.meta {
            // Values compare as text: numbers as their decimal text, booleans as true/false.
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(traces.metadata) \
                 THEN traces.metadata ELSE '{}' END) AS m WHERE m.key = ? AND \
                 (CASE m.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 WHEN 'null' THEN 'null' ELSE CAST(m.value AS TEXT) END) = ?)",
            );
            args.push(SqlValue::Text(key.clone()));
            args.push(SqlValue::Text(value.clone()));
        }
        if let Some(offline) = filter.offline {
            // A JSON `true` reads back as 1; anything else, or no mark, is not offline.
            sql.push_str(
                " AND (coalesce(json_extract(CASE WHEN json_valid(traces.metadata) \
                 THEN traces.metadata ELSE '{}' END, ?), 0) IS 1) = ?",
            );
            args.push(SqlValue::Text(format!("$.\"{META_OFFLINE}\"")));
            args.push(SqlValue::Integer(i64::from(offline)));
        }
        if let Some(since) = filter.since {
            sql.push_str(" AND started_at >= ?");
            args.push(SqlValue::Integer(since.micros()));
        }
        if let Some(until) = filter.until {
            sql.push_str(" AND started_at < ?");
            args.push(SqlValue::Integer(until.micros()));
        }
        if let Some((clause, values)) = filter.search.as_deref().and_then(super::search::clause) {
            sql.push_str(&clause);
            args.extend(values);
        }
        if let Some((at, id)) = filter.after {
            // Keyset paging: the rows after the cursor's in the order below, whatever was
            // added or removed meanwhile.
            sql.push_str(" AND (started_at < ? OR (started_at = ? AND trace_id < ?))");
            args.push(SqlValue::Integer(at.micros()));
            args.push(SqlValue::Integer(at.micros()));
            args.push(SqlValue::Text(id.to_string()));
        }
        sql.push_str(" ORDER BY started_at DESC, trace_id DESC");
        if let (Some(limit), true) = (filter.limit, in_sql) {
            sql.push_str(" LIMIT ?");
            args.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        }
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.sql(e))?;
        // Each row is cut down as it is read, so that a page of rows never holds their large
        // fields all at once.
        let rows = stmt
            .query_map(params_from_iter(args.iter()), |r| {
                Ok(read_trace_row(r)?.into_trace(&self.path).map(list_row))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let mut traces = Vec::with_capacity(rows.len());
        for row in rows {
            let trace = row?;
            traces.push(patched.remove(&trace.trace_id).map_or(trace, list_row));
        }
        if !in_sql {
            if let Some(status) = filter.status {
                traces.retain(|t| t.status == status);
            }
            if let Some(limit) = filter.limit {
                traces.truncate(limit);
            }
        }
        Ok(traces)
    }

    pub(super) fn trace_row(&self, id: TraceId) -> Result<Option<Trace>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {TRACE_COLUMNS} FROM traces WHERE trace_id = ?1"),
                [id.to_string()],
                read_trace_row,
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        row.map(|r| r.into_trace(&self.path)).transpose()
    }

    fn running_traces(&self) -> Result<Vec<Trace>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {TRACE_COLUMNS} FROM traces WHERE status = 'running'"
            ))
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], read_trace_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.into_iter().map(|r| r.into_trace(&self.path)).collect()
    }

    /// The spans of a trace without their events, by start time then insertion order.
    pub(super) fn spans(&self, id: TraceId) -> Result<Vec<Span>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT span_id, parent_id, kind, name, status, started_at, ended_at,
                        attributes, error
                 FROM spans WHERE trace_id = ?1 ORDER BY started_at, seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([id.to_string()], |r| {
                Ok(SpanRow {
                    span_id: r.get(0)?,
                    parent_id: r.get(1)?,
                    kind: r.get(2)?,
                    name: r.get(3)?,
                    status: r.get(4)?,
                    started_at: r.get(5)?,
                    ended_at: r.get(6)?,
                    attributes: r.get(7)?,
                    error: r.get(8)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        rows.into_iter()
            .map(|row| row.into_span(id, &self.path))
            .collect()
    }

    pub(super) fn attach_events(&self, id: TraceId, spans: &mut [Span]) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT span_id, name, time, attributes FROM events
                 WHERE trace_id = ?1 ORDER BY time, seq",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([id.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        attach_events(spans, rows);
        Ok(())
    }
}

/// Reads a row of [`TRACE_COLUMNS`].
pub(super) fn read_trace_row(r: &Row<'_>) -> rusqlite::Result<TraceRow> {
    Ok(TraceRow {
        trace_id: r.get(0)?,
        name: r.get(1)?,
        workflow: r.get(2)?,
        group_id: r.get(3)?,
        metadata: r.get(4)?,
        status: r.get(5)?,
        started_at: r.get(6)?,
        ended_at: r.get(7)?,
        tokens: [r.get(8)?, r.get(9)?, r.get(10)?],
        error: r.get(11)?,
        pid: r.get(12)?,
        cost_usd: r.get(13)?,
    })
}
