//! What `store copy` and `merge` need of a PostgreSQL store (the same methods as SQLite's
//! `copy.rs`, which says what each promises): trace ids in keyset pages, fingerprints, whole
//! traces as stored, and writes of traces, conversations, experiments and runs from another
//! store under their own ids.

use std::collections::HashMap;

use super::Store;
use super::write::{write_run, write_spans, write_trace};
use crate::store::{Experiment, ExperimentRun, SessionRow, StoreError, TraceFingerprint};
use crate::trace::score::EVALUATION_EVENT;
use crate::trace::{Status, Timestamp, TraceDoc, TraceId};

impl Store {
    /// Up to `limit` trace ids after `after`, in id order.
    pub fn trace_ids_after(
        &self,
        after: Option<TraceId>,
        limit: usize,
    ) -> Result<Vec<TraceId>, StoreError> {
        let after = after.map(|t| t.to_string()).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|c| {
            c.query(
                "SELECT trace_id FROM traces WHERE trace_id > $1 ORDER BY trace_id LIMIT $2",
                &[&after, &limit],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .filter_map(|t| TraceId::parse(&t))
            .collect())
    }

    /// What this store holds of each of `ids`.
    pub fn trace_fingerprints(
        &self,
        ids: &[TraceId],
    ) -> Result<HashMap<TraceId, TraceFingerprint>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let rows = self.read(|c| {
            c.query(
                "SELECT t.trace_id, t.status,
                        (SELECT count(*) FROM spans s WHERE s.trace_id = t.trace_id),
                        (SELECT count(*) FROM events e WHERE e.trace_id = t.trace_id),
                        (SELECT count(*) FROM events e WHERE e.trace_id = t.trace_id
                                                         AND e.name = $2)
                 FROM traces t WHERE t.trace_id = ANY($1)",
                &[&ids, &EVALUATION_EVENT],
            )
        })?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: String = r.try_get(0).ok()?;
                let status: String = r.try_get(1).ok()?;
                Some((
                    TraceId::parse(&id)?,
                    TraceFingerprint {
                        status: Status::parse(&status)?,
                        spans: count(r.try_get(2).ok()?),
                        events: count(r.try_get(3).ok()?),
                        scores: count(r.try_get(4).ok()?),
                    },
                ))
            })
            .collect())
    }

    /// The traces `ids` with their spans and events exactly as stored (nothing closed).
    pub fn export_traces(&self, ids: &[TraceId]) -> Result<Vec<TraceDoc>, StoreError> {
        let mut docs = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(trace) = self.trace_row(id)? else {
                continue;
            };
            let spans = self.spans(id)?;
            docs.push(TraceDoc { trace, spans });
        }
        Ok(docs)
    }

    /// Writes whole traces from another store under their own ids, in one transaction (a
    /// trace held here is left alone unless it is `running` here). Returns how many.
    pub fn import_traces(&self, docs: &[TraceDoc]) -> Result<usize, StoreError> {
        self.with_write_tx(|tx| {
            let mut written = 0;
            for doc in docs {
                let id = doc.trace.trace_id.to_string();
                let there =
                    tx.query_opt("SELECT status FROM traces WHERE trace_id = $1", &[&id])?;
                match there.map(|r| r.try_get::<_, String>(0)).transpose()? {
                    None => {}
                    Some(s) if s == Status::Running.as_str() => {
                        tx.execute("DELETE FROM traces WHERE trace_id = $1", &[&id])?;
                    }
                    Some(_) => continue,
                }
                let mut trace = doc.trace.clone();
                if trace.status == Status::Running {
                    trace.pid = None;
                }
                write_trace(tx, &trace)?;
                let spans: Vec<_> = doc.spans.iter().map(|s| (s, true)).collect();
                write_spans(tx, &spans)?;
                written += 1;
            }
            Ok(written)
        })
    }

    /// Up to `limit` conversation messages after `(session, seq)`, in that order.
    pub fn session_rows_after(
        &self,
        after: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let (session, seq) = after.unwrap_or(("", i64::MIN));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|c| {
            c.query(
                "SELECT session, seq, trace_id, message, created_at FROM session_messages
                 WHERE session COLLATE \"C\" > $1 OR (session = $1 AND seq > $2)
                 ORDER BY session COLLATE \"C\", seq LIMIT $3",
                &[&session, &seq, &limit],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok(SessionRow {
                    session: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    trace_id: r.try_get(2)?,
                    message: r.try_get(3)?,
                    created_at: Timestamp(r.try_get(4)?),
                })
            })
            .collect::<Result<Vec<_>, postgres::Error>>()
            .map_err(|e| self.sql(e))
    }

    /// Writes conversation messages from another store (see SQLite's `import_session_rows`).
    pub fn import_session_rows(&self, rows: &[SessionRow]) -> Result<usize, StoreError> {
        self.with_write_tx(|tx| {
            let mut written = 0;
            for row in rows {
                let created = row.created_at.micros();
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&row.session],
                )?;
                let there: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM session_messages WHERE session = $1
                         AND trace_id = $2 AND created_at = $3 AND message = $4)",
                        &[&row.session, &row.trace_id, &created, &row.message],
                    )?
                    .try_get(0)?;
                if there {
                    continue;
                }
                let taken: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM session_messages
                         WHERE session = $1 AND seq = $2)",
                        &[&row.session, &row.seq],
                    )?
                    .try_get(0)?;
                let seq: i64 = if taken {
                    tx.query_one(
                        "SELECT coalesce(max(seq), 0) + 1 FROM session_messages
                         WHERE session = $1",
                        &[&row.session],
                    )?
                    .try_get(0)?
                } else {
                    row.seq
                };
                tx.execute(
                    "INSERT INTO session_messages (session, seq, trace_id, message, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&row.session, &seq, &row.trace_id, &row.message, &created],
                )?;
                written += 1;
            }
            Ok(written)
        })
    }

    /// Records an experiment from another store as it is, unless one of its id is here.
    pub fn import_experiment(&self, e: &Experiment) -> Result<bool, StoreError> {
        self.with_write_tx(|tx| {
            super::experiment::insert_experiment(tx, e, "ON CONFLICT (experiment_id) DO NOTHING")
        })
        .map(|n| n == 1)
    }

    /// Records runs from another store; a run of a `(case, attempt)` held here is left alone.
    pub fn import_runs(&self, runs: &[ExperimentRun]) -> Result<usize, StoreError> {
        self.with_write_tx(|tx| {
            let mut written = 0;
            for run in runs {
                let there: bool = tx
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM experiment_runs WHERE experiment_id = $1
                         AND case_id = $2 AND attempt = $3)",
                        &[&run.experiment, &run.case_id, &i64::from(run.attempt)],
                    )?
                    .try_get(0)?;
                if !there {
                    write_run(tx, run)?;
                    written += 1;
                }
            }
            Ok(written)
        })
    }
}
