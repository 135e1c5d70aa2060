//! What `agentrace store copy` and `agentrace merge` need of a store, on either side: every
//! trace id in pages, a trace's fingerprint (status and counts) to tell what the other side
//! already holds, whole traces read as they are stored (no dead run is closed on the way, so
//! that a copy never writes to its source) and written back under their own ids, and the same
//! for conversations and experiments. The copying itself is backend-neutral
//! ([`crate::store::copy`]); these are the methods a second backend provides too.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::experiment::{id_list, insert_experiment};
use super::schema::index_spans;
use super::writer::{SpanRows, write_events, write_run, write_trace};
use super::{Store, StoreError};
use crate::store::experiment::EXPERIMENT_PREFIX;
use crate::store::{Experiment, ExperimentRun, SessionRow, TraceFingerprint};
use crate::trace::score::EVALUATION_EVENT;
use crate::trace::{Status, Timestamp, TraceDoc, TraceId};

impl Store {
    /// Up to `limit` trace ids after `after` (all from the start without it), in id order: a
    /// keyset page, so that traces added or removed meanwhile never make a page skip or repeat.
    pub fn trace_ids_after(
        &self,
        after: Option<TraceId>,
        limit: usize,
    ) -> Result<Vec<TraceId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT trace_id FROM traces WHERE trace_id > ?1 ORDER BY trace_id LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let after = after.map(|t| t.to_string()).unwrap_or_default();
        let rows = stmt
            .query_map(
                params![after, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| r.get::<_, String>(0),
            )
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        Ok(rows.iter().filter_map(|t| TraceId::parse(t)).collect())
    }

    /// What this store holds of each of `ids` (those it does not hold have no entry), in a
    /// few statements whatever their number.
    pub fn trace_fingerprints(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, TraceFingerprint>, StoreError> {
        let list = id_list(ids);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.trace_id, t.status,
                        (SELECT count(*) FROM spans s WHERE s.trace_id = t.trace_id),
                        (SELECT count(*) FROM events e WHERE e.trace_id = t.trace_id),
                        (SELECT count(*) FROM events e WHERE e.trace_id = t.trace_id
                                                         AND e.name = ?2)
                 FROM traces t WHERE t.trace_id IN (SELECT value FROM json_each(?1))",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![list, EVALUATION_EVENT], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(rows
            .into_iter()
            .filter_map(|(id, status, spans, events, scores)| {
                Some((
                    TraceId::parse(&id)?,
                    TraceFingerprint {
                        status: Status::parse(&status)?,
                        spans: count(spans),
                        events: count(events),
                        scores: count(scores),
                    },
                ))
            })
            .collect())
    }

