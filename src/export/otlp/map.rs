//! Stored traces → OTLP spans, with the OpenTelemetry GenAI semantic conventions (`gen_ai.*`)
//! and the OpenInference attributes (`openinference.span.kind`, `llm.*`, `input.value`, …) that
//! Arize Phoenix and other LLM-aware backends read.
//!
//! - The trace becomes one root span, `invoke_workflow {trace name}`; spans without a stored
//!   parent hang under it. Its id is derived from the stored trace (see [`root_span_id`]), so
//!   exporting the same trace twice sends the same spans, and a backend deduplicates them.
//! - Every other span keeps its stored id, parent, start and end (microseconds → nanoseconds);
//!   a span that never ended ends with its trace and says `agentrace.status=running`.
//! - Stored attributes that a convention does not cover are kept as `agentrace.<key>` (objects as
//!   JSON text), so nothing `show` prints is lost.
//! - MCP spans follow the OpenTelemetry MCP conventions as well: a call to an MCP server is the
//!   `execute_tool` span and the MCP client span in one (`tools/call {tool}`, kind CLIENT,
//!   `mcp.method.name`, `network.transport`, …), a server's tool list a `tools/list` client span
//!   (see [`mcp_call`] and [`mcp_listing`]). Their `mcp.*` attributes also travel as
//!   `agentrace.mcp.*`, so a trace read back has them exactly.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status as OtlpStatus, span, status,
};
use serde_json::{Map, Value, json};

use crate::trace::context::{TraceContext, is_reserved};
use crate::trace::{ErrorInfo, Span, SpanId, SpanKind, Status, Timestamp, TraceDoc, mcp};

/// W3C trace flags: sampled.
const SAMPLED: u32 = 0x01;
/// OTLP span flags: whether the parent is remote is known (bit 8), and it is (bit 9).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// One export request holding `docs` under one resource.
pub fn request(docs: &[TraceDoc], resource: Resource) -> ExportTraceServiceRequest {
    let spans = docs.iter().flat_map(trace_spans).collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "agentrace".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The resource: `service.name`, the SDK attributes, then `extra` (OTEL_RESOURCE_ATTRIBUTES,
/// which may override `service.name` only when OTEL_SERVICE_NAME is unset — the caller decides
/// by what it passes as `service_name`).
pub fn resource(service_name: &str, extra: &[(String, String)]) -> Resource {
    let mut attrs = Attrs::default();
    for (k, v) in extra {
        if k != "service.name" {
            attrs.str(k, v);
        }
    }
    attrs.str("service.name", service_name);
    attrs.str("telemetry.sdk.name", "agentrace");
    attrs.str("telemetry.sdk.language", "rust");
    attrs.str("telemetry.sdk.version", env!("CARGO_PKG_VERSION"));
    Resource {
        attributes: attrs.0,
        ..Default::default()
    }
}

fn nanos(t: Timestamp) -> u64 {
    u64::try_from(t.micros()).unwrap_or(0).saturating_mul(1000)
}

/// When the trace ended; for one still running (or killed before it could say), the latest
/// time anything in it was seen.
pub fn trace_end(doc: &TraceDoc) -> Timestamp {
    if let Some(end) = doc.trace.ended_at {
        return end;
    }
    let mut latest = doc.trace.started_at;
    for s in &doc.spans {
        latest = latest.max(s.started_at);
        if let Some(e) = s.ended_at {
            latest = latest.max(e);
        }
        for ev in &s.events {
            latest = latest.max(ev.time);
        }
    }
    latest
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The root span's id: FNV-1a (a fixed, documented hash, unlike std's `DefaultHasher`) of the
/// trace id, the trace's start time and a counter, skipping zero and any stored span id.
///
/// Derived rather than stored: exporting the same trace again gives the same id with no schema
/// change, and traces recorded before this exporter existed get one too. The start time is in it
/// because a trace id alone is not unique across stores: two runs that joined the same
/// `TRACEPARENT` (an outer run and an `agentrace run` inside one of its command steps, each with
/// its own store) share a trace id, and their roots must not share a span id.
pub fn root_span_id(doc: &TraceDoc) -> SpanId {
    let mut input = Vec::with_capacity(32);
    input.extend_from_slice(&doc.trace.trace_id.0);
    input.extend_from_slice(&doc.trace.started_at.micros().to_le_bytes());
    for counter in 0u64.. {
        let mut bytes = input.clone();
        bytes.extend_from_slice(&counter.to_le_bytes());
        let id = SpanId(fnv1a(&bytes).to_be_bytes());
        if id.0 != [0; 8] && doc.spans.iter().all(|s| s.span_id != id) {
            return id;
        }
    }
    unreachable!("a u64 counter finds a free id")
}

/// Attributes in insertion order.
#[derive(Default)]
struct Attrs(Vec<KeyValue>);

impl Attrs {
    fn put(&mut self, key: &str, value: any_value::Value) {
        self.0.retain(|kv| kv.key != key);
        self.0.push(KeyValue {
            key: key.to_string(),
            value: Some(AnyValue { value: Some(value) }),
            key_strindex: 0,
        });
    }

    fn str(&mut self, key: &str, value: impl Into<String>) {
        self.put(key, any_value::Value::StringValue(value.into()));
    }

    fn int(&mut self, key: &str, value: i64) {
        self.put(key, any_value::Value::IntValue(value));
    }

    /// A JSON value: scalars as themselves, arrays of one scalar type as arrays, anything else
    /// as JSON text; null is left out.
    fn json(&mut self, key: &str, value: &Value) {
        if let Some(v) = any_value(value) {
            self.put(key, v);
        }
    }
}

fn scalar(value: &Value) -> Option<any_value::Value> {
    Some(match value {
        Value::String(s) => any_value::Value::StringValue(s.clone()),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64()?),
        },
        _ => return None,
    })
}

