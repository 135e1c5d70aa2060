//! Ingest: traces that other programs send to `agentrace serve`, turned into agentrace's model.
//!
//! Two wire formats arrive: the payload the OpenAI Agents SDK posts to its traces dashboard
//! (`openai`) and OTLP/HTTP trace exports, protobuf or JSON (`otlp`). Both are mapped onto the
//! same [`Trace`]/[`Span`] model that `run` records, so `show`, `list`, `stats`, `diff` and
//! `export` read ingested traces like any other. Parsing is pure: nothing here touches the store;
//! `Store::ingest` writes a parsed [`Ingest`] in one transaction.

pub mod openai;
pub mod otlp;

#[cfg(test)]
mod fuzz;

use serde_json::{Map, Value};

use crate::trace::{Span, TraceId};

/// What one request carried. Spans may belong to traces whose header came in an earlier request
/// (or has not come yet), and may arrive before their parents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingest {
    pub traces: Vec<TraceHeader>,
    pub spans: Vec<Span>,
}

/// What a sender says about a trace itself. Its times, status and usage are not sent by either
/// format: the store derives them from the trace's spans.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceHeader {
    pub trace_id: TraceId,
    /// The trace's name (the Agents SDK's `workflow_name`; for OTLP the root span's name).
    pub name: String,
    /// The workflow it belongs to; `list --workflow` filters on it. Usually the same as `name`.
    pub workflow: String,
    pub group_id: Option<String>,
    pub metadata: Map<String, Value>,
}

/// "a string", "an object", …: what a refusal says it found.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Why a payload was refused: the server answers 400 with this message and stores nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestError(pub String);

impl IngestError {
    pub fn new(message: impl Into<String>) -> Self {
        IngestError(message.into())
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IngestError {}
