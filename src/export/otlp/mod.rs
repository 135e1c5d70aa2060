//! OTLP export: stored traces as OpenTelemetry spans, pushed over OTLP/HTTP (protobuf by default,
//! JSON with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) or written as OTLP JSON.
//!
//! - [`map`]: the mapping (GenAI semantic conventions plus OpenInference attributes).
//! - [`push`]: endpoint, headers, compression, timeout and retries from the `OTEL_*` variables.
//!
//! The W3C trace context that runs join and pass on, and that the mapping reads back from a
//! trace's metadata, lives in [`crate::trace::context`]: the engine needs it too.

pub mod map;
pub mod push;

use serde_json::Value;

use crate::trace::TraceDoc;

pub use push::{PushConfig, push_blocking};

/// `OTEL_SERVICE_NAME`, default `agentrace`.
pub fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "agentrace".to_string())
}

/// The OTLP JSON encoding (an `ExportTraceServiceRequest`) of `docs`: hex ids, nanoseconds as
/// strings, attributes as `{key, value: {stringValue|intValue|doubleValue|boolValue|arrayValue}}`.
/// Resource attributes from `OTEL_RESOURCE_ATTRIBUTES` are added when that variable parses.
pub fn to_json(docs: &[TraceDoc], service_name: &str) -> Value {
    let extra = std::env::var("OTEL_RESOURCE_ATTRIBUTES")
        .ok()
        .and_then(|text| push::parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &text).ok())
        .unwrap_or_default();
    let request = map::request(docs, map::resource(service_name, &extra));
    serde_json::to_value(&request).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests;
