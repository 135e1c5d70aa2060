//! An OTLP/HTTP trace export decoded into one `ExportTraceServiceRequest`, which
//! [`super::from_request`] then maps: protobuf through `prost`, OTLP/JSON through the lenient
//! decoder here.
//!
//! The JSON is decoded here rather than through `opentelemetry-proto`'s serde support, which
//! refuses some of what real senders write — enum names (`"kind": "SPAN_KIND_SERVER"`),
//! `{"arrayValue": {}}` for an empty array (the collector's encoding), `null` for a default —
//! and reads the proto field names (`trace_id`, which protobuf's JSON mapping allows) as
//! absent. This decoder takes the OTLP/JSON spec's encodings (hex ids, lowerCamelCase names,
//! 64-bit integers as numbers or strings, enums as integers) and what senders write besides
//! (proto field names, enum names, base64 ids, empty `arrayValue`s, nulls for defaults), and
//! names the field it could not read (`invalid OTLP JSON:
//! resourceSpans[0].scopeSpans[0].spans[2].kind: …`).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;
use serde_json::{Map, Value};

use super::from_request;
use crate::ingest::json_kind as kind;
use crate::ingest::{Ingest, IngestError};

type Result<T> = std::result::Result<T, String>;

/// Parses an `ExportTraceServiceRequest` in protobuf (the body is already un-gzipped).
pub fn parse_protobuf(body: &[u8]) -> std::result::Result<Ingest, IngestError> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| IngestError::new(format!("invalid OTLP protobuf: {e}")))?;
    from_request(&request)
}

/// Parses an `ExportTraceServiceRequest` in OTLP/JSON (the body is already un-gzipped).
pub fn parse_json(body: &[u8]) -> std::result::Result<Ingest, IngestError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::new(format!("invalid OTLP JSON: {e}")))?;
    let request =
        request(&value).map_err(|e| IngestError::new(format!("invalid OTLP JSON: {e}")))?;
    // The JSON tree is several times the body: gone before the mapped spans are built.
    drop(value);
    from_request(&request)
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A field by its JSON name or its proto name; null counts as absent.
fn get<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key)
        .or_else(|| o.get(&snake(key)))
        .filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| format!("{at}: expected an object, got {}", kind(v)))
}

fn list<'a>(o: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a [Value]> {
    match get(o, key) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(v) => Err(format!(
            "{}: expected an array, got {}",
            join(at, key),
            kind(v)
        )),
    }
}

/// Each element of the array `key`, read by `f` with its path.
fn each<T>(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    f: impl Fn(&Value, &str) -> Result<T>,
) -> Result<Vec<T>> {
    list(o, key, at)?
        .iter()
        .enumerate()
        .map(|(i, v)| f(v, &format!("{}[{i}]", join(at, key))))
        .collect()
}

fn string(o: &Map<String, Value>, key: &str, at: &str) -> Result<String> {
    match get(o, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!(
            "{}: expected a string, got {}",
            join(at, key),
            kind(v)
        )),
    }
}

fn integer_of(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1.7e38)
                    .map(|f| f as i128)
            }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn integer<T: TryFrom<i128> + Default>(o: &Map<String, Value>, key: &str, at: &str) -> Result<T> {
    let Some(v) = get(o, key) else {
        return Ok(T::default());
    };
    let n =
        integer_of(v).ok_or_else(|| format!("{}: expected an integer, got {v}", join(at, key)))?;
    T::try_from(n).map_err(|_| format!("{}: {n} is out of range", join(at, key)))
}

/// An enum field: its number, or its name with or without the prefix.
fn enumeration(
    o: &Map<String, Value>,
    key: &str,
    at: &str,
    prefix: &str,
    names: &[&str],
) -> Result<i32> {
    match get(o, key) {
        Some(Value::String(s)) if s.trim().parse::<i64>().is_err() => {
            let upper = s.to_ascii_uppercase();
            let short = upper.strip_prefix(prefix).unwrap_or(&upper);
            names
                .iter()
                .position(|n| *n == short)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| format!("{}: unknown value {s:?}", join(at, key)))
        }
        _ => integer(o, key, at),
    }
}

