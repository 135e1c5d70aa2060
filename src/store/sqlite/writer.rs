//! The SQLite side of the store writer ([`crate::store::StoreWriter`]): a batch of records in
//! one `BEGIN IMMEDIATE` transaction, search index included, and the claim of a joined trace id.

use rusqlite::{CachedStatement, Connection, Transaction, params};

use super::schema::index_spans_from;
use super::{Store, StoreError};
use crate::store::ExperimentRun;
use crate::store::writer::{Record, error_json, int, map_json, map_json_in};
use crate::trace::{Span, SpanId, Trace, TraceId};

impl Store {
    fn running_spans(
        &self,
    ) -> std::sync::MutexGuard<'_, foldhash::HashMap<(TraceId, SpanId), i64>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims `id` for a run about to start under a joined `TRACEPARENT`: writes a placeholder
    /// trace row owned by this process, unless the id is taken. Atomic, so that of several runs
    /// started at once under one parent exactly one gets the parent's trace id (the others
    /// start their own and link to it). Returns whether the id is now this run's.
    pub fn claim_trace_id(&self, id: TraceId, name: &str) -> Result<bool, StoreError> {
        // The run lock first: the placeholder row is a running trace, and must not look dead.
        if !self.hold_run(id) {
            return Ok(false);
        }
        let claimed = self.with_write_tx(|tx| {
            let inserted = tx.execute(
                "INSERT INTO traces (trace_id, name, workflow, status, started_at, pid)
                 VALUES (?1, ?2, ?2, 'running', ?3, ?4)
                 ON CONFLICT (trace_id) DO NOTHING",
                params![
                    id.to_string(),
                    name,
                    crate::trace::Timestamp::now().micros(),
                    std::process::id()
                ],
            )?;
            Ok(inserted == 1)
        });
        if !matches!(claimed, Ok(true)) {
            // Somebody else's trace (or none): its lock file is not ours to remove.
            self.drop_run(id);
        }
        claimed
    }

    /// Gives back a trace id this process claimed ([`Store::claim_trace_id`]) for a run that
    /// never started (its input was refused): the placeholder row goes, then the run lock, so
    /// that nothing half-written stays and a later run under the same parent can claim the id.
    pub fn release_trace_id(&self, id: TraceId) -> Result<(), StoreError> {
        let deleted = self.delete(&[id]);
        self.release_run(id);
        deleted.map(drop)
    }
}

impl Store {
    /// Writes `records` in one transaction (see [`crate::store::writer`]).
    pub(crate) fn write_records(&self, records: &[&Record]) -> Result<(), StoreError> {
        let mut running = self.running_spans();
        self.with_write_tx(|tx| write_records(tx, records.iter().copied(), &mut running))
    }