fn any_value(value: &Value) -> Option<any_value::Value> {
    match value {
        Value::Null => None,
        Value::Array(items) if !items.is_empty() => {
            let values: Option<Vec<any_value::Value>> = items.iter().map(scalar).collect();
            let same_type = values.as_ref().is_some_and(|vs| {
                vs.iter()
                    .all(|v| std::mem::discriminant(v) == std::mem::discriminant(&vs[0]))
            });
            match values {
                Some(vs) if same_type => Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vs
                        .into_iter()
                        .map(|v| AnyValue { value: Some(v) })
                        .collect(),
                })),
                _ => Some(any_value::Value::StringValue(value.to_string())),
            }
        }
        Value::Array(_) | Value::Object(_) => {
            Some(any_value::Value::StringValue(value.to_string()))
        }
        other => scalar(other),
    }
}

fn text(attrs: &Map<String, Value>, key: &str) -> Option<String> {
    attrs.get(key).and_then(Value::as_str).map(str::to_string)
}

fn status_of(status: Status, error: Option<&ErrorInfo>) -> (OtlpStatus, Option<String>) {
    let (code, message) = match status {
        Status::Ok => (status::StatusCode::Ok, String::new()),
        Status::Error => (
            status::StatusCode::Error,
            error
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "error".into()),
        ),
        Status::Cancelled => (status::StatusCode::Error, "cancelled".to_string()),
        Status::Skipped | Status::Running => (status::StatusCode::Unset, String::new()),
    };
    let exception = (status == Status::Error).then(|| message.clone());
    (
        OtlpStatus {
            message,
            code: code as i32,
        },
        exception,
    )
}

fn exception_event(message: String, at: Timestamp) -> span::Event {
    let mut attrs = Attrs::default();
    attrs.str("exception.type", "agentrace.error");
    attrs.str("exception.message", message);
    span::Event {
        time_unix_nano: nanos(at),
        name: "exception".into(),
        attributes: attrs.0,
        dropped_attributes_count: 0,
    }
}