/// A trace or span id: hex, as OTLP/JSON says; base64, as protobuf's JSON mapping says.
fn id(o: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<u8>> {
    let text = string(o, key, at)?;
    if text.len() % 2 == 0 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok((0..text.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect());
    }
    b64::decode(&text).ok_or_else(|| format!("{}: not a hex id: {text:?}", join(at, key)))
}

fn request(v: &Value) -> Result<ExportTraceServiceRequest> {
    let o = object(v, "the body")?;
    Ok(ExportTraceServiceRequest {
        resource_spans: each(o, "resourceSpans", "", resource_spans)?,
    })
}

fn resource_spans(v: &Value, at: &str) -> Result<ResourceSpans> {
    let o = object(v, at)?;
    let resource = match get(o, "resource") {
        None => None,
        Some(r) => {
            let at = join(at, "resource");
            let r = object(r, &at)?;
            Some(Resource {
                attributes: key_values(r, "attributes", &at)?,
                dropped_attributes_count: integer(r, "droppedAttributesCount", &at)?,
                ..Default::default()
            })
        }
    };
    // `instrumentationLibrarySpans`: the name before OTLP 0.15.
    let scope_key =
        if get(o, "scopeSpans").is_none() && get(o, "instrumentationLibrarySpans").is_some() {
            "instrumentationLibrarySpans"
        } else {
            "scopeSpans"
        };
    Ok(ResourceSpans {
        resource,
        scope_spans: each(o, scope_key, at, scope_spans)?,
        schema_url: string(o, "schemaUrl", at)?,
    })
}

fn scope_spans(v: &Value, at: &str) -> Result<ScopeSpans> {
    let o = object(v, at)?;
    let scope_key = if get(o, "scope").is_none() && get(o, "instrumentationLibrary").is_some() {
        "instrumentationLibrary"
    } else {
        "scope"
    };
    let scope = match get(o, scope_key) {
        None => None,
        Some(s) => {
            let at = join(at, scope_key);
            let s = object(s, &at)?;
            Some(InstrumentationScope {
                name: string(s, "name", &at)?,
                version: string(s, "version", &at)?,
                attributes: key_values(s, "attributes", &at)?,
                dropped_attributes_count: integer(s, "droppedAttributesCount", &at)?,
            })
        }
    };
    Ok(ScopeSpans {
        scope,
        spans: each(o, "spans", at, span)?,
        schema_url: string(o, "schemaUrl", at)?,
    })
}

const SPAN_KINDS: [&str; 6] = [
    "UNSPECIFIED",
    "INTERNAL",
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["UNSET", "OK", "ERROR"];

fn span(v: &Value, at: &str) -> Result<Span> {
    let o = object(v, at)?;
    let status = match get(o, "status") {
        None => None,
        Some(s) => {
            let at = join(at, "status");
            let s = object(s, &at)?;
            Some(Status {
                message: string(s, "message", &at)?,
                code: enumeration(s, "code", &at, "STATUS_CODE_", &STATUS_CODES)?,
            })
        }
    };
    Ok(Span {
        trace_id: id(o, "traceId", at)?,
        span_id: id(o, "spanId", at)?,
        trace_state: string(o, "traceState", at)?,
        parent_span_id: id(o, "parentSpanId", at)?,
        flags: integer(o, "flags", at)?,
        name: string(o, "name", at)?,
        kind: enumeration(o, "kind", at, "SPAN_KIND_", &SPAN_KINDS)?,
        start_time_unix_nano: integer(o, "startTimeUnixNano", at)?,
        end_time_unix_nano: integer(o, "endTimeUnixNano", at)?,
        attributes: key_values(o, "attributes", at)?,
        dropped_attributes_count: integer(o, "droppedAttributesCount", at)?,
        events: each(o, "events", at, event)?,
        dropped_events_count: integer(o, "droppedEventsCount", at)?,
        links: each(o, "links", at, link)?,
        dropped_links_count: integer(o, "droppedLinksCount", at)?,
        status,
    })
}

fn event(v: &Value, at: &str) -> Result<span::Event> {
    let o = object(v, at)?;
    Ok(span::Event {
        time_unix_nano: integer(o, "timeUnixNano", at)?,
        name: string(o, "name", at)?,
        attributes: key_values(o, "attributes", at)?,
        dropped_attributes_count: integer(o, "droppedAttributesCount", at)?,
    })
}

fn link(v: &Value, at: &str) -> Result<span::Link> {
    let o = object(v, at)?;
    Ok(span::Link {
        trace_id: id(o, "traceId", at)?,
        span_id: id(o, "spanId", at)?,
        trace_state: string(o, "traceState", at)?,
        attributes: key_values(o, "attributes", at)?,
        dropped_attributes_count: integer(o, "droppedAttributesCount", at)?,
        flags: integer(o, "flags", at)?,
    })
}

fn key_values(o: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<KeyValue>> {
    each(o, key, at, key_value)
}

fn key_value(v: &Value, at: &str) -> Result<KeyValue> {
    let o = object(v, at)?;
    let value = match get(o, "value") {
        None => None,
        Some(v) => Some(any(v, &join(at, "value"))?),
    };
    Ok(KeyValue {
        key: string(o, "key", at)?,
        value,
        ..Default::default()
    })
}

fn any(v: &Value, at: &str) -> Result<AnyValue> {
    let o = object(v, at)?;
    let wrong = |key: &str, v: &Value, what: &str| {
        format!("{}: expected {what}, got {}", join(at, key), kind(v))
    };
    let value = if let Some(v) = get(o, "stringValue") {
        match v {
            Value::String(s) => any_value::Value::StringValue(s.clone()),
            other => return Err(wrong("stringValue", other, "a string")),
        }
    } else if let Some(v) = get(o, "boolValue") {
        match v {
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            Value::String(s) if s == "true" || s == "false" => {
                any_value::Value::BoolValue(s == "true")
            }
            other => return Err(wrong("boolValue", other, "a boolean")),
        }
    } else if get(o, "intValue").is_some() {
        any_value::Value::IntValue(integer(o, "intValue", at)?)
    } else if let Some(v) = get(o, "doubleValue") {
        let d = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                other => other.trim().parse().ok(),
            },
            _ => None,
        };
        any_value::Value::DoubleValue(d.ok_or_else(|| wrong("doubleValue", v, "a number"))?)
    } else if let Some(v) = get(o, "arrayValue") {
        let at = join(at, "arrayValue");
        let a = object(v, &at)?;
        any_value::Value::ArrayValue(ArrayValue {
            values: each(a, "values", &at, any)?,
        })
    } else if let Some(v) = get(o, "kvlistValue") {
        let at = join(at, "kvlistValue");
        let kv = object(v, &at)?;
        any_value::Value::KvlistValue(KeyValueList {
            values: key_values(kv, "values", &at)?,
        })
    } else if let Some(v) = get(o, "bytesValue") {
        let Value::String(text) = v else {
            return Err(wrong("bytesValue", v, "a base64 string"));
        };
        any_value::Value::BytesValue(
            b64::decode(text).ok_or_else(|| format!("{}: not base64", join(at, "bytesValue")))?,
        )
    } else {
        // No value, or one of a kind this reader does not know: empty, as the spec says.
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}

/// Base64 for `bytes` values and ids: the decoder reads it, the mapping writes it.
pub(super) mod b64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Standard base64 with padding.
    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// Standard or URL-safe base64, padded or not.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.trim_end_matches('=');
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let mut acc = 0u32;
        let mut bits = 0;
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                _ => return None,
            };
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push(((acc >> bits) & 0xff) as u8);
            }
        }
        // A lone trailing character cannot be base64.
        (text.len() % 4 != 1).then_some(out)
    }
}
