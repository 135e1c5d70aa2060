//! The store as the engine's [`SessionHistory`]: `run` injects it so that `session:`
//! conversations persist across runs, while the engine itself never names the store, nor the
//! store the engine (the two meet here, in the layer that puts things together).
//!
//! A [`Store`] is one SQLite connection, which may move between threads but not be shared by
//! them; the engine calls the history from its blocking pool, so the connection sits behind a
//! [`Mutex`]. It is a second connection, apart from the writer thread's, so that conversations are
//! read and written while spans are recorded.

use std::sync::Mutex;

use crate::engine::{SessionError, SessionHistory};
use crate::llm::Message;
use crate::store::Store;
use crate::trace::{Timestamp, TraceId};

impl SessionHistory for Mutex<Store> {
    fn load_session(
        &self,
        key: &str,
        before: Option<Timestamp>,
    ) -> Result<Vec<Message>, SessionError> {
        let store = self.lock().unwrap_or_else(|p| p.into_inner());
        Ok(store.session_messages_before(key, before)?)
    }

    fn append_session(
        &self,
        key: &str,
        trace_id: TraceId,
        messages: &[Message],
    ) -> Result<(), SessionError> {
        let store = self.lock().unwrap_or_else(|p| p.into_inner());
        Ok(store.append_session(key, trace_id, messages)?)
    }
}
