//! Model access: one trait for a chat model, implemented by OpenAI-compatible clients
//! (async-openai, Chat Completions or the Responses API, streaming or not), by the deterministic offline model, and by replay, which
//! answers from the model calls of a recorded trace.
//!
//! The engine records what goes in and comes out on generation spans; models only talk to the
//! server and report usage. Messages use the OpenAI wire shape so that the recorded request is
//! exactly what was sent.

pub mod mcp;
pub mod offline;
pub mod openai;
pub mod replay;
pub mod responses;
pub mod sse;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::trace::Usage;

/// A tool call the model made: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

fn function_type() -> String {
    "function".to_string()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model produced it (it may not be valid JSON).
    #[serde(default)]
    pub arguments: String,
}

impl ToolCall {
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            kind: function_type(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
            },
        }
    }
}

/// One chat message, in the OpenAI wire shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    System {
        content: String,
    },
    User {
        content: String,
    },
    Assistant {
        /// Always a string: some servers (llama.cpp) reject `null` content.
        #[serde(default)]
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        tool_call_id: String,
        content: String,
    },
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message::System {
            content: content.into(),
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Message::User {
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message::Assistant {
            content: content.into(),
            tool_calls: Vec::new(),
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Message::System { .. } => "system",
            Message::User { .. } => "user",
            Message::Assistant { .. } => "assistant",
            Message::Tool { .. } => "tool",
        }
    }

    pub fn content(&self) -> &str {
        match self {
            Message::System { content }
            | Message::User { content }
            | Message::Assistant { content, .. }
            | Message::Tool { content, .. } => content,
        }
    }
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A scripted answer of the offline model for one call.
#[derive(Clone, Debug, PartialEq)]
pub enum Scripted {
    Text(String),
    ToolCalls(Vec<ToolCall>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<i64>,
    pub tools: Vec<ToolSpec>,
    /// `(name, schema)`: ask for JSON matching the schema (strict `response_format`).
    pub output_schema: Option<(String, Value)>,
    /// Stream the response (servers that support it).
    pub stream: bool,
    /// The offline model's answer for this call (the step's `mock:`); real models ignore it.
    pub scripted: Option<Scripted>,
    /// The agent's `reasoning:` (effort and summary), for reasoning models.
    pub reasoning: Option<Reasoning>,
}

/// How hard a reasoning model thinks (`effort`) and whether it sums its reasoning up
/// (`summary`); the values are the API's own words, checked by validation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reasoning {
    pub effort: Option<String>,
    pub summary: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// The server sent no usage (a stream without a usage chunk): `usage` is estimated.
    pub usage_estimated: bool,
    /// The model the server says answered (it may differ from the requested one).
    pub response_model: Option<String>,
    pub finish_reason: Option<String>,
    pub response_id: Option<String>,
    /// Milliseconds from sending the request to the first content or tool-call delta.
    pub time_to_first_token_ms: Option<f64>,
    /// Milliseconds the call waited for a connection to its server (`max_connections:`), when
    /// it had to wait.
    pub queued_ms: Option<f64>,
    pub streamed: bool,
    /// The model's summary of its reasoning (the Responses API's reasoning items), when it
    /// gave one.
    pub reasoning_summary: Option<String>,
    /// Input tokens served from the server's prompt cache, when it says.
    pub cached_input_tokens: Option<u64>,
    /// Output tokens spent on reasoning, when the server says.
    pub reasoning_tokens: Option<u64>,
}

/// A failed model call, with what is known about it for the span's error data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ModelError {
    pub message: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Whether trying again may work: HTTP 429 and 5xx, connection errors, timeouts, streams
    /// that broke off. Other 4xx and malformed answers are not retried.
    pub retryable: bool,
    /// How long the server asked us to wait (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
}

impl ModelError {
    /// An error that trying again will not fix.
    pub fn new(message: impl Into<String>) -> Self {
        ModelError {
            message: message.into(),
            status: None,
            retryable: false,
            retry_after: None,
        }
    }

    /// An error that may pass: a broken connection, a timeout.
    pub fn transient(message: impl Into<String>) -> Self {
        ModelError {
            retryable: true,
            ..ModelError::new(message)
        }
    }

    /// An HTTP error status; 429 and 5xx may pass.
    pub fn http(status: u16, message: impl Into<String>) -> Self {
        ModelError {
            status: Some(status),
            retryable: status == 429 || status >= 500,
            ..ModelError::new(message)
        }
    }
}

pub type ModelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChatResponse, ModelError>> + Send + 'a>>;

/// Receives text as a streaming model produces it.
pub type DeltaFn<'a> = dyn Fn(&str) + Send + Sync + 'a;

/// A chat model.
pub trait Model: Send + Sync {
    /// One call. `on_delta` sees the answer's text as it arrives (streaming models only).
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_delta: Option<&'a DeltaFn<'a>>,
    ) -> ModelFuture<'a>;

    /// Whether answers are produced without any server (recorded as `offline` on spans).
    fn is_offline(&self) -> bool {
        false
    }

    /// Where calls go, for the span (never with credentials).
    fn endpoint(&self) -> Option<String> {
        None
    }

    /// Whether this endpoint streams unless told otherwise.
    fn streams(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_have_the_openai_wire_shape() {
        let msgs = vec![
            Message::system("s"),
            Message::user("u"),
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![ToolCall::new("call_1", "get", "{\"a\":1}")],
            },
            Message::Tool {
                tool_call_id: "call_1".into(),
                content: "r".into(),
            },
            Message::assistant("done"),
        ];
        assert_eq!(
            serde_json::to_value(&msgs).unwrap(),
            json!([
                {"role": "system", "content": "s"},
                {"role": "user", "content": "u"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{\"a\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r"},
                {"role": "assistant", "content": "done"}
            ])
        );
        let back: Vec<Message> =
            serde_json::from_value(serde_json::to_value(&msgs).unwrap()).unwrap();
        assert_eq!(back, msgs);
    }
}
