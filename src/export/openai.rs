//! Placeholder: being written (the OpenAI Agents SDK traces payload).
use serde_json::Value;

use crate::trace::TraceDoc;

pub fn to_json(_docs: &[TraceDoc]) -> Value {
    Value::Null
}
