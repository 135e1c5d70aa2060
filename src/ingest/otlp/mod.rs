//! OTLP/HTTP trace exports (`POST /v1/traces`), protobuf or JSON, read into agentrace's model.
//!
//! Both encodings decode to one `ExportTraceServiceRequest` ([`decode`]) and are mapped the same
//! way: a span that agentrace's own export wrote is read back as it was stored ([`own`]), any
//! other span is mapped from the conventions of the SDK that wrote it ([`foreign`]).
//!
//! Checks: a trace id must be 16 bytes and not all zeros, a span id 8 bytes and not all zeros, a
//! parent span id empty or 8 bytes (all zeros counts as no parent). Any bad span refuses the
//! request, naming it (`resourceSpans[0].scopeSpans[1].spans[4].traceId: …`).
//!
//! Attribute values: strings, booleans, ints and doubles as themselves, arrays as arrays,
//! key-value lists as objects, bytes as base64 text.

mod decode;
mod foreign;
mod own;

use std::collections::HashSet;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, status};
use serde_json::{Map, Value, json};

use super::{Ingest, IngestError, token_count};
use crate::trace::{SpanId, Status, Timestamp, TraceId, Usage};
use decode::b64;
pub use decode::{parse_json, parse_protobuf};

/// Maps a decoded request (see the module docs).
pub fn from_request(request: &ExportTraceServiceRequest) -> Result<Ingest, IngestError> {
    let resources: Vec<Map<String, Value>> = request
        .resource_spans
        .iter()
        .map(|rs| {
            rs.resource
                .as_ref()
                .map(|r| otel_attributes(&r.attributes))
                .unwrap_or_default()
        })
        .collect();
    let mut incoming = Vec::new();
    for (ri, rs) in request.resource_spans.iter().enumerate() {
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            let scope = ss
                .scope
                .as_ref()
                .map_or(("", ""), |s| (s.name.as_str(), s.version.as_str()));
            for (pi, span) in ss.spans.iter().enumerate() {
                let at = format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]");
                incoming.push(Incoming::new(span, at, &resources[ri], scope)?);
            }
        }
    }

    let roots: HashSet<(TraceId, SpanId)> = incoming
        .iter()
        .filter(|i| i.is_agentrace_root())
        .map(|i| (i.trace_id, i.span_id))
        .collect();
    let mut ingest = Ingest::default();
    let mut headed = HashSet::new();
    for item in incoming.iter().filter(|i| i.is_agentrace_root()) {
        if headed.insert(item.trace_id) {
            ingest.traces.push(item.agentrace_header());
            if let Some(row) = item.agentrace_row()? {
                ingest.rows.push(row);
            }
        }
    }
    for item in &incoming {
        if item.parent_id.is_none()
            && !item.is_agentrace_root()
            && item.agentrace_kind().is_none()
            && headed.insert(item.trace_id)
        {
            ingest.traces.push(item.foreign_header(&incoming));
        }
    }
    for item in incoming.iter().filter(|i| !i.is_agentrace_root()) {
        let mut span = match item.agentrace_kind() {
            Some(kind) => item.agentrace_span(kind),
            None => item.foreign_span(),
        };
        if let Some(parent) = span.parent_id
            && roots.contains(&(span.trace_id, parent))
        {
            span.parent_id = None;
        }
        ingest.spans.push(span);
    }
    Ok(ingest)
}

/// One span of the request with what it is read against.
struct Incoming<'a> {
    span: &'a OtlpSpan,
    trace_id: TraceId,
    span_id: SpanId,
    parent_id: Option<SpanId>,
    attrs: Map<String, Value>,
    resource: &'a Map<String, Value>,
    scope: (&'a str, &'a str),
}

fn trace_id_of(bytes: &[u8]) -> Result<TraceId, String> {
    let id: [u8; 16] = bytes
        .try_into()
        .map_err(|_| format!("a trace id must be 16 bytes, got {}", bytes.len()))?;
    if id == [0; 16] {
        return Err("a trace id must not be all zeros".into());
    }
    Ok(TraceId(id))
}

fn span_id_of(bytes: &[u8]) -> Result<SpanId, String> {
    let id: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("a span id must be 8 bytes, got {}", bytes.len()))?;
    if id == [0; 8] {
        return Err("a span id must not be all zeros".into());
    }
    Ok(SpanId(id))
}

impl<'a> Incoming<'a> {
    fn new(
        span: &'a OtlpSpan,
        at: String,
        resource: &'a Map<String, Value>,
        scope: (&'a str, &'a str),
    ) -> Result<Self, IngestError> {
        let trace_id = trace_id_of(&span.trace_id)
            .map_err(|e| IngestError::new(format!("{at}.traceId: {e}")))?;
        let span_id =
            span_id_of(&span.span_id).map_err(|e| IngestError::new(format!("{at}.spanId: {e}")))?;
        let parent_id = match span.parent_span_id.as_slice() {
            [] => None,
            p if p == [0; 8] => None,
            p => Some(
                span_id_of(p).map_err(|e| IngestError::new(format!("{at}.parentSpanId: {e}")))?,
            ),
        };
        Ok(Incoming {
            span,
            trace_id,
            span_id,
            parent_id,
            attrs: otel_attributes(&span.attributes),
            resource,
            scope,
        })
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    fn status_parts(&self) -> (i32, &str) {
        self.span
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.code, s.message.as_str()))
    }
}

fn json_object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn status_from_code(code: i32, end: u64) -> Status {
    if code == status::StatusCode::Error as i32 {
        Status::Error
    } else if end == 0 {
        Status::Running
    } else {
        Status::Ok
    }
}

fn micros(nanos: u64) -> Timestamp {
    Timestamp(i64::try_from(nanos / 1000).unwrap_or(i64::MAX))
}

/// `usage` from the first present key of each list; `None` without input or output counts.
fn usage_of(
    a: &Map<String, Value>,
    input: &[&str],
    output: &[&str],
    total: &[&str],
) -> Option<Value> {
    let first = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k).and_then(token_count));
    let (i, o) = (first(input), first(output));
    if i.is_none() && o.is_none() {
        return None;
    }
    let (i, o) = (i.unwrap_or(0), o.unwrap_or(0));
    let t = first(total).unwrap_or(i + o);
    Some(
        Usage {
            input_tokens: i,
            output_tokens: o,
            total_tokens: t,
        }
        .to_value(),
    )
}

/// OTLP attributes as a JSON object (a later duplicate key wins).
fn otel_attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, any_json),
            )
        })
        .collect()
}

fn any_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_json).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(otel_attributes(&kv.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(b64::encode(b)),
        // An index into a profiles string table: traces have none to look it up in.
        Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
    }
}

#[cfg(test)]
#[path = "../tests/otlp.rs"]
mod tests;
