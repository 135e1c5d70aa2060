//! Conversations kept across runs: the messages of a `session:` in the order they were said.
//!
//! Only user messages and final assistant answers are kept (no system prompts, no tool
//! exchanges): a later run may use other instructions and other tools, and the history must
//! still make sense to the model.

use rusqlite::params;

use super::{Store, StoreError};
use crate::llm::Message;
use crate::trace::{Timestamp, TraceId};

impl Store {
    /// The messages of `session` said before `before` (all of them without it), oldest first.
    pub fn session_messages_before(
        &self,
        session: &str,
        before: Option<Timestamp>,
    ) -> Result<Vec<Message>, StoreError> {
        let err = |e| StoreError::sqlite(&self.path, e);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT message FROM session_messages WHERE session = ?1 AND created_at < ?2 \
                 ORDER BY seq",
            )
            .map_err(err)?;
        let before = before.map_or(i64::MAX, |t| t.micros());
        let rows = stmt
            .query_map(params![session, before], |r| r.get::<_, String>(0))
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.map_err(err)?;
            // A message this version cannot read is skipped rather than failing the run.
            if let Ok(message) = serde_json::from_str::<Message>(&text) {
                out.push(message);
            }
        }
        Ok(out)
    }

    /// Appends messages to `session` in one transaction.
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
        self.with_write_tx(|tx| {
            let next: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM session_messages WHERE session = ?1",
                [session],
                |r| r.get(0),
            )?;
            for (i, text) in encoded.iter().enumerate() {
                tx.execute(
                    "INSERT INTO session_messages (session, seq, trace_id, message, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![session, next + i as i64, trace_id.to_string(), text, now],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_keep_messages_in_order_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path().join("t.db")).unwrap();
        let t = TraceId::generate();
        store
            .append_session("c1", t, &[Message::user("hi"), Message::assistant("hello")])
            .unwrap();
        store
            .append_session("c2", t, &[Message::user("other")])
            .unwrap();
        store
            .append_session(
                "c1",
                t,
                &[Message::user("again"), Message::assistant("yes")],
            )
            .unwrap();
        assert_eq!(
            store.session_messages("c1").unwrap(),
            vec![
                Message::user("hi"),
                Message::assistant("hello"),
                Message::user("again"),
                Message::assistant("yes")
            ]
        );
        assert_eq!(store.session_messages("nope").unwrap(), vec![]);
    }
}
