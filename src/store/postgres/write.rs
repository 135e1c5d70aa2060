//! Writing to PostgreSQL: a run's records (the writer thread's batches), the claim of a joined
//! trace id, `rm` and `prune`, scores added after a run, and session messages. Upserts are
//! `INSERT … ON CONFLICT … DO UPDATE` on the same keys as SQLite's, so a span written twice
//! (started, then ended; an ingest retried) is one row.

use std::collections::HashMap;

use postgres::Transaction;

use super::Store;
use super::search::{span_words, words};
use crate::llm::Message;
use crate::store::writer::{Record, error_json, int, map_json};
use crate::store::{ExperimentRun, StoreError};
use crate::trace::score::EVALUATION_EVENT;
use crate::trace::{Score, Span, SpanId, Timestamp, Trace, TraceId};

impl Store {
    /// Writes a batch of a run's records in one transaction.
    pub(crate) fn write_records(&self, records: &[&Record]) -> Result<(), StoreError> {
        self.with_write_tx(|tx| {
            // Traces first (in order: the last state of each wins), then every span in one
            // statement (a span's trace row must exist), then the runs (after their traces).
            let mut spans = Vec::new();
            for record in records {
                match record {
                    Record::Trace(trace) => write_trace(tx, trace)?,
                    Record::SpanStarted(span) => spans.push((&**span, false)),
                    Record::SpanEnded(span) => spans.push((&**span, true)),
                    Record::Run(_) => {}
                }
            }
            write_spans(tx, &spans)?;
            for record in records {
                if let Record::Run(run) = record {
                    write_run(tx, run)?;
                }
            }
            Ok(())
        })
    }

    /// Claims `id` for a run about to start under a joined `TRACEPARENT`: its run lock, then a
    /// placeholder row, unless the id is taken (atomic: of several runs under one parent exactly
    /// one gets it). Returns whether the id is now this run's.
    pub fn claim_trace_id(&self, id: TraceId, name: &str) -> Result<bool, StoreError> {
        if !self.hold_run(id) {
            return Ok(false);
        }
        let key = id.to_string();
        let now = Timestamp::now().micros();
        let pid = i64::from(std::process::id());
        let words = words([name]);
        let claimed = self.with_write_tx(|tx| {
            let inserted = tx.execute(
                "INSERT INTO traces (trace_id, name, workflow, status, started_at, pid, search)
                 VALUES ($1, $2, $2, 'running', $3, $4, array_to_tsvector($5::text[]))
                 ON CONFLICT (trace_id) DO NOTHING",
                &[&key, &name, &now, &pid, &words],
            )?;
            Ok(inserted == 1)
        });
        if !matches!(claimed, Ok(true)) {
            self.release_run(id);
        }
        claimed
    }

    /// Gives back a claimed trace id whose run never started: the placeholder row goes, then
    /// the run lock.
    pub fn release_trace_id(&self, id: TraceId) -> Result<(), StoreError> {
        let deleted = self.delete(&[id]);
        self.release_run(id);
        deleted.map(drop)
    }

    /// Deletes traces with their spans and events (by cascade), all or nothing.
    pub fn delete(&self, ids: &[TraceId]) -> Result<usize, StoreError> {
        self.delete_traces(ids, "")
    }

    /// Deletes the finished traces among `ids`; a running one is left alone.
    pub fn prune(&self, ids: &[TraceId]) -> Result<usize, StoreError> {
        self.delete_traces(ids, " AND status <> 'running'")
    }

    fn delete_traces(&self, ids: &[TraceId], guard: &str) -> Result<usize, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let sql = format!("DELETE FROM traces WHERE trace_id = ANY($1){guard}");
        self.with_write_tx(|tx| tx.execute(&sql, &[&ids]))
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Adds a score to a stored span, replacing an earlier one of the same name and source.
    pub fn add_score(&self, trace: TraceId, span: SpanId, score: &Score) -> Result<(), StoreError> {
        let event = score.to_event(Timestamp::now());
        let (trace, span) = (trace.to_string(), span.to_string());
        let attributes = map_json(&event.attributes);
        let words = words([event.name.as_str()]);
        self.with_write_tx(|tx| {
            tx.execute(
                "DELETE FROM events WHERE trace_id = $1 AND span_id = $2 AND name = $3
                   AND attributes::jsonb ->> 'gen_ai.evaluation.name' = $4
                   AND attributes::jsonb ->> 'agentrace.evaluation.source' = $5",
                &[
                    &trace,
                    &span,
                    &EVALUATION_EVENT,
                    &score.name,
                    &score.source.as_str(),
                ],
            )?;
            tx.execute(
                "INSERT INTO events (trace_id, span_id, name, time, attributes, search)
                 VALUES ($1, $2, $3, $4, $5, array_to_tsvector($6::text[]))",
                &[
                    &trace,
                    &span,
                    &event.name,
                    &event.time.micros(),
                    &attributes,
                    &words,
                ],
            )?;
            Ok(())
        })
    }

