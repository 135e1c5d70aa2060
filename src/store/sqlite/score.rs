//! Scores added after a run: a person's verdict on a stored trace (`agentrace score`), written
//! as the same evaluation event the engine records, so everything that reads events (show, the
//! exports, serve) shows it like any other score.

use rusqlite::params;

use super::{Store, StoreError};
use crate::store::writer::map_json;
use crate::trace::score::EVALUATION_EVENT;
use crate::trace::{Score, SpanId, Timestamp, TraceId};

impl Store {
    /// Puts `score` on span `span` of trace `trace`, replacing an earlier score of the same name
    /// and source there (a person correcting their verdict). The span must exist and be
    /// finished: a running span's events are rewritten by its run.
    pub fn add_score(&self, trace: TraceId, span: SpanId, score: &Score) -> Result<(), StoreError> {
        let event = score.to_event(Timestamp::now());
        let (trace, span) = (trace.to_string(), span.to_string());
        self.with_write_tx(|tx| {
            tx.execute(
                "DELETE FROM events WHERE trace_id = ?1 AND span_id = ?2 AND name = ?3
                   AND json_extract(attributes, '$.\"gen_ai.evaluation.name\"') = ?4
                   AND json_extract(attributes, '$.\"agentrace.evaluation.source\"') = ?5",
                params![
                    trace,
                    span,
                    EVALUATION_EVENT,
                    score.name,
                    score.source.as_str()
                ],
            )?;
            tx.execute(
                "INSERT INTO events (trace_id, span_id, name, time, attributes)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    trace,
                    span,
                    event.name,
                    event.time.micros(),
                    map_json(&event.attributes)
                ],
            )?;
            Ok(())
        })
    }
}