/// Every OTLP span of one trace: the root first, then the stored spans in tree order.
pub fn trace_spans(doc: &TraceDoc) -> Vec<OtlpSpan> {
    let t = &doc.trace;
    let trace_id = t.trace_id.0.to_vec();
    let root_id = root_span_id(doc);
    let end = trace_end(doc);
    let context = TraceContext::recorded(&t.metadata);
    let joined = context.as_ref().filter(|c| c.parent.trace_id == t.trace_id);
    let trace_state = context
        .as_ref()
        .and_then(|c| c.tracestate.clone())
        .unwrap_or_default();

    let mut attrs = Attrs::default();
    attrs.str("gen_ai.operation.name", "invoke_workflow");
    attrs.str("gen_ai.workflow.name", t.name.clone());
    attrs.str("openinference.span.kind", "CHAIN");
    attrs.str("agentrace.trace_id", t.trace_id.to_string());
    attrs.str("agentrace.workflow", t.workflow.clone());
    attrs.str("agentrace.status", t.status.as_str());
    if let Some(group) = &t.group_id {
        attrs.str("gen_ai.conversation.id", group.clone());
        attrs.str("session.id", group.clone());
        attrs.str("agentrace.group_id", group.clone());
    }
    let metadata: Map<String, Value> = t
        .metadata
        .iter()
        .filter(|(k, _)| !is_reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (key, value) in &metadata {
        attrs.json(&format!("agentrace.metadata.{key}"), value);
    }
    if !metadata.is_empty() {
        attrs.str("metadata", Value::Object(metadata).to_string());
    }
    attrs.int("agentrace.usage.input_tokens", t.usage.input_tokens as i64);
    attrs.int(
        "agentrace.usage.output_tokens",
        t.usage.output_tokens as i64,
    );
    attrs.int("agentrace.usage.total_tokens", t.usage.total_tokens as i64);
    if let Some(cost) = t.cost_usd {
        attrs.json("agentrace.cost_usd", &json!(cost));
    }
    if let Some(pid) = t.pid {
        attrs.int("process.pid", i64::from(pid));
    }
    let (status, exception) = status_of(t.status, t.error.as_ref());
    let mut events = Vec::new();
    if let Some(message) = exception {
        if let Some(data) = t.error.as_ref().map(|e| &e.data).filter(|d| !is_empty(d)) {
            attrs.json("agentrace.error.data", &Value::String(data.to_string()));
        }
        events.push(exception_event(message, end));
    }
    let links = match (&context, joined) {
        (Some(c), None) => vec![span::Link {
            trace_id: c.parent.trace_id.0.to_vec(),
            span_id: c.parent.span_id.0.to_vec(),
            trace_state: c.tracestate.clone().unwrap_or_default(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            flags: u32::from(c.parent.flags) | HAS_IS_REMOTE | IS_REMOTE,
        }],
        _ => Vec::new(),
    };
    let root = OtlpSpan {
        trace_id: trace_id.clone(),
        span_id: root_id.0.to_vec(),
        trace_state: trace_state.clone(),
        parent_span_id: joined
            .map(|c| c.parent.span_id.0.to_vec())
            .unwrap_or_default(),
        flags: SAMPLED | HAS_IS_REMOTE | if joined.is_some() { IS_REMOTE } else { 0 },
        name: format!("invoke_workflow {}", t.name),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: nanos(t.started_at),
        end_time_unix_nano: nanos(end),
        attributes: attrs.0,
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links,
        dropped_links_count: 0,
        status: Some(status),
    };
    let mut out = Vec::with_capacity(doc.spans.len() + 1);
    out.push(root);
    for s in &doc.spans {
        out.push(step_span(s, &trace_id, root_id, end, &trace_state));
    }
    out
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn step_span(
    s: &Span,
    trace_id: &[u8],
    root: SpanId,
    trace_end: Timestamp,
    trace_state: &str,
) -> OtlpSpan {
    let mut attrs = Attrs::default();
    let (name, consumed): (String, &[&str]) = match s.kind {
        SpanKind::Generation => (generation(s, &mut attrs), GENERATION_KEYS),
        SpanKind::Agent => (agent(s, &mut attrs), AGENT_KEYS),
        SpanKind::Function if s.mcp_server().is_some() => (mcp_call(s, &mut attrs), FUNCTION_KEYS),
        SpanKind::Function => (function(s, &mut attrs), FUNCTION_KEYS),
        SpanKind::McpTools => (mcp_listing(s, &mut attrs), &[]),
        SpanKind::Handoff => {
            attrs.str("openinference.span.kind", "CHAIN");
            if let Some(to) = text(&s.attributes, "to_agent") {
                attrs.str("gen_ai.agent.name", to);
            }
            (s.name.clone(), &[])
        }
        SpanKind::Command => {
            attrs.str("openinference.span.kind", "CHAIN");
            if let Some(pid) = s.attributes.get("pid").and_then(Value::as_i64) {
                attrs.int("process.pid", pid);
            }
            if let Some(code) = s.attributes.get("exit_code").and_then(Value::as_i64) {
                attrs.int("process.exit.code", code);
            }
            (s.name.clone(), &[])
        }
        SpanKind::Custom => {
            attrs.str("openinference.span.kind", "CHAIN");
            (s.name.clone(), &[])
        }
        SpanKind::Score => {
            attrs.str("openinference.span.kind", "EVALUATOR");
            attrs.str("gen_ai.evaluation.name", &s.name);
            (s.name.clone(), &[])
        }
    };
    attrs.str("agentrace.span.kind", s.kind.as_str());
    attrs.str("agentrace.status", s.status.as_str());
    for (key, value) in &s.attributes {
        if !consumed.contains(&key.as_str()) {
            attrs.json(&format!("agentrace.{key}"), value);
        }
    }
    let end = s.ended_at.unwrap_or(trace_end).max(s.started_at);
    let mut events: Vec<span::Event> = s
        .events
        .iter()
        .map(|e| {
            let mut ea = Attrs::default();
            for (k, v) in &e.attributes {
                ea.json(k, v);
            }
            span::Event {
                time_unix_nano: nanos(e.time),
                name: e.name.clone(),
                attributes: ea.0,
                dropped_attributes_count: 0,
            }
        })
        .collect();
    let (status, exception) = status_of(s.status, s.error.as_ref());
    if let Some(message) = exception {
        if let Some(data) = s.error.as_ref().map(|e| &e.data).filter(|d| !is_empty(d)) {
            attrs.json("agentrace.error.data", &Value::String(data.to_string()));
        }
        events.push(exception_event(message, end));
    }
    OtlpSpan {
        trace_id: trace_id.to_vec(),
        span_id: s.span_id.0.to_vec(),
        trace_state: trace_state.to_string(),
        parent_span_id: s.parent_id.unwrap_or(root).0.to_vec(),
        flags: SAMPLED | HAS_IS_REMOTE,
        name,
        kind: if is_client(s) {
            span::SpanKind::Client as i32
        } else {
            span::SpanKind::Internal as i32
        },
        start_time_unix_nano: nanos(s.started_at),
        end_time_unix_nano: nanos(end),
        attributes: attrs.0,
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Some(status),
    }
}

/// Whether a span is a request to another process: a model call, an MCP server's tool list
/// (unless it came from the run's cache) and a call to an MCP server.
fn is_client(s: &Span) -> bool {
    match s.kind {
        SpanKind::Generation => true,
        SpanKind::McpTools => !s.mcp_cached(),
        SpanKind::Function => s.mcp_server().is_some(),
        _ => false,
    }
}

const AGENT_KEYS: &[&str] = &["agent", "input", "output"];
const FUNCTION_KEYS: &[&str] = &["tool", "call_id", "input", "output"];
/// The generation attributes the conventions carry (not copied as `agentrace.*`).
///
/// `response_model` is not among them: `gen_ai.response.model` is the request's model when none
/// was recorded, so the stored value is kept as `agentrace.response_model` too, and a trace read
/// back (a pushing run's) has it exactly when it was stored.
const GENERATION_KEYS: &[&str] = &[
    "model",
    "usage",
    "input",
    "output",
    "tool_calls",
    "finish_reason",
    "response_id",
];

fn agent(s: &Span, attrs: &mut Attrs) -> String {
    let name = text(&s.attributes, "agent").unwrap_or_else(|| s.name.clone());
    attrs.str("gen_ai.operation.name", "invoke_agent");
    attrs.str("gen_ai.agent.name", name.clone());
    attrs.str("openinference.span.kind", "AGENT");
    if let Some(input) = text(&s.attributes, "input") {
        attrs.str("input.value", input);
    }
    if let Some(output) = text(&s.attributes, "output") {
        attrs.str("output.value", output);
    }
    format!("invoke_agent {name}")
}

fn function(s: &Span, attrs: &mut Attrs) -> String {
    let name = text(&s.attributes, "tool").unwrap_or_else(|| s.name.clone());
    attrs.str("gen_ai.operation.name", "execute_tool");
    attrs.str("gen_ai.tool.name", name.clone());
    attrs.str("gen_ai.tool.type", "function");
    attrs.str("tool.name", name.clone());
    attrs.str("openinference.span.kind", "TOOL");
    if let Some(id) = text(&s.attributes, "call_id") {
        attrs.str("gen_ai.tool.call.id", id);
    }
    if let Some(input) = text(&s.attributes, "input") {
        attrs.str("gen_ai.tool.call.arguments", input.clone());
        attrs.str("input.value", input);
        attrs.str("input.mime_type", "application/json");
    }
    if let Some(output) = text(&s.attributes, "output") {
        attrs.str("gen_ai.tool.call.result", output.clone());
        attrs.str("output.value", output);
    }
    format!("execute_tool {name}")
}

/// A call that went to an MCP server: an `execute_tool` span (as [`function`] maps any tool
/// call) that is also the MCP client span of the `tools/call` request, as the OpenTelemetry MCP
/// conventions have it: named `tools/call {tool}`, with `mcp.method.name`, the transport, the
/// session and `error.type` = `tool_error` when the result said `isError`.
fn mcp_call(s: &Span, attrs: &mut Attrs) -> String {
    let tool = function(s, attrs);
    let tool = tool
        .strip_prefix("execute_tool ")
        .unwrap_or(&tool)
        .to_string();
    attrs.str("mcp.method.name", "tools/call");
    mcp_transport(s, attrs);
    if s.attributes.get(mcp::IS_ERROR) == Some(&Value::Bool(true)) {
        attrs.str("error.type", "tool_error");
    } else if s.status == Status::Error {
        attrs.str("error.type", "_OTHER");
    }
    format!("tools/call {tool}")
}

/// An MCP server's tool list: the MCP client span of `tools/list` (no `gen_ai.operation.name`:
/// the conventions keep that for tool calls), named by the method alone as the conventions say
/// when there is no tool or prompt to name, with the tool names as its OpenInference output
/// (a CHAIN, as OpenInference's own instrumentation of the Agents SDK maps `mcp_tools`: listing
/// tools is a step of the agent, not a tool call). The server's name stays in
/// `agentrace.mcp.server`, and the span's own name in `agentrace.span.name` when it differs.
fn mcp_listing(s: &Span, attrs: &mut Attrs) -> String {
    attrs.str("mcp.method.name", "tools/list");
    mcp_transport(s, attrs);
    if s.status == Status::Error {
        attrs.str("error.type", "_OTHER");
    }
    attrs.str("openinference.span.kind", "CHAIN");
    if let Some(tools) = s.attributes.get(mcp::TOOLS) {
        attrs.str("output.value", tools.to_string());
        attrs.str("output.mime_type", "application/json");
    }
    if s.attributes.get(mcp::SERVER).and_then(Value::as_str) != Some(s.name.as_str()) {
        attrs.str("agentrace.span.name", s.name.clone());
    }
    "tools/list".into()
}

/// The conventions' transport attributes of an MCP span: `network.transport` `pipe` (stdio)
/// or `tcp` (streamable HTTP, with `network.protocol.name` `http` and the URL's
/// `server.address` and `server.port`), `mcp.protocol.version`, `mcp.session.id`.
fn mcp_transport(s: &Span, attrs: &mut Attrs) {
    let a = &s.attributes;
    match a.get(mcp::TRANSPORT).and_then(Value::as_str) {
        Some(mcp::STDIO) => attrs.str("network.transport", "pipe"),
        Some(mcp::STREAMABLE_HTTP) => {
            attrs.str("network.transport", "tcp");
            attrs.str("network.protocol.name", "http");
            if let Some(url) = text(a, mcp::URL).and_then(|u| reqwest::Url::parse(&u).ok())
                && let Some(host) = url.host_str()
            {
                attrs.str(
                    "server.address",
                    host.trim_start_matches('[').trim_end_matches(']'),
                );
                if let Some(port) = url.port_or_known_default() {
                    attrs.int("server.port", i64::from(port));
                }
            }
        }
        _ => {}
    }
    if let Some(version) = text(a, mcp::PROTOCOL_VERSION) {
        attrs.str("mcp.protocol.version", version);
    }
    if let Some(session) = text(a, mcp::SESSION_ID) {
        attrs.str("mcp.session.id", session);
    }
}

/// `gen_ai.provider.name` from the endpoint: the well-known hosts by their convention names,
/// any other server by its host name.
pub fn provider_name(attributes: &Map<String, Value>) -> String {
    if attributes.get("offline") == Some(&Value::Bool(true)) {
        return "agentrace.offline".into();
    }
    let Some(url) = text(attributes, "base_url") else {
        return "openai".into();
    };
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port
            .split_once(']')
            .map_or(host_port, |(h, _)| h.trim_start_matches('['))
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    }
    .to_ascii_lowercase();
    let known = [
        ("api.openai.com", "openai"),
        ("openai.azure.com", "azure.ai.openai"),
        ("api.anthropic.com", "anthropic"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("aiplatform.googleapis.com", "gcp.vertex_ai"),
        ("api.mistral.ai", "mistral_ai"),
        ("api.groq.com", "groq"),
        ("api.deepseek.com", "deepseek"),
        ("api.x.ai", "x_ai"),
        ("api.cohere.com", "cohere"),
        ("api.perplexity.ai", "perplexity"),
        ("openrouter.ai", "openrouter"),
    ];
    for (suffix, name) in known {
        if host == suffix || host.ends_with(&format!(".{suffix}")) {
            return name.into();
        }
    }
    if host.is_empty() {
        "openai".into()
    } else {
        host
    }
}

/// The messages of a request in the GenAI conventions' shape: role plus typed parts.
fn semconv_messages(messages: &[Value]) -> Value {
    let converted: Vec<Value> = messages
        .iter()
        .map(|m| {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            let mut parts = Vec::new();
            match role {
                "tool" => parts.push(json!({
                    "type": "tool_call_response",
                    "id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "response": m.get("content").cloned().unwrap_or(Value::Null),
                })),
                _ => {
                    if let Some(c) = m.get("content").and_then(Value::as_str)
                        && !c.is_empty()
                    {
                        parts.push(json!({"type": "text", "content": c}));
                    }
                    for call in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        parts.push(tool_call_part(
                            call.get("id"),
                            call.pointer("/function/name"),
                            call.pointer("/function/arguments"),
                        ));
                    }
                }
            }
            json!({"role": role, "parts": parts})
        })
        .collect();
    Value::Array(converted)
}

fn tool_call_part(id: Option<&Value>, name: Option<&Value>, arguments: Option<&Value>) -> Value {
    let mut part = json!({"type": "tool_call", "id": id, "name": name});
    if let Some(args) = arguments.and_then(Value::as_str) {
        part["arguments"] = serde_json::from_str(args).unwrap_or(Value::String(args.into()));
    }
    part
}

fn generation(s: &Span, attrs: &mut Attrs) -> String {
    let a = &s.attributes;
    let model = text(a, "model").unwrap_or_else(|| s.name.clone());
    let response_model = text(a, "response_model").unwrap_or_else(|| model.clone());
    let provider = provider_name(a);
    attrs.str("gen_ai.operation.name", "chat");
    attrs.str("gen_ai.provider.name", provider.clone());
    attrs.str("gen_ai.request.model", model.clone());
    attrs.str("gen_ai.response.model", response_model.clone());
    if let Some(config) = a.get("model_config").and_then(Value::as_object) {
        if let Some(t) = config.get("temperature") {
            attrs.json("gen_ai.request.temperature", t);
        }
        if let Some(m) = config.get("max_tokens") {
            attrs.json("gen_ai.request.max_tokens", m);
        }
        if let Some(s) = config.get("seed") {
            attrs.json("gen_ai.request.seed", s);
        }
    }
    if let Some(id) = text(a, "response_id") {
        attrs.str("gen_ai.response.id", id);
    }
    // The OpenAI conventions' name for the API (the span keeps `agentrace.api` too, so that a
    // trace read back has its attribute as stored).
    match text(a, "api").as_deref() {
        Some("chat") => attrs.str("openai.api.type", "chat_completions"),
        Some("responses") => attrs.str("openai.api.type", "responses"),
        _ => {}
    }
    if let Some(reason) = text(a, "finish_reason") {
        attrs.json("gen_ai.response.finish_reasons", &json!([reason]));
    }
    attrs.str("openinference.span.kind", "LLM");
    attrs.str("llm.model_name", response_model);
    attrs.str("llm.provider", provider);
    if let Some(usage) = s.usage() {
        attrs.int("gen_ai.usage.input_tokens", usage.input_tokens as i64);
        attrs.int("gen_ai.usage.output_tokens", usage.output_tokens as i64);
        attrs.int("llm.token_count.prompt", usage.input_tokens as i64);
        attrs.int("llm.token_count.completion", usage.output_tokens as i64);
        attrs.int("llm.token_count.total", usage.total_tokens as i64);
    }
    // Messages only when content was captured: the stored span then has `input`.
    if let Some(messages) = a.get("input").and_then(Value::as_array) {
        attrs.str(
            "gen_ai.input.messages",
            semconv_messages(messages).to_string(),
        );
        attrs.str("input.value", Value::Array(messages.clone()).to_string());
        attrs.str("input.mime_type", "application/json");
        for (i, m) in messages.iter().enumerate() {
            let prefix = format!("llm.input_messages.{i}.message");
            if let Some(role) = m.get("role").and_then(Value::as_str) {
                attrs.str(&format!("{prefix}.role"), role);
            }
            if let Some(content) = m.get("content").and_then(Value::as_str) {
                attrs.str(&format!("{prefix}.content"), content);
            }
            if let Some(id) = m.get("tool_call_id").and_then(Value::as_str) {
                attrs.str(&format!("{prefix}.tool_call_id"), id);
            }
            for (j, call) in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let p = format!("{prefix}.tool_calls.{j}.tool_call");
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    attrs.str(&format!("{p}.id"), id);
                }
                if let Some(n) = call.pointer("/function/name").and_then(Value::as_str) {
                    attrs.str(&format!("{p}.function.name"), n);
                }
                if let Some(args) = call.pointer("/function/arguments").and_then(Value::as_str) {
                    attrs.str(&format!("{p}.function.arguments"), args);
                }
            }
        }
        let output = text(a, "output");
        let calls: Vec<&Value> = a
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        if output.is_some() || !calls.is_empty() {
            let mut parts = Vec::new();
            if let Some(o) = output.as_ref().filter(|o| !o.is_empty()) {
                parts.push(json!({"type": "text", "content": o}));
            }
            let out = "llm.output_messages.0.message";
            attrs.str(&format!("{out}.role"), "assistant");
            if let Some(o) = &output {
                attrs.str(&format!("{out}.content"), o.clone());
                attrs.str("output.value", o.clone());
            }
            for (j, call) in calls.iter().enumerate() {
                parts.push(tool_call_part(
                    call.get("id"),
                    call.get("name"),
                    call.get("arguments"),
                ));
                let p = format!("{out}.tool_calls.{j}.tool_call");
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    attrs.str(&format!("{p}.id"), id);
                }
                if let Some(n) = call.get("name").and_then(Value::as_str) {
                    attrs.str(&format!("{p}.function.name"), n);
                }
                if let Some(args) = call.get("arguments").and_then(Value::as_str) {
                    attrs.str(&format!("{p}.function.arguments"), args);
                }
            }
            let mut message = json!({"role": "assistant", "parts": parts});
            if let Some(reason) = text(a, "finish_reason") {
                message["finish_reason"] = Value::String(reason);
            }
            attrs.str("gen_ai.output.messages", json!([message]).to_string());
        }
    } else if let Some(calls) = a.get("tool_calls") {
        // Without content the calls' ids and names still say what the model asked for.
        attrs.json("agentrace.tool_calls", calls);
    }
    format!("chat {model}")
}