    /// The messages of a session written before `before` (all of them when `None`).
    pub fn session_messages_before(
        &self,
        session: &str,
        before: Option<Timestamp>,
    ) -> Result<Vec<Message>, StoreError> {
        let before = before.map_or(i64::MAX, |t| t.micros());
        let rows = self.read(|c| {
            c.query(
                "SELECT message FROM session_messages WHERE session = $1 AND created_at < $2
                 ORDER BY seq",
                &[&session, &before],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, String>(0).ok())
            .filter_map(|text| serde_json::from_str::<Message>(&text).ok())
            .collect())
    }

    /// Appends a run's new messages to a session. Two runs of one session at once take turns
    /// (a transaction-scoped advisory lock on the session), so their numbers never collide.
    pub fn append_session(
        &self,
        session: &str,
        trace_id: TraceId,
        messages: &[Message],
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().micros();
        let encoded: Vec<String> = messages
            .iter()
            .map(|m| serde_json::to_string(m).unwrap_or_default())
            .collect();
        let trace = trace_id.to_string();
        self.with_write_tx(|tx| {
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                &[&session],
            )?;
            let next: i64 = tx
                .query_one(
                    "SELECT coalesce(max(seq), 0) + 1 FROM session_messages WHERE session = $1",
                    &[&session],
                )?
                .try_get(0)?;
            for (i, text) in encoded.iter().enumerate() {
                let seq = next + i64::try_from(i).unwrap_or(i64::MAX);
                tx.execute(
                    "INSERT INTO session_messages (session, seq, trace_id, message, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&session, &seq, &trace, text, &now],
                )?;
            }
            Ok(())
        })
    }
}

pub(super) fn write_trace(tx: &mut Transaction<'_>, t: &Trace) -> Result<(), postgres::Error> {
    let words = words([t.name.as_str(), t.workflow.as_str()]);
    tx.execute(
        "INSERT INTO traces (trace_id, name, workflow, group_id, metadata, status, started_at,
                             ended_at, input_tokens, output_tokens, total_tokens, error, pid,
                             cost_usd, search)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 array_to_tsvector($15::text[]))
         ON CONFLICT (trace_id) DO UPDATE SET
             name = excluded.name, workflow = excluded.workflow, group_id = excluded.group_id,
             metadata = excluded.metadata, status = excluded.status,
             started_at = excluded.started_at, ended_at = excluded.ended_at,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
             total_tokens = excluded.total_tokens, error = excluded.error,
             pid = coalesce(excluded.pid, traces.pid), cost_usd = excluded.cost_usd,
             search = excluded.search",
        &[
            &t.trace_id.to_string(),
            &t.name,
            &t.workflow,
            &t.group_id,
            &map_json(&t.metadata),
            &t.status.as_str(),
            &t.started_at.micros(),
            &t.ended_at.map(Timestamp::micros),
            &int(t.usage.input_tokens),
            &int(t.usage.output_tokens),
            &int(t.usage.total_tokens),
            &error_json(t.error.as_ref()),
            &t.pid.map(i64::from),
            &t.cost_usd,
            &words,
        ],
    )?;
    Ok(())
}

