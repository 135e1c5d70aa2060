//! `session:` conversations: the history of a session is read before an agent step and its new
//! user message and final answer are appended after it, so that a later run continues the
//! conversation.
//!
//! Where the history is kept is not the engine's business: it goes through [`SessionHistory`],
//! which the caller injects (`run` hands it the store). The engine keeps what is its own: the
//! redaction of what is written and the `--replay` rules.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::Failure;
use super::executor::{TraceRun, error_at};
use crate::llm::Message;
use crate::trace::{Timestamp, TraceId, redact};

/// Why the session history could not be read or written (shown as `session store: …`).
pub type SessionError = Box<dyn std::error::Error + Send + Sync>;

/// Where `session:` conversations are kept between runs. Blocking: the engine calls it on
/// tokio's blocking pool.
pub trait SessionHistory: Send + Sync {
    /// The messages of session `key` said before `before` (all of them without it), oldest
    /// first.
    fn load_session(
        &self,
        key: &str,
        before: Option<Timestamp>,
    ) -> Result<Vec<Message>, SessionError>;

    /// Appends `messages`, said in trace `trace_id`, to session `key`: all of them or none.
    fn append_session(
        &self,
        key: &str,
        trace_id: TraceId,
        messages: &[Message],
    ) -> Result<(), SessionError>;
}

/// Runs blocking session-history work off the async workers.
async fn with_history<T: Send + 'static>(
    history: &Arc<dyn SessionHistory>,
    f: impl FnOnce(&dyn SessionHistory) -> Result<T, SessionError> + Send + 'static,
) -> Result<T, Failure> {
    let history = history.clone();
    let joined = tokio::task::spawn_blocking(move || f(history.as_ref())).await;
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Failure::error(error_at(
            format!("session store: {e}"),
            Value::Null,
        ))),
        Err(e) => Err(Failure::error(error_at(
            format!("session store task failed: {e}"),
            Value::Null,
        ))),
    }
}

impl TraceRun {
    /// The history of session `key`. Under `--replay`, as it stood when the recorded run
    /// started, plus what this run has said in it since: the requests are then the recorded
    /// ones, even though the recorded run's own turns are in the store by now.
    pub(crate) async fn load_session(&self, key: &str) -> Result<Vec<Message>, Failure> {
        let Some(history) = &self.engine.sessions else {
            return Ok(Vec::new());
        };
        let owned = key.to_string();
        let Some(recording) = &self.engine.opts.replay else {
            return with_history(history, move |h| h.load_session(&owned, None)).await;
        };
        let before = recording.started_at();
        let mut history = with_history(history, move |h| h.load_session(&owned, before)).await?;
        if let Some(said) = self.replayed().get(key) {
            history.extend(said.iter().cloned());
        }
        Ok(history)
    }

    fn replayed(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Message>>> {
        self.engine
            .replayed_sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn save_session(
        &self,
        key: &str,
        user: &str,
        answer: &str,
    ) -> Result<(), Failure> {
        let Some(history) = &self.engine.sessions else {
            return Ok(());
        };
        if self.engine.opts.replay.is_some() {
            let messages = vec![Message::user(user), Message::assistant(answer)];
            // A replay re-enacts a conversation; it does not continue it.
            self.replayed()
                .entry(key.to_string())
                .or_default()
                .extend(messages);
            return Ok(());
        }
        // The history is written like a span: a key a server echoed into the
        // answer stays out of it (and out of the next run's prompt).
        let messages = vec![
            Message::user(redact::redact(user)),
            Message::assistant(redact::redact(answer)),
        ];
        let key = key.to_string();
        let trace_id = self.rec.trace().trace_id;
        with_history(history, move |h| {
            h.append_session(&key, trace_id, &messages)
        })
        .await
    }
}