    /// The traces `ids` with their spans and events exactly as stored: a running trace stays
    /// running (unlike [`Store::load`], nothing is closed, and nothing is written). Those this
    /// store does not hold are left out.
    pub fn export_traces(&self, ids: &[TraceId]) -> Result<Vec<TraceDoc>, StoreError> {
        let mut docs = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(trace) = self.trace_row(id)? else {
                continue;
            };
            let mut spans = self.spans(id)?;
            self.attach_events(id, &mut spans)?;
            docs.push(TraceDoc { trace, spans });
        }
        Ok(docs)
    }

    /// Writes whole traces from another store under their own ids, in one transaction: a
    /// trace this store holds already is left alone unless it is `running` here (it was
    /// copied while its run went on), in which case it is replaced by `docs`' version. A
    /// running trace keeps no pid: its run lives on the other store's machine, and no reader
    /// here may close it as dead. Returns how many traces were written.
    pub fn import_traces(&self, docs: &[TraceDoc]) -> Result<usize, StoreError> {
        self.with_write_tx(|tx| {
            let mut written = 0;
            let mut seqs = Vec::new();
            let mut rows = SpanRows::new(tx);
            for doc in docs {
                let id = doc.trace.trace_id.to_string();
                let there: Option<String> = tx
                    .prepare_cached("SELECT status FROM traces WHERE trace_id = ?1")?
                    .query_row([&id], |r| r.get(0))
                    .optional()?;
                match there.as_deref() {
                    None => {}
                    Some(s) if s == Status::Running.as_str() => {
                        tx.prepare_cached("DELETE FROM traces WHERE trace_id = ?1")?
                            .execute([&id])?;
                    }
                    Some(_) => continue,
                }
                let mut trace = doc.trace.clone();
                if trace.status == Status::Running {
                    trace.pid = None;
                }
                write_trace(tx, &trace)?;
                for span in &doc.spans {
                    seqs.push(rows.write(span)?);
                    write_events(tx, span)?;
                }
                written += 1;
            }
            index_spans(tx, &seqs)?;
            Ok(written)
        })
    }

    /// Up to `limit` conversation messages after `(session, seq)` `after`, in that order.
    pub fn session_rows_after(
        &self,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let (session, seq) = after.unwrap_or(("", i64::MIN));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT session, seq, trace_id, message, created_at FROM session_messages
                 WHERE session > ?1 OR (session = ?1 AND seq > ?2)
                 ORDER BY session, seq LIMIT ?3",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map(
            params![session, seq, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(SessionRow {
                    session: r.get(0)?,
                    seq: r.get(1)?,
                    trace_id: r.get(2)?,
                    message: r.get(3)?,
                    created_at: Timestamp(r.get(4)?),
                })
            },
        )
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.sql(e))
    }

    /// Writes conversation messages from another store, in one transaction. A message is
    /// there already when its session holds one said by the same trace at the same time with
    /// the same text (whatever its place); otherwise it goes at its own place if that is free,
    /// else after the session's last (two stores that both added to one session keep both).
    /// Returns how many were written.
    pub fn import_session_rows(&self, rows: &[SessionRow]) -> Result<usize, StoreError> {
        self.with_write_tx(|tx| {
            let mut written = 0;
            for row in rows {
                let there: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM session_messages WHERE session = ?1
                         AND trace_id = ?2 AND created_at = ?3 AND message = ?4)",
                    )?
                    .query_row(
                        params![
                            row.session,
                            row.trace_id,
                            row.created_at.micros(),
                            row.message
                        ],
                        |r| r.get(0),
                    )?;
                if there {
                    continue;
                }
                let taken: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM session_messages
                         WHERE session = ?1 AND seq = ?2)",
                    )?
                    .query_row(params![row.session, row.seq], |r| r.get(0))?;
                let seq = if taken {
                    tx.prepare_cached(
                        "SELECT coalesce(max(seq), 0) + 1 FROM session_messages
                         WHERE session = ?1",
                    )?
                    .query_row([&row.session], |r| r.get(0))?
                } else {
                    row.seq
                };
                tx.prepare_cached(
                    "INSERT INTO session_messages (session, seq, trace_id, message, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    row.session,
                    seq,
                    row.trace_id,
                    row.message,
                    row.created_at.micros()
                ])?;
                written += 1;
            }
            Ok(written)
        })
    }

    /// Records an experiment from another store as it is, unless one of its id is here.
    /// Whether it was written.
    pub fn import_experiment(&self, e: &Experiment) -> Result<bool, StoreError> {
        debug_assert!(e.id.starts_with(EXPERIMENT_PREFIX));
        self.with_write_tx(|tx| insert_experiment(tx, e, "ON CONFLICT (experiment_id) DO NOTHING"))
            .map(|n| n == 1)
    }

    /// Records runs from another store, in one transaction; a run of a `(case, attempt)` the
    /// experiment has here already is left alone. Returns how many were written.
    pub fn import_runs(&self, runs: &[ExperimentRun]) -> Result<usize, StoreError> {
        self.with_write_tx(|tx| {
            let mut written = 0;
            for run in runs {
                let there: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM experiment_runs WHERE experiment_id = ?1
                         AND case_id = ?2 AND attempt = ?3)",
                    )?
                    .query_row(params![run.experiment, run.case_id, run.attempt], |r| {
                        r.get(0)
                    })?;
                if !there {
                    write_run(tx, run)?;
                    written += 1;
                }
            }
            Ok(written)
        })
    }
}
