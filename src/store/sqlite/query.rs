//! Reading traces back: resolving what the user typed to a trace id, loading one trace in tree
//! order, and listing traces. Every read first closes the runs that died without closing their
//! trace (see [`super::reconcile`]).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{OptionalExtension, Row, params, params_from_iter, types::Value as SqlValue};
use serde_json::{Map, Value};

use super::lock::Liveness;
use super::reconcile::Reconciled;
use super::{ListFilter, Store, StoreError};
use crate::store::rows::{list_row, tree_order};
use crate::trace::{
    ErrorInfo, Event, Span, SpanId, SpanKind, Status, Timestamp, Trace, TraceDoc, TraceId, Usage,
};

pub(super) const TRACE_COLUMNS: &str = "trace_id, name, workflow, group_id, metadata, status, started_at, \
                             ended_at, input_tokens, output_tokens, total_tokens, error, pid, \
                             cost_usd";

/// The most candidates an ambiguous prefix lists.
const CANDIDATES: usize = 5;
/// The shortest prefix `resolve` accepts, in hex digits.
const MIN_PREFIX: usize = 4;

impl Store {
    /// The trace `reference` names (as [`Store::resolve`] reads it), with its spans.
    pub fn find(&self, reference: &str) -> Result<TraceDoc, StoreError> {
        self.load(self.resolve(reference)?)
    }

    /// Resolves `last`, a full trace id, or a unique prefix of one (with or without `trace_`,
    /// at least 4 hex digits).
    ///
    /// `last` is the newest trace by start time that a `run` recorded (it has a writer pid);
    /// traces sent to `serve` never are. Anyone who can reach an ingest route picks its trace's
    /// times, and `run --replay last` runs the tool calls of the model answers it holds.
    pub fn resolve(&self, id: &str) -> Result<TraceId, StoreError> {
        let id = id.trim();
        if id == "last" {
            let newest: Option<String> = self
                .conn
                .query_row(
                    "SELECT trace_id FROM traces WHERE pid IS NOT NULL
                     ORDER BY started_at DESC, rowid DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.sql(e))?;
            if let Some(text) = newest {
                return parse_trace_id(&self.path, &text);
            }
            let any: bool = self
                .conn
                .query_row("SELECT EXISTS (SELECT 1 FROM traces)", [], |r| r.get(0))
                .map_err(|e| self.sql(e))?;
            let path = self.path.clone();
            return Err(if any {
                StoreError::NoRuns { path }
            } else {
                StoreError::NoTraces { path }
            });
        }
        let digits = id.strip_prefix("trace_").unwrap_or(id).to_ascii_lowercase();
        if digits.len() < MIN_PREFIX
            || digits.len() > 32
            || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(StoreError::BadId { id: id.to_string() });
        }
        let not_found = || StoreError::NotFound {
            id: id.to_string(),
            path: self.path.clone(),
        };
        if digits.len() == 32 {
            let trace_id = TraceId::parse(&digits).ok_or_else(not_found)?;
            let exists: bool = self
                .conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM traces WHERE trace_id = ?1)",
                    [trace_id.to_string()],
                    |r| r.get(0),
                )
                .map_err(|e| self.sql(e))?;
            return if exists {
                Ok(trace_id)
            } else {
                Err(not_found())
            };
        }
        // The digits are hex only, so they cannot carry GLOB metacharacters.
        let pattern = format!("trace_{digits}*");
        let total: usize = self
            .conn
            .query_row(
                "SELECT count(*) FROM traces WHERE trace_id GLOB ?1",
                [&pattern],
                |r| r.get(0),
            )
            .map_err(|e| self.sql(e))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT trace_id FROM traces WHERE trace_id GLOB ?1
                 ORDER BY started_at DESC, rowid DESC LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let candidates = stmt
            .query_map(params![pattern, CANDIDATES as i64], |r| {
                r.get::<_, String>(0)
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        match (total, candidates.first()) {
            (0, _) | (_, None) => Err(not_found()),
            (1, Some(only)) => parse_trace_id(&self.path, only),
            _ => Err(StoreError::Ambiguous {
                prefix: id.to_string(),
                candidates,
                total,
            }),
        }
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

    /// The shortest prefix of `id` (at least `min` hex digits, as `trace_<digits>`) that
    /// `resolve` maps to `id` alone in this store: what a narrow table shows.
    pub fn short_id(&self, id: TraceId, min: usize) -> Result<String, StoreError> {
        let full = id.to_string();
        for digits in min.clamp(MIN_PREFIX, 32)..32 {
            let prefix = &full[..6 + digits];
            let n: i64 = self
                .conn
                .prepare_cached(
                    "SELECT count(*) FROM (SELECT 1 FROM traces
                     WHERE trace_id >= ?1 AND trace_id < ?1 || 'g' LIMIT 2)",
                )
                .and_then(|mut stmt| stmt.query_row([prefix], |r| r.get(0)))
                .map_err(|e| self.sql(e))?;
            if n <= 1 {
                return Ok(prefix.to_string());
            }
        }
        Ok(full)
    }

    /// The traces of one conversation (group id), in start order; an unknown group is
    /// [`StoreError::NotFound`].
    pub fn load_group(&self, group: &str) -> Result<Vec<TraceDoc>, StoreError> {
        let filter = ListFilter {
            group: Some(group.to_string()),
            ..ListFilter::default()
        };
        let mut traces = self.list(&filter)?;
        if traces.is_empty() {
            return Err(StoreError::NotFound {
                id: format!("group {group}"),
                path: self.path.clone(),
            });
        }
        traces.sort_by_key(|t| t.started_at);
        traces.iter().map(|t| self.load(t.trace_id)).collect()
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
                Ok(TraceRow::read(r)?.into_trace(&self.path).map(list_row))
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
                TraceRow::read,
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
            .query_map([], TraceRow::read)
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
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let malformed = |detail: String| StoreError::Malformed {
            path: self.path.clone(),
            what: "span",
            detail,
        };
        rows.into_iter()
            .map(
                |(span_id, parent, kind, name, status, started, ended, attrs, error)| {
                    Ok(Span {
                        span_id: SpanId::parse(&span_id)
                            .ok_or_else(|| malformed(format!("bad span id {span_id:?}")))?,
                        trace_id: id,
                        // An unreadable parent id makes the span an orphan, not an error.
                        parent_id: parent.as_deref().and_then(SpanId::parse),
                        kind: SpanKind::parse(&kind)
                            .ok_or_else(|| malformed(format!("unknown span kind {kind:?}")))?,
                        name,
                        status: Status::parse(&status)
                            .ok_or_else(|| malformed(format!("unknown status {status:?}")))?,
                        started_at: Timestamp(started),
                        ended_at: ended.map(Timestamp),
                        attributes: json_map(attrs.as_deref()),
                        events: Vec::new(),
                        error: json_error(error.as_deref()),
                    })
                },
            )
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
        let index: HashMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        for (span_id, name, time, attrs) in rows {
            if let Some(&i) = SpanId::parse(&span_id).and_then(|s| index.get(&s))
                && let Some(span) = spans.get_mut(i)
            {
                span.events.push(Event {
                    name,
                    time: Timestamp(time),
                    attributes: json_map(attrs.as_deref()),
                });
            }
        }
        Ok(())
    }
}

