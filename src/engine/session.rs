//! `session:` conversations: the history of a session is read from the store before an agent
//! step and its new user message and final answer are appended after it, so that a later run
//! continues the conversation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::Failure;
use super::executor::{TraceRun, error_at};
use crate::llm::Message;
use crate::store::{Store, StoreError};
use crate::trace::redact;

/// Runs blocking store work off the async workers.
async fn with_store<T: Send + 'static>(
    store: &Arc<Mutex<Store>>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Failure> {
    let store = store.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    })
    .await;
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

impl TraceRun<'_> {
    /// The history of session `key`. Under `--replay`, as it stood when the recorded run
    /// started, plus what this run has said in it since: the requests are then the recorded
    /// ones, even though the recorded run's own turns are in the store by now.
    pub(crate) async fn load_session(&self, key: &str) -> Result<Vec<Message>, Failure> {
        let Some(store) = &self.engine.sessions else {
            return Ok(Vec::new());
        };
        let owned = key.to_string();
        let Some(recording) = &self.engine.opts.replay else {
            return with_store(store, move |s| s.session_messages(&owned)).await;
        };
        let before = recording.started_at();
        let mut history =
            with_store(store, move |s| s.session_messages_before(&owned, before)).await?;
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
        let Some(store) = &self.engine.sessions else {
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
        // The history is written to the store like a span: a key a server echoed into the
        // answer stays out of it (and out of the next run's prompt).
        let messages = vec![
            Message::user(redact::redact(user)),
            Message::assistant(redact::redact(answer)),
        ];
        let key = key.to_string();
        let trace_id = self.rec.trace().trace_id;
        with_store(store, move |s| s.append_session(&key, trace_id, &messages)).await
    }
}
