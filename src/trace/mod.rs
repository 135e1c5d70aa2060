//! The trace model, ids, and the recorder that turns a running workflow into spans for sinks;
//! and what every layer above shares about traces, so that none of them has to import another:
//! the W3C trace context a run joins (`context`), the payload types ingest produces and the
//! store writes (`ingest`), the figures of `stats` and `diff` (`stats`), secrets taken out of
//! everything written (`redact`), text cut to a size (`bound`), and where a failure happened
//! (`failure`), the keys of MCP spans (`mcp`); for tests, a trace with one span of every kind (`fixture`). It imports nothing above it (`tests/e2e/layers.rs` checks).

pub mod bound;
pub mod context;
pub mod failure;
#[cfg(test)]
pub(crate) mod fixture;
pub mod id;
pub mod ingest;
pub mod json;
pub mod mcp;
pub mod model;
pub mod recorder;
pub mod redact;
pub mod score;
pub mod stats;

pub use id::{SpanId, TraceId};
pub use model::{
    DID_NOT_FINISH, ErrorInfo, Event, HANDOFF_PREFIX, Span, SpanKind, Status, Timestamp, Trace,
    TraceDoc, Usage,
};
pub use recorder::{Alarm, Recorder, Sink, SpanHandle, StartedSpan};
pub use score::{Score, ScoreSource};

/// What a JSON value is, for a refusal that says what it found: "a string", "an array", ….
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