/// Upserts span rows in one statement, the last record of a span winning; `ended` spans have
/// their words indexed and their events replaced (a running span is found by its trace's name,
/// and gets its events when it ends).
pub(super) fn write_spans(
    tx: &mut Transaction<'_>,
    spans: &[(&Span, bool)],
) -> Result<(), postgres::Error> {
    if spans.is_empty() {
        return Ok(());
    }
    // One row per span: PostgreSQL refuses to update a row twice in one statement.
    let mut last: HashMap<(TraceId, SpanId), usize> = HashMap::with_capacity(spans.len());
    for (i, (span, _)) in spans.iter().enumerate() {
        last.insert((span.trace_id, span.span_id), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    let rows: Vec<(&Span, bool)> = keep.iter().filter_map(|&i| spans.get(i).copied()).collect();
    let col = |f: &dyn Fn(&Span) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(|(s, _)| f(s)).collect()
    };
    let trace_ids = col(&|s| Some(s.trace_id.to_string()));
    let span_ids = col(&|s| Some(s.span_id.to_string()));
    let parents = col(&|s| s.parent_id.map(|p| p.to_string()));
    let kinds = col(&|s| Some(s.kind.as_str().to_string()));
    let names = col(&|s| Some(s.name.clone()));
    let statuses = col(&|s| Some(s.status.as_str().to_string()));
    let attributes = col(&|s| Some(map_json(&s.attributes)));
    let errors = col(&|s| error_json(s.error.as_ref()));
    let started: Vec<i64> = rows.iter().map(|(s, _)| s.started_at.micros()).collect();
    let ended_at: Vec<Option<i64>> = rows
        .iter()
        .map(|(s, _)| s.ended_at.map(Timestamp::micros))
        .collect();
    let words: Vec<String> = rows
        .iter()
        .map(|(s, ended)| {
            if *ended {
                span_words(&s.name, &s.attributes).join(" ")
            } else {
                String::new()
            }
        })
        .collect();
    tx.execute(
        "INSERT INTO spans (trace_id, span_id, parent_id, kind, name, status, started_at,
                            ended_at, attributes, error, search)
         SELECT t, s, p, k, n, st, sa, ea, a, e, array_to_tsvector(string_to_array(w, ' '))
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::int8[], $8::int8[], $9::text[], $10::text[], $11::text[])
              AS u (t, s, p, k, n, st, sa, ea, a, e, w)
         ON CONFLICT (trace_id, span_id) DO UPDATE SET
             parent_id = excluded.parent_id, kind = excluded.kind, name = excluded.name,
             status = excluded.status, started_at = excluded.started_at,
             ended_at = excluded.ended_at, attributes = excluded.attributes,
             error = excluded.error, search = excluded.search",
        &[
            &trace_ids,
            &span_ids,
            &parents,
            &kinds,
            &names,
            &statuses,
            &started,
            &ended_at,
            &attributes,
            &errors,
            &words,
        ],
    )?;
    let ended: Vec<&Span> = rows.iter().filter(|(_, e)| *e).map(|(s, _)| *s).collect();
    write_events(tx, &ended)
}

/// Replaces the events of `spans` with theirs, in two statements whatever their number.
pub(super) fn write_events(
    tx: &mut Transaction<'_>,
    spans: &[&Span],
) -> Result<(), postgres::Error> {
    if spans.is_empty() {
        return Ok(());
    }
    let trace_ids: Vec<String> = spans.iter().map(|s| s.trace_id.to_string()).collect();
    let span_ids: Vec<String> = spans.iter().map(|s| s.span_id.to_string()).collect();
    tx.execute(
        "DELETE FROM events WHERE (trace_id, span_id) IN
             (SELECT * FROM unnest($1::text[], $2::text[]))",
        &[&trace_ids, &span_ids],
    )?;
    let mut traces = Vec::new();
    let mut owners = Vec::new();
    let mut names = Vec::new();
    let mut times = Vec::new();
    let mut attributes = Vec::new();
    let mut words = Vec::new();
    for span in spans {
        for event in &span.events {
            traces.push(span.trace_id.to_string());
            owners.push(span.span_id.to_string());
            names.push(event.name.clone());
            times.push(event.time.micros());
            attributes.push(map_json(&event.attributes));
            words.push(super::search::words([event.name.as_str()]).join(" "));
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO events (trace_id, span_id, name, time, attributes, search)
         SELECT t, s, n, tm, a, array_to_tsvector(string_to_array(w, ' '))
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[])
              WITH ORDINALITY AS u (t, s, n, tm, a, w, i)
         ORDER BY i",
        &[&traces, &owners, &names, &times, &attributes, &words],
    )?;
    Ok(())
}

/// Writes one run row (in the writer's transaction or a command's own).
pub(super) fn write_run(
    tx: &mut Transaction<'_>,
    run: &ExperimentRun,
) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO experiment_runs (experiment_id, case_id, attempt, trace_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (experiment_id, case_id, attempt) DO UPDATE SET trace_id = excluded.trace_id",
        &[
            &run.experiment,
            &run.case_id,
            &i64::from(run.attempt),
            &run.trace_id.to_string(),
        ],
    )?;
    Ok(())
}