    /// The writer has been idle: copy the WAL into the database file. Passive: never waits for
    /// readers or other writers; what it cannot copy now is copied later.
    pub(crate) fn idle(&self) {
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// Writes `records`, then indexes the spans they touched for search, all at once. The search
/// index is made from the spans in memory ([`index_spans_from`]), not by SQLite parsing the
/// JSON just written. `running` holds the row of each span this writer wrote as it started:
/// its end updates that row by its `seq`, the cheapest write there is (an upsert with
/// `RETURNING` made SQLite open and fill a temporary table for every row).
fn write_records<'a>(
    tx: &Transaction<'_>,
    records: impl IntoIterator<Item = &'a Record>,
    running: &mut foldhash::HashMap<(TraceId, SpanId), i64>,
) -> rusqlite::Result<()> {
    let mut indexed: Vec<(i64, &Span)> = Vec::new();
    let mut fresh = foldhash::HashSet::default();
    let mut rows = SpanRows::new(tx);
    for record in records {
        match record {
            Record::Trace(trace) => write_trace(tx, trace)?,
            // A running span is found by its trace's name; its own name and content are
            // indexed once, when it ends.
            Record::SpanStarted(span) => {
                if let Some(seq) = rows.upsert(span)? {
                    running.insert((span.trace_id, span.span_id), seq);
                }
            }
            Record::SpanEnded(span) => {
                let row = running.remove(&(span.trace_id, span.span_id));
                let updated = match row {
                    Some(seq) => rows.update_ended(seq, span)?.then_some(seq),
                    None => None,
                };
                // Not written as it started (the writer held its start until it ended, or its
                // start's transaction rolled back): inserted now, or updated when it is there.
                let (seq, new) = match updated {
                    Some(seq) => (seq, true),
                    None => match rows.upsert(span)? {
                        Some(seq) => (seq, true),
                        None => (seq_of(tx, span)?, false),
                    },
                };
                indexed.push((seq, span));
                if new {
                    // A row this writer inserted (as the span started, or just now) has never
                    // been indexed (a running span is not) and has no events stored yet (they
                    // are written when it ends, once): nothing to delete first.
                    fresh.insert(seq);
                }
                if !new {
                    write_events(tx, span)?;
                } else if !span.events.is_empty() {
                    insert_events(tx, span)?;
                }
            }
            Record::Run(run) => write_run(tx, run)?,
        }
    }
    index_spans_from(tx, &indexed, &fresh)
}

/// The statements that write span rows, prepared once for a whole batch (looking one up in
/// rusqlite's cache hashes its SQL text, which cost a wide fan-out's writer more per span than
/// binding it did), and one buffer for the attributes' JSON.
pub(super) struct SpanRows<'a> {
    conn: &'a Connection,
    upsert: Option<CachedStatement<'a>>,
    update: Option<CachedStatement<'a>>,
    json: Vec<u8>,
}