/// A trace row as SQLite returns it, before its text is checked.
pub(super) struct TraceRow {
    trace_id: String,
    name: String,
    workflow: String,
    group_id: Option<String>,
    metadata: Option<String>,
    status: String,
    started_at: i64,
    ended_at: Option<i64>,
    tokens: [i64; 3],
    error: Option<String>,
    pid: Option<i64>,
    cost_usd: Option<f64>,
}

impl TraceRow {
    pub(super) fn read(r: &Row<'_>) -> rusqlite::Result<TraceRow> {
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

    pub(super) fn into_trace(self, path: &Path) -> Result<Trace, StoreError> {
        let [input, output, total] = self.tokens.map(|n| u64::try_from(n).unwrap_or(0));
        Ok(Trace {
            trace_id: parse_trace_id(path, &self.trace_id)?,
            name: self.name,
            workflow: self.workflow,
            group_id: self.group_id,
            metadata: json_map(self.metadata.as_deref()),
            status: Status::parse(&self.status).ok_or_else(|| StoreError::Malformed {
                path: path.to_path_buf(),
                what: "trace",
                detail: format!("unknown status {:?}", self.status),
            })?,
            started_at: Timestamp(self.started_at),
            ended_at: self.ended_at.map(Timestamp),
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: total,
            },
            cost_usd: self.cost_usd,
            error: json_error(self.error.as_deref()),
            pid: self.pid.and_then(|p| u32::try_from(p).ok()),
        })
    }
}

fn parse_trace_id(path: &Path, text: &str) -> Result<TraceId, StoreError> {
    TraceId::parse(text).ok_or_else(|| StoreError::Malformed {
        path: path.to_path_buf(),
        what: "trace",
        detail: format!("bad trace id {text:?}"),
    })
}

/// A JSON object column; anything unreadable becomes an empty object rather than hiding the
/// whole trace.
pub(super) fn json_map(text: Option<&str>) -> Map<String, Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// An error column: `{"message", "data"}`, or for anything else the raw text as the message.
fn json_error(text: Option<&str>) -> Option<ErrorInfo> {
    let text = text?;
    Some(serde_json::from_str(text).unwrap_or_else(|_| ErrorInfo::new(text)))
}
