//! Reading traces back from PostgreSQL: resolving ids, loading one trace in tree order, and
//! listing. Every read first closes the runs that died without closing their trace (see
//! [`super::lock`]), as the SQLite backend's do.

use postgres::Row;
use postgres::types::ToSql;

use super::Store;
use crate::store::reference::{End, Matches};
use crate::store::rows::{SpanRow, TraceRow, attach_events, list_row, tree_order};
use crate::store::{ListFilter, StoreError};
use crate::trace::model::META_OFFLINE;
use crate::trace::{Span, Trace, TraceDoc, TraceId};

pub(super) const TRACE_COLUMNS: &str = "trace_id, name, workflow, group_id, metadata, status, \
                                        started_at, ended_at, input_tokens, output_tokens, \
                                        total_tokens, error, pid, cost_usd";

/// A dynamic list of query parameters.
pub(super) type Params = Vec<Box<dyn ToSql + Sync>>;

pub(super) fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

impl Store {
    /// The newest trace a `run` recorded (it has a writer pid), by start time.
    pub(crate) fn newest_run(&self) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.query_opt(
                "SELECT trace_id FROM traces WHERE pid IS NOT NULL
                 ORDER BY started_at DESC, seq DESC LIMIT 1",
                &[],
            )?
            .map(|r| r.try_get(0))
            .transpose()
        })
    }

    /// Whether the store holds any trace.
    pub(crate) fn has_traces(&self) -> Result<bool, StoreError> {
        self.read(|c| {
            c.query_one("SELECT EXISTS (SELECT 1 FROM traces)", &[])?
                .try_get(0)
        })
    }

    /// The trace ids whose `end` holds `key` (see [`End::key`]): how many, and the newest
    /// `limit`. A range of a btree index, never a scan (nor `LIKE`, whose `_` is a wildcard,
    /// which made the planner scan the whole table): the primary key for a head, the index on
    /// `reverse(trace_id)` (migration 3) for a tail; both collate "C", so every key with the
    /// digits sorts between them and them + `g`. `count(*) OVER ()` counts the whole range
    /// before the limit, in the same round trip.
    pub(crate) fn traces_matching(
        &self,
        end: End,
        key: &str,
        limit: usize,
    ) -> Result<Matches, StoreError> {
        let sql = match end {
            End::Head => {
                "SELECT trace_id, count(*) OVER () FROM traces
                 WHERE trace_id >= $1 AND trace_id < $1 || 'g'
                 ORDER BY started_at DESC, seq DESC LIMIT $2"
            }
            End::Tail => {
                "SELECT trace_id, count(*) OVER () FROM traces
                 WHERE reverse(trace_id) >= $1 AND reverse(trace_id) < $1 || 'g'
                 ORDER BY started_at DESC, seq DESC LIMIT $2"
            }
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|c| {
            c.query(sql, &[&key, &limit])?
                .iter()
                .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
                .collect::<Result<Vec<_>, postgres::Error>>()
        })?;
        Ok(Matches {
            total: rows
                .first()
                .map_or(0, |(_, n)| usize::try_from(*n).unwrap_or(usize::MAX)),
            newest: rows.into_iter().map(|(id, _)| id).collect(),
        })
    }

    /// One trace with its spans in tree order and each span's events in time order.
    pub fn load(&self, id: TraceId) -> Result<TraceDoc, StoreError> {
        let mut trace = self.trace_row(id)?.ok_or_else(|| StoreError::NotFound {
            id: id.to_string(),
            path: self.label(),
        })?;
        let mut spans = self.spans(id)?;
        if self.is_dead(&trace) && !self.close_dead(&mut trace, &mut spans) {
            // Its run closed it just now: what it wrote is the truth.
            trace = self.trace_row(id)?.unwrap_or(trace);
            spans = self.spans(id)?;
        }
        Ok(TraceDoc {
            trace,
            spans: tree_order(spans),
        })
    }

    /// Traces matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<Trace>, StoreError> {
        for mut trace in self.running_traces()? {
            if self.is_dead(&trace) {
                let mut spans = self.spans(trace.trace_id)?;
                self.close_dead(&mut trace, &mut spans);
            }
        }
        let mut sql = format!("SELECT {TRACE_COLUMNS} FROM traces WHERE true");
        let mut params: Params = Vec::new();
        let arg = |params: &mut Params, value: Box<dyn ToSql + Sync>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(group) = &filter.group {
            let n = arg(&mut params, Box::new(group.clone()));
            sql.push_str(&format!(" AND group_id = {n}"));
        }
        if let Some(workflow) = &filter.workflow {
            let n = arg(&mut params, Box::new(workflow.clone()));
            sql.push_str(&format!(" AND workflow = {n}"));
        }
        if let Some(status) = filter.status {
            let n = arg(&mut params, Box::new(status.as_str().to_string()));
            sql.push_str(&format!(" AND status = {n}"));
        }
        for (key, value) in &filter.meta {
            // Values compare as text: numbers as their decimal text, booleans as true/false,
            // as on SQLite.
            let k = arg(&mut params, Box::new(key.clone()));
            let v = arg(&mut params, Box::new(value.clone()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM jsonb_each(traces.metadata::jsonb) AS m \
                 WHERE m.key = {k} AND (CASE jsonb_typeof(m.value) WHEN 'string' \
                 THEN m.value #>> '{{}}' ELSE m.value::text END) = {v})"
            ));
        }
        if let Some(offline) = filter.offline {
            // Only a JSON `true` marks a trace offline, as on SQLite.
            let k = arg(&mut params, Box::new(META_OFFLINE.to_string()));
            let n = arg(&mut params, Box::new(offline));
            sql.push_str(&format!(
                " AND coalesce(traces.metadata::jsonb -> {k}::text = 'true'::jsonb, false) = {n}"
            ));
        }
        if let Some(since) = filter.since {
            let n = arg(&mut params, Box::new(since.micros()));
            sql.push_str(&format!(" AND started_at >= {n}"));
        }
        if let Some(until) = filter.until {
            let n = arg(&mut params, Box::new(until.micros()));
            sql.push_str(&format!(" AND started_at < {n}"));
        }
        if let Some(text) = filter.search.as_deref() {
            let queries = super::search::queries(text);
            let first = params.len() + 1;
            sql.push_str(&super::search::clause(queries.len(), first));
            for q in queries {
                params.push(Box::new(q));
            }
        }
        if let Some((at, id)) = filter.after {
            let a = arg(&mut params, Box::new(at.micros()));
            let i = arg(&mut params, Box::new(id.to_string()));
            sql.push_str(&format!(
                " AND (started_at < {a} OR (started_at = {a} AND trace_id < {i}))"
            ));
        }
        sql.push_str(" ORDER BY started_at DESC, trace_id DESC");
        if let Some(limit) = filter.limit {
            let n = arg(
                &mut params,
                Box::new(i64::try_from(limit).unwrap_or(i64::MAX)),
            );
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let rows = self.read(|c| c.query(&sql, &refs(&params)))?;
        let path = self.label();
        rows.iter()
            .map(|r| {
                read_trace_row(r)
                    .map_err(|e| self.sql(e))?
                    .into_trace(&path)
                    .map(list_row)
            })
            .collect()
    }

    pub(super) fn trace_row(&self, id: TraceId) -> Result<Option<Trace>, StoreError> {
        let row = self.read(|c| {
            c.query_opt(
                &format!("SELECT {TRACE_COLUMNS} FROM traces WHERE trace_id = $1"),
                &[&id.to_string()],
            )
        })?;
        row.map(|r| {
            read_trace_row(&r)
                .map_err(|e| self.sql(e))?
                .into_trace(&self.label())
        })
        .transpose()
    }

    /// The trace rows of `ids` that are still in the store.
    pub fn traces_by_id(&self, ids: &[TraceId]) -> Result<Vec<Trace>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = self.read(|c| {
            c.query(
                &format!("SELECT {TRACE_COLUMNS} FROM traces WHERE trace_id = ANY($1)"),
                &[&ids],
            )
        })?;
        let path = self.label();
        rows.iter()
            .map(|r| {
                read_trace_row(r)
                    .map_err(|e| self.sql(e))?
                    .into_trace(&path)
            })
            .collect()
    }

    fn running_traces(&self) -> Result<Vec<Trace>, StoreError> {
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "SELECT {TRACE_COLUMNS} FROM traces
                     WHERE status = 'running' AND pid IS NOT NULL"
                ),
                &[],
            )
        })?;
        let path = self.label();
        rows.iter()
            .map(|r| {
                read_trace_row(r)
                    .map_err(|e| self.sql(e))?
                    .into_trace(&path)
            })
            .collect()
    }

    /// The spans of a trace with their events, by start time then insertion order.
    pub(super) fn spans(&self, id: TraceId) -> Result<Vec<Span>, StoreError> {
        let key = id.to_string();
        let (span_rows, event_rows) = self.read(|c| {
            let spans = c.query(
                "SELECT span_id, parent_id, kind, name, status, started_at, ended_at,
                        attributes, error
                 FROM spans WHERE trace_id = $1 ORDER BY started_at, seq",
                &[&key],
            )?;
            let events = c.query(
                "SELECT span_id, name, time, attributes FROM events
                 WHERE trace_id = $1 ORDER BY time, seq",
                &[&key],
            )?;
            Ok((spans, events))
        })?;
        let path = self.label();
        let mut spans = span_rows
            .iter()
            .map(|r| {
                let row = SpanRow {
                    span_id: r.try_get(0).map_err(|e| self.sql(e))?,
                    parent_id: r.try_get(1).map_err(|e| self.sql(e))?,
                    kind: r.try_get(2).map_err(|e| self.sql(e))?,
                    name: r.try_get(3).map_err(|e| self.sql(e))?,
                    status: r.try_get(4).map_err(|e| self.sql(e))?,
                    started_at: r.try_get(5).map_err(|e| self.sql(e))?,
                    ended_at: r.try_get(6).map_err(|e| self.sql(e))?,
                    attributes: r.try_get(7).map_err(|e| self.sql(e))?,
                    error: r.try_get(8).map_err(|e| self.sql(e))?,
                };
                row.into_span(id, &path)
            })
            .collect::<Result<Vec<Span>, StoreError>>()?;
        let events = event_rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(|e| self.sql(e))?;
        attach_events(&mut spans, events);
        Ok(spans)
    }
}

/// Reads a row of [`TRACE_COLUMNS`].
pub(super) fn read_trace_row(r: &Row) -> Result<TraceRow, postgres::Error> {
    Ok(TraceRow {
        trace_id: r.try_get(0)?,
        name: r.try_get(1)?,
        workflow: r.try_get(2)?,
        group_id: r.try_get(3)?,
        metadata: r.try_get(4)?,
        status: r.try_get(5)?,
        started_at: r.try_get(6)?,
        ended_at: r.try_get(7)?,
        tokens: [r.try_get(8)?, r.try_get(9)?, r.try_get(10)?],
        error: r.try_get(11)?,
        pid: r.try_get(12)?,
        cost_usd: r.try_get(13)?,
    })
}
