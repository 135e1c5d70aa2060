//! OTLP/HTTP trace exports (`POST /v1/traces`), protobuf or JSON, read into agentrace's model.
//!
//! Both encodings decode to one `ExportTraceServiceRequest` and are mapped the same way. The
//! JSON is decoded here rather than through `opentelemetry-proto`'s serde support, which refuses
//! some of what real senders write — enum names (`"kind": "SPAN_KIND_SERVER"`), `{"arrayValue":
//! {}}` for an empty array (the collector's encoding), `null` for a default — and reads the proto
//! field names (`trace_id`, which protobuf's JSON mapping allows) as absent. This decoder takes
//! the OTLP/JSON spec's forms and those, and names the field it could not read
//! (`invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[2].kind: …`).
//!
//! Checks: a trace id must be 16 bytes and not all zeros, a span id 8 bytes and not all zeros, a
//! parent span id empty or 8 bytes (all zeros counts as no parent). Any bad span refuses the
//! request, naming it (`resourceSpans[0].scopeSpans[1].spans[4].traceId: …`).
//!
//! ## agentrace's own export
//!
//! [`crate::export::otlp`] sends a trace as a root span (`agentrace.trace_id`,
//! `agentrace.workflow`, …) over the real spans, which carry `agentrace.span.kind`,
//! `agentrace.status` and `agentrace.<attribute>` copies. Read back, the root becomes the
//! [`TraceHeader`] (name, workflow, group id, metadata) and not a span; its children get no
//! parent; each span gets back its kind, status, name, error (message and
//! `agentrace.error.data`), events (without the `exception` event the export adds) and
//! attributes, from the `agentrace.*` copies and from the conventions the export moved them to
//! (`gen_ai.request.model` → `model`, `input.value` → `input`, …); the convention copies
//! (`gen_ai.*`, `llm.*`, `openinference.*`, `input.*`, `output.*`, `tool.*`, `process.*`) are
//! dropped. The export writes objects and mixed arrays as JSON text; such text is parsed back,
//! except under the keys that hold text (`input`, `output`, `stdout`, `stderr_tail`, …).
//! The root's own parent (a run that joined a `TRACEPARENT`) is not kept, and children whose
//! root came in another request keep the root's id as their parent.
//!
//! ## Spans from any other OpenTelemetry SDK
//!
//! | agentrace | from |
//! |---|---|
//! | kind `generation` | `gen_ai.operation.name` chat, text_completion, generate_content, embeddings; else `openinference.span.kind` LLM |
//! | kind `agent` | `gen_ai.operation.name` invoke_agent, create_agent; else `openinference.span.kind` AGENT |
//! | kind `function` | `gen_ai.operation.name` execute_tool; else `openinference.span.kind` TOOL |
//! | kind `custom` | anything else (CHAIN, RETRIEVER, plain HTTP spans, …) |
//! | name | the span name |
//! | `model` (generation) | `gen_ai.response.model`, `gen_ai.request.model`, `llm.model_name` |
//! | `usage` (generation) | `gen_ai.usage.input_tokens`/`output_tokens` (or `prompt_tokens`/`completion_tokens`), `llm.token_count.prompt`/`completion`/`total` |
//! | `input`, `output` (generation) | `gen_ai.input.messages`/`gen_ai.output.messages` (JSON text parsed), else `input.value`/`output.value` (parsed when `*.mime_type` is JSON) |
//! | `tool`, `call_id`, `input`, `output` (function) | `gen_ai.tool.name`/`tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.call.arguments`/`input.value`, `gen_ai.tool.call.result`/`output.value` |
//! | `agent`, `input`, `output` (agent) | `gen_ai.agent.name`, `input.value`, `output.value` |
//! | every attribute | kept under its own key (a mapped key never replaces one the span has) |
//! | `otel.span_kind` | the OTel span kind: `internal`, `server`, `client`, `producer`, `consumer` |
//! | `otel.scope.name`, `otel.scope.version` | the instrumentation scope |
//! | `otel.trace_state`, `otel.links` | the W3C trace state; links as `[{trace_id, span_id, attributes}]` |
//! | `resource.<key>` | each resource attribute (`resource.service.name`, …) |
//! | status | `error` for STATUS_CODE_ERROR, with the status message (else the `exception` event's `exception.message`, else "error") and the `exception` event's attributes (`type`, `message`, `stacktrace`) as data; else `running` when the end time is 0; else `ok` |
//! | events | `{name, time, attributes}` |
//!
//! Attribute values: strings, booleans, ints and doubles as themselves, arrays as arrays,
//! key-value lists as objects, bytes as base64 text.
//!
//! A [`TraceHeader`] comes for each trace whose root span (no parent) is in the request: name =
//! the root's name, workflow = the resource's `service.name` (unless it is the SDKs'
//! `unknown_service…` default) else the root's name, group id = `session.id` or
//! `gen_ai.conversation.id` of the root (else of any span of the trace in the request),
//! metadata = the root's `metadata.<key>` attributes and its `metadata` JSON object (the
//! OpenInference form). A trace whose root has not come gets no header.

