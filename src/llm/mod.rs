//! Model access: one trait for a chat model, implemented by an OpenAI-compatible client
//! (async-openai) and by the deterministic offline model.
//!
//! The engine records what goes in and comes out on generation spans; models only talk to the
//! server and report usage.

pub mod offline;
pub mod openai;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

use crate::trace::Usage;

/// One chat message as sent to the model (and as recorded on the generation span).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: "system",
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: "user",
            content: content.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// The offline model's answer (the step's `mock:`); real models ignore it.
    pub mock: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub usage: Usage,
    /// The model the server says answered (it may differ from the requested one).
    pub response_model: Option<String>,
    pub finish_reason: Option<String>,
    pub response_id: Option<String>,
}

/// A failed model call, with what is known about it for the span's error data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ModelError {
    pub message: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
}

pub type ModelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChatResponse, ModelError>> + Send + 'a>>;

/// A chat model.
pub trait Model: Send + Sync {
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> ModelFuture<'a>;

    /// Whether answers are produced without any server (recorded as `offline` on spans).
    fn is_offline(&self) -> bool {
        false
    }

    /// Where calls go, for the span (never with credentials).
    fn endpoint(&self) -> Option<String> {
        None
    }
}
