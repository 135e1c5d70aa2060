//! Placeholder: being written (OTLP mapping and push).
use serde_json::Value;

use crate::trace::TraceDoc;

/// `OTEL_SERVICE_NAME`, default `agentrace`.
pub fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "agentrace".to_string())
}

pub fn to_json(_docs: &[TraceDoc], _service_name: &str) -> Value {
    Value::Null
}