use std::collections::HashSet;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, status};
use prost::Message;
use serde_json::{Map, Value, json};

use super::{Ingest, IngestError, TraceHeader};
use crate::trace::{ErrorInfo, Event, Span, SpanId, SpanKind, Status, Timestamp, TraceId, Usage};

/// Parses an `ExportTraceServiceRequest` in protobuf (the body is already un-gzipped).
pub fn parse_protobuf(body: &[u8]) -> Result<Ingest, IngestError> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| IngestError::new(format!("invalid OTLP protobuf: {e}")))?;
    from_request(&request)
}

/// Parses an `ExportTraceServiceRequest` in OTLP/JSON (the body is already un-gzipped).
pub fn parse_json(body: &[u8]) -> Result<Ingest, IngestError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| IngestError::new(format!("invalid OTLP JSON: {e}")))?;
    let request =
        json::request(&value).map_err(|e| IngestError::new(format!("invalid OTLP JSON: {e}")))?;
    // The JSON tree is several times the body: gone before the mapped spans are built.
    drop(value);
    from_request(&request)
}

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

    /// The root span agentrace's export makes of a trace.
    fn is_agentrace_root(&self) -> bool {
        self.str("agentrace.trace_id").is_some()
            && self.str("agentrace.workflow").is_some()
            && !self.attrs.contains_key("agentrace.span.kind")
    }

    /// The kind of a span agentrace's export wrote.
    fn agentrace_kind(&self) -> Option<SpanKind> {
        self.str("agentrace.span.kind").and_then(SpanKind::parse)
    }

    fn status_parts(&self) -> (i32, &str) {
        self.span
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.code, s.message.as_str()))
    }

    fn agentrace_header(&self) -> TraceHeader {
        let name = self
            .str("gen_ai.workflow.name")
            .map(str::to_string)
            .unwrap_or_else(|| strip(&self.span.name, "invoke_workflow "));
        let workflow = self.str("agentrace.workflow").unwrap_or(&name).to_string();
        let metadata = match self.str("metadata").and_then(json_object) {
            Some(m) => m,
            None => self
                .attrs
                .iter()
                .filter_map(|(k, v)| {
                    let key = k.strip_prefix("agentrace.metadata.")?;
                    Some((key.to_string(), restore_json(key, v)))
                })
                .collect(),
        };
        TraceHeader {
            trace_id: self.trace_id,
            name,
            workflow,
            group_id: self.str("agentrace.group_id").map(str::to_string),
            metadata,
        }
    }

    fn foreign_header(&self, all: &[Incoming<'_>]) -> TraceHeader {
        let name = self.span.name.clone();
        let workflow = self
            .resource
            .get("service.name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && !s.starts_with("unknown_service"))
            .map_or_else(|| name.clone(), str::to_string);
        let group_id = group_of(&self.attrs).or_else(|| {
            all.iter()
                .filter(|i| i.trace_id == self.trace_id)
                .find_map(|i| group_of(&i.attrs))
        });
        let mut metadata = self
            .str("metadata")
            .and_then(json_object)
            .unwrap_or_default();
        for (k, v) in &self.attrs {
            if let Some(key) = k.strip_prefix("metadata.") {
                metadata.insert(key.to_string(), v.clone());
            }
        }
        TraceHeader {
            trace_id: self.trace_id,
            name,
            workflow,
            group_id,
            metadata,
        }
    }

    /// A span agentrace's export wrote, given back as it was stored.
    fn agentrace_span(&self, kind: SpanKind) -> Span {
        let a = &self.attrs;
        let mut attributes = Map::new();
        for (k, v) in a {
            if let Some(key) = k.strip_prefix("agentrace.") {
                if !matches!(key, "span.kind" | "status" | "error.data") {
                    attributes.insert(key.to_string(), restore_json(key, v));
                }
            } else if !CONVENTIONS.iter().any(|p| k.starts_with(p)) {
                attributes.insert(k.clone(), v.clone());
            }
        }
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value.filter(|v| !v.is_null()) {
                attributes.entry(key.to_string()).or_insert(v);
            }
        };
        let get = |key: &str| a.get(key).cloned();
        let name = match kind {
            SpanKind::Agent => {
                put("agent", get("gen_ai.agent.name"));
                put("input", get("input.value"));
                put("output", get("output.value"));
                strip(&self.span.name, "invoke_agent ")
            }
            SpanKind::Function => {
                put("tool", get("gen_ai.tool.name"));
                put("call_id", get("gen_ai.tool.call.id"));
                put("input", get("gen_ai.tool.call.arguments"));
                put("output", get("gen_ai.tool.call.result"));
                strip(&self.span.name, "execute_tool ")
            }
            SpanKind::Generation => {
                let model = self.str("gen_ai.request.model");
                put("model", model.map(|m| json!(m)));
                if let Some(response_model) = self.str("gen_ai.response.model")
                    && Some(response_model) != model
                {
                    put("response_model", Some(json!(response_model)));
                }
                put(
                    "usage",
                    usage_of(
                        a,
                        &["gen_ai.usage.input_tokens"],
                        &["gen_ai.usage.output_tokens"],
                        &["llm.token_count.total"],
                    ),
                );
                put(
                    "input",
                    self.str("input.value")
                        .map(|t| serde_json::from_str::<Value>(t).unwrap_or_else(|_| json!(t))),
                );
                put("output", get("output.value"));
                put("tool_calls", output_tool_calls(a));
                put(
                    "finish_reason",
                    a.get("gen_ai.response.finish_reasons")
                        .and_then(|r| r.get(0))
                        .cloned(),
                );
                put("response_id", get("gen_ai.response.id"));
                strip(&self.span.name, "chat ")
            }
            SpanKind::Custom | SpanKind::Handoff | SpanKind::Command => self.span.name.clone(),
        };
        let (code, message) = self.status_parts();
        let status = self
            .str("agentrace.status")
            .and_then(Status::parse)
            .unwrap_or_else(|| status_from_code(code, self.span.end_time_unix_nano));
        let error = (status == Status::Error).then(|| {
            let data = self
                .str("agentrace.error.data")
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_else(|| json!({}));
            ErrorInfo::with_data(if message.is_empty() { "error" } else { message }, data)
        });
        let events = self
            .span
            .events
            .iter()
            .filter(|e| {
                !(e.name == "exception"
                    && e.attributes.iter().any(|kv| {
                        kv.key == "exception.type"
                            && kv.value.as_ref().map(any_json) == Some(json!("agentrace.error"))
                    }))
            })
            .map(|e| Event {
                name: e.name.clone(),
                time: micros(e.time_unix_nano),
                attributes: otel_attributes(&e.attributes)
                    .into_iter()
                    .map(|(k, v)| {
                        let v = restore_json(&k, &v);
                        (k, v)
                    })
                    .collect(),
            })
            .collect();
        Span {
            span_id: self.span_id,
            trace_id: self.trace_id,
            parent_id: self.parent_id,
            kind,
            name,
            status,
            started_at: micros(self.span.start_time_unix_nano),
            ended_at: (status != Status::Running && self.span.end_time_unix_nano != 0)
                .then(|| micros(self.span.end_time_unix_nano)),
            attributes,
            events,
            error,
        }
    }

    /// A span from any other SDK (see the module docs).
    fn foreign_span(&self) -> Span {
        let a = &self.attrs;
        let kind = foreign_kind(a);
        let mut attributes = a.clone();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value.filter(|v| !v.is_null()) {
                attributes.entry(key.to_string()).or_insert(v);
            }
        };
        let first = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k).cloned());
        match kind {
            SpanKind::Generation => {
                put(
                    "model",
                    first(&[
                        "gen_ai.response.model",
                        "gen_ai.request.model",
                        "llm.model_name",
                    ]),
                );
                put(
                    "usage",
                    usage_of(
                        a,
                        &[
                            "gen_ai.usage.input_tokens",
                            "gen_ai.usage.prompt_tokens",
                            "llm.token_count.prompt",
                        ],
                        &[
                            "gen_ai.usage.output_tokens",
                            "gen_ai.usage.completion_tokens",
                            "llm.token_count.completion",
                        ],
                        &["gen_ai.usage.total_tokens", "llm.token_count.total"],
                    ),
                );
                put("input", content(a, "gen_ai.input.messages", "input"));
                put("output", content(a, "gen_ai.output.messages", "output"));
            }
            SpanKind::Function => {
                put("tool", first(&["gen_ai.tool.name", "tool.name"]));
                put("call_id", first(&["gen_ai.tool.call.id"]));
                put(
                    "input",
                    first(&["gen_ai.tool.call.arguments", "input.value"]),
                );
                put(
                    "output",
                    first(&["gen_ai.tool.call.result", "output.value"]),
                );
            }
            SpanKind::Agent => {
                put("agent", first(&["gen_ai.agent.name"]));
                put("input", first(&["input.value"]));
                put("output", first(&["output.value"]));
            }
            SpanKind::Custom | SpanKind::Handoff | SpanKind::Command => {}
        }
        let span = self.span;
        let span_kind = match span.kind {
            1 => Some("internal"),
            2 => Some("server"),
            3 => Some("client"),
            4 => Some("producer"),
            5 => Some("consumer"),
            _ => None,
        };
        put("otel.span_kind", span_kind.map(|k| json!(k)));
        let (scope_name, scope_version) = self.scope;
        put(
            "otel.scope.name",
            (!scope_name.is_empty()).then(|| json!(scope_name)),
        );
        put(
            "otel.scope.version",
            (!scope_version.is_empty()).then(|| json!(scope_version)),
        );
        put(
            "otel.trace_state",
            (!span.trace_state.is_empty()).then(|| json!(span.trace_state)),
        );
        if !span.links.is_empty() {
            let links: Vec<Value> = span
                .links
                .iter()
                .map(|l| {
                    json!({
                        "trace_id": hex(&l.trace_id),
                        "span_id": hex(&l.span_id),
                        "attributes": otel_attributes(&l.attributes),
                    })
                })
                .collect();
            put("otel.links", Some(Value::Array(links)));
        }
        for (k, v) in self.resource {
            put(&format!("resource.{k}"), Some(v.clone()));
        }

        let (code, message) = self.status_parts();
        let status = status_from_code(code, span.end_time_unix_nano);
        let error = (status == Status::Error).then(|| {
            let exception: Map<String, Value> = span
                .events
                .iter()
                .find(|e| e.name == "exception")
                .map(|e| {
                    otel_attributes(&e.attributes)
                        .into_iter()
                        .map(|(k, v)| match k.strip_prefix("exception.") {
                            Some(short) => (short.to_string(), v),
                            None => (k, v),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let message = if !message.is_empty() {
                message.to_string()
            } else {
                exception
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string()
            };
            ErrorInfo::with_data(message, Value::Object(exception))
        });
        Span {
            span_id: self.span_id,
            trace_id: self.trace_id,
            parent_id: self.parent_id,
            kind,
            name: span.name.clone(),
            status,
            started_at: micros(span.start_time_unix_nano),
            ended_at: (span.end_time_unix_nano != 0).then(|| micros(span.end_time_unix_nano)),
            attributes,
            events: span
                .events
                .iter()
                .map(|e| Event {
                    name: e.name.clone(),
                    time: micros(e.time_unix_nano),
                    attributes: otel_attributes(&e.attributes),
                })
                .collect(),
            error,
        }
    }
}

/// The attributes the export derives from a span's own; dropped when it is read back.
const CONVENTIONS: &[&str] = &[
    "gen_ai.",
    "llm.",
    "openinference.",
    "input.",
    "output.",
    "tool.",
    "process.",
];

/// Attribute keys whose values are text even when the text is JSON.
const TEXT_KEYS: &[&str] = &[
    "input",
    "output",
    "stdout",
    "stderr",
    "stdout_tail",
    "stderr_tail",
    "script",
    "content",
    "text",
    "arguments",
    "instructions",
    "prompt",
];

/// A value the export may have written as JSON text (objects, arrays of mixed or no values):
/// parsed back, unless `key` holds text.
fn restore_json(key: &str, v: &Value) -> Value {
    if let Value::String(s) = v
        && !TEXT_KEYS.contains(&key)
        && (s.starts_with('{') || s.starts_with('['))
        && let Ok(parsed) = serde_json::from_str::<Value>(s)
        && (parsed.is_object() || parsed.is_array())
    {
        return parsed;
    }
    v.clone()
}

fn json_object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

fn strip(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
}

fn group_of(attrs: &Map<String, Value>) -> Option<String> {
    ["session.id", "gen_ai.conversation.id"]
        .iter()
        .find_map(|k| attrs.get(*k).and_then(Value::as_str))
        .filter(|g| !g.is_empty())
        .map(str::to_string)
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn foreign_kind(a: &Map<String, Value>) -> SpanKind {
    let operation = a.get("gen_ai.operation.name").and_then(Value::as_str);
    match operation {
        Some("chat" | "text_completion" | "generate_content" | "embeddings") => {
            return SpanKind::Generation;
        }
        Some("invoke_agent" | "create_agent") => return SpanKind::Agent,
        Some("execute_tool") => return SpanKind::Function,
        _ => {}
    }
    match a
        .get("openinference.span.kind")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("LLM") => SpanKind::Generation,
        Some("AGENT") => SpanKind::Agent,
        Some("TOOL") => SpanKind::Function,
        _ => SpanKind::Custom,
    }
}

/// A token count: an int, an integral double, or a string of one.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `usage` from the first present key of each list; `None` without input or output counts.
fn usage_of(
    a: &Map<String, Value>,
    input: &[&str],
    output: &[&str],
    total: &[&str],
) -> Option<Value> {
    let first = |keys: &[&str]| keys.iter().find_map(|k| a.get(*k).and_then(count));
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

/// The messages of a generation: the GenAI attribute (JSON text parsed), else OpenInference's
/// `{side}.value` (parsed when `{side}.mime_type` says JSON).
fn content(a: &Map<String, Value>, semconv: &str, side: &str) -> Option<Value> {
    if let Some(v) = a.get(semconv) {
        return Some(match v {
            Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
            other => other.clone(),
        });
    }
    let value = a.get(&format!("{side}.value"))?;
    let is_json = a
        .get(&format!("{side}.mime_type"))
        .and_then(Value::as_str)
        .is_some_and(|m| m.contains("json"));
    Some(match value {
        Value::String(s) if is_json => serde_json::from_str(s).unwrap_or_else(|_| value.clone()),
        other => other.clone(),
    })
}

/// The tool calls of the response, from the OpenInference attributes the export writes:
/// `[{id, name, arguments}]`, the engine's shape.
fn output_tool_calls(a: &Map<String, Value>) -> Option<Value> {
    let mut calls = Vec::new();
    for j in 0.. {
        let p = format!("llm.output_messages.0.message.tool_calls.{j}.tool_call");
        let id = a.get(&format!("{p}.id"));
        let name = a.get(&format!("{p}.function.name"));
        let arguments = a.get(&format!("{p}.function.arguments"));
        if id.is_none() && name.is_none() && arguments.is_none() {
            break;
        }
        let mut call = Map::new();
        call.insert("id".into(), id.cloned().unwrap_or(Value::Null));
        call.insert("name".into(), name.cloned().unwrap_or(Value::Null));
        if let Some(arguments) = arguments {
            call.insert("arguments".into(), arguments.clone());
        }
        calls.push(Value::Object(call));
    }
    (!calls.is_empty()).then_some(Value::Array(calls))
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

mod b64 {
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

/// OTLP/JSON → the protobuf messages, with the spec's encodings (hex ids, lowerCamelCase
/// names, 64-bit integers as numbers or strings, enums as integers) and what senders write
/// besides (proto field names, enum names, base64 ids, empty `arrayValue`s, nulls for defaults).
mod json {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
    use serde_json::{Map, Value};

    type Result<T> = std::result::Result<T, String>;

    use crate::ingest::json_kind as kind;

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

    fn integer<T: TryFrom<i128> + Default>(
        o: &Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Result<T> {
        let Some(v) = get(o, key) else {
            return Ok(T::default());
        };
        let n = integer_of(v)
            .ok_or_else(|| format!("{}: expected an integer, got {v}", join(at, key)))?;
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
        super::b64::decode(&text)
            .ok_or_else(|| format!("{}: not a hex id: {text:?}", join(at, key)))
    }

    pub fn request(v: &Value) -> Result<ExportTraceServiceRequest> {
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
                super::b64::decode(text)
                    .ok_or_else(|| format!("{}: not base64", join(at, "bytesValue")))?,
            )
        } else {
            // No value, or one of a kind this reader does not know: empty, as the spec says.
            return Ok(AnyValue { value: None });
        };
        Ok(AnyValue { value: Some(value) })
    }
}

#[cfg(test)]
#[path = "tests/otlp.rs"]
mod tests;