impl<'a> SpanRows<'a> {
    pub(super) fn new(conn: &'a Connection) -> SpanRows<'a> {
        SpanRows {
            conn,
            upsert: None,
            update: None,
            json: Vec::new(),
        }
    }

    /// A span's row, inserted or (when it is there) updated; its `seq` when this inserted it.
    /// No `RETURNING`: SQLite fills a temporary table for it, which cost more than the write.
    pub(super) fn upsert(&mut self, s: &Span) -> rusqlite::Result<Option<i64>> {
        let stmt = prepared(
            &mut self.upsert,
            self.conn,
            "INSERT INTO spans (trace_id, span_id, parent_id, kind, name, status, started_at,
                                ended_at, attributes, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (trace_id, span_id) DO UPDATE SET
                 parent_id = excluded.parent_id, kind = excluded.kind, name = excluded.name,
                 status = excluded.status, started_at = excluded.started_at,
                 ended_at = excluded.ended_at, attributes = excluded.attributes,
                 error = excluded.error",
        )?;
        let before = self.conn.last_insert_rowid();
        stmt.execute(params![
            s.trace_id.text().as_str(),
            s.span_id.text().as_str(),
            s.parent_id.map(|p| p.text()).as_deref(),
            s.kind.as_str(),
            s.name,
            s.status.as_str(),
            s.started_at.micros(),
            s.ended_at.map(|e| e.micros()),
            map_json_in(&mut self.json, &s.attributes),
            error_json(s.error.as_ref()),
        ])?;
        // An upsert that updated leaves the last rowid as it was.
        let after = self.conn.last_insert_rowid();
        Ok((after != before).then_some(after))
    }

    /// The end of a span whose row is `seq`: what changes as a span runs (its trace, id,
    /// parent, kind and start do not). False when there is no such row.
    fn update_ended(&mut self, seq: i64, s: &Span) -> rusqlite::Result<bool> {
        let stmt = prepared(
            &mut self.update,
            self.conn,
            "UPDATE spans SET name = ?2, status = ?3, ended_at = ?4, attributes = ?5, error = ?6
             WHERE seq = ?1 AND trace_id = ?7 AND span_id = ?8",
        )?;
        let changed = stmt.execute(params![
            seq,
            s.name,
            s.status.as_str(),
            s.ended_at.map(|e| e.micros()),
            map_json_in(&mut self.json, &s.attributes),
            error_json(s.error.as_ref()),
            s.trace_id.text().as_str(),
            s.span_id.text().as_str(),
        ])?;
        Ok(changed == 1)
    }

    /// Inserts or updates a span row; returns its `seq` (looked up only when the row was
    /// there).
    pub(super) fn write(&mut self, s: &Span) -> rusqlite::Result<i64> {
        match self.upsert(s)? {
            Some(seq) => Ok(seq),
            None => seq_of(self.conn, s),
        }
    }
}

/// The statement in `slot`, prepared (from the connection's cache) the first time.
fn prepared<'s, 'a>(
    slot: &'s mut Option<CachedStatement<'a>>,
    conn: &'a Connection,
    sql: &str,
) -> rusqlite::Result<&'s mut CachedStatement<'a>> {
    if slot.is_none() {
        *slot = Some(conn.prepare_cached(sql)?);
    }
    slot.as_mut().ok_or(rusqlite::Error::InvalidQuery)
}

pub(super) fn write_trace(tx: &Transaction<'_>, t: &Trace) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO traces (trace_id, name, workflow, group_id, metadata, status, started_at,
                             ended_at, input_tokens, output_tokens, total_tokens, error, pid,
                             cost_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (trace_id) DO UPDATE SET
             name = excluded.name, workflow = excluded.workflow, group_id = excluded.group_id,
             metadata = excluded.metadata, status = excluded.status,
             started_at = excluded.started_at, ended_at = excluded.ended_at,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
             total_tokens = excluded.total_tokens, error = excluded.error,
             pid = coalesce(excluded.pid, traces.pid), cost_usd = excluded.cost_usd",
    )?;
    stmt.execute(params![
        t.trace_id.to_string(),
        t.name,
        t.workflow,
        t.group_id,
        map_json(&t.metadata),
        t.status.as_str(),
        t.started_at.micros(),
        t.ended_at.map(|e| e.micros()),
        int(t.usage.input_tokens),
        int(t.usage.output_tokens),
        int(t.usage.total_tokens),
        error_json(t.error.as_ref()),
        t.pid,
        t.cost_usd,
    ])?;
    Ok(())
}

/// The `seq` of the row of `s`, which is there.
fn seq_of(conn: &Connection, s: &Span) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT seq FROM spans WHERE trace_id = ?1 AND span_id = ?2")?
        .query_row(
            params![s.trace_id.text().as_str(), s.span_id.text().as_str()],
            |row| row.get(0),
        )
}

/// Replaces the events stored for `s` with its own.
pub(super) fn write_events(tx: &Transaction<'_>, s: &Span) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM events WHERE trace_id = ?1 AND span_id = ?2")?
        .execute(params![
            s.trace_id.text().as_str(),
            s.span_id.text().as_str()
        ])?;
    insert_events(tx, s)
}

/// Stores the events of `s`, which has none stored yet.
fn insert_events(tx: &Transaction<'_>, s: &Span) -> rusqlite::Result<()> {
    let trace_id = s.trace_id.text();
    let span_id = s.span_id.text();
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (trace_id, span_id, name, time, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for event in &s.events {
        insert.execute(params![
            trace_id.as_str(),
            span_id.as_str(),
            event.name,
            event.time.micros(),
            map_json(&event.attributes),
        ])?;
    }
    Ok(())
}

/// Writes one run row (in the writer's transaction or a command's own).
pub(super) fn write_run(tx: &Transaction<'_>, run: &ExperimentRun) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO experiment_runs (experiment_id, case_id, attempt, trace_id)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (experiment_id, case_id, attempt) DO UPDATE SET trace_id = excluded.trace_id",
    )?
    .execute(params![
        run.experiment,
        run.case_id,
        run.attempt,
        run.trace_id.to_string()
    ])?;
    Ok(())
}
