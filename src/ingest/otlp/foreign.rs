//! Spans from any other OpenTelemetry SDK (the GenAI conventions, OpenInference, plain
//! spans), mapped onto agentrace's kinds and attributes:
//!
//! | agentrace | from |
//! |---|---|
//! | kind `generation` | `gen_ai.operation.name` chat, text_completion, generate_content, embeddings; else `openinference.span.kind` LLM |
//! | kind `agent` | `gen_ai.operation.name` invoke_agent, create_agent; else `openinference.span.kind` AGENT |
//! | kind `mcp_tools` | `mcp.method.name` tools/list (an MCP client's tool list) |
//! | kind `function` | `mcp.method.name` tools/call; `gen_ai.operation.name` execute_tool; else `openinference.span.kind` TOOL |
//! | kind `custom` | anything else (CHAIN, RETRIEVER, plain HTTP spans, …) |
//! | name | the span name (an MCP tool list's: its server's, when known) |
//! | `model` (generation) | `gen_ai.response.model`, `gen_ai.request.model`, `llm.model_name` |
//! | `usage` (generation) | `gen_ai.usage.input_tokens`/`output_tokens` (or `prompt_tokens`/`completion_tokens`), `llm.token_count.prompt`/`completion`/`total` |
//! | `input`, `output` (generation) | `gen_ai.input.messages`/`gen_ai.output.messages` (JSON text parsed), else `input.value`/`output.value` (parsed when `*.mime_type` is JSON) |
//! | `tool`, `call_id`, `input`, `output` (function) | `gen_ai.tool.name`/`tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.call.arguments`/`input.value`, `gen_ai.tool.call.result`/`output.value` |
//! | `agent`, `input`, `output` (agent) | `gen_ai.agent.name`, `input.value`, `output.value` |
//! | `mcp.server` (MCP spans) | `mcp.server`, `mcp.server.name`, else `server.address`(`:server.port`) |
//! | `mcp.transport`, `mcp.protocol_version`, `mcp.session_id`, `mcp.is_error` (MCP spans) | `network.transport` (pipe → `stdio`, tcp or quic → `streamable_http`), `mcp.protocol.version`, `mcp.session.id`, `error.type` = `tool_error` |
//! | `tool` (MCP call) | also `mcp.tool.name` (older drafts of the conventions), else the span name after `tools/call ` |
//! | `tools` (MCP tool list) | `output.value` when it is a JSON array of names (OpenInference) |
//! | every attribute | kept under its own key (a mapped key never replaces one the span has) |
//! | `otel.span_kind` | the OTel span kind: `internal`, `server`, `client`, `producer`, `consumer` |
//! | `otel.scope.name`, `otel.scope.version` | the instrumentation scope |
//! | `otel.trace_state`, `otel.links` | the W3C trace state; links as `[{trace_id, span_id, attributes}]` |
//! | `resource.<key>` | each resource attribute (`resource.service.name`, …) |
//! | status | `error` for STATUS_CODE_ERROR, with the status message (else the `exception` event's `exception.message`, else "error") and the `exception` event's attributes (`type`, `message`, `stacktrace`) as data; else `running` when the end time is 0; else `ok` |
//! | events | `{name, time, attributes}` |
//!
//! A [`TraceHeader`] comes for each trace whose root span (no parent) is in the request: name =
//! the root's name, workflow = the resource's `service.name` (unless it is the SDKs'
//! `unknown_service…` default) else the root's name, group id = `session.id` or
//! `gen_ai.conversation.id` of the root (else of any span of the trace in the request),
//! metadata = the root's `metadata.<key>` attributes and its `metadata` JSON object (the
//! OpenInference form). A trace whose root has not come gets no header.

use serde_json::{Map, Value, json};

use super::{Incoming, json_object, micros, otel_attributes, status_from_code, usage_of};
use crate::ingest::TraceHeader;
use crate::trace::{ErrorInfo, Event, Span, SpanKind, Status, mcp};

impl Incoming<'_> {
    pub(super) fn foreign_header(&self, all: &[Incoming<'_>]) -> TraceHeader {
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

    /// A span from any other SDK (see the module docs).
    pub(super) fn foreign_span(&self) -> Span {
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
                if a.get("mcp.method.name").is_some() {
                    for (key, value) in mcp_attributes(a) {
                        put(key, Some(value));
                    }
                    let name = self.span.name.strip_prefix("tools/call ");
                    put(
                        "tool",
                        first(&["gen_ai.tool.name", "tool.name", "mcp.tool.name"])
                            .or_else(|| name.map(|n| json!(n))),
                    );
                }
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
            SpanKind::McpTools => {
                for (key, value) in mcp_attributes(a) {
                    put(key, Some(value));
                }
                // OpenInference writes the listed tool names as the span's JSON output.
                let names = a
                    .get("output.value")
                    .and_then(Value::as_str)
                    .and_then(|t| serde_json::from_str::<Vec<String>>(t).ok());
                put(mcp::TOOLS, names.map(|n| json!(n)));
            }
            SpanKind::Custom | SpanKind::Handoff | SpanKind::Command | SpanKind::Score => {}
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

        // A tool list is named after its server, as agentrace's are, when the span says which.
        let name = match (kind, attributes.get(mcp::SERVER).and_then(Value::as_str)) {
            (SpanKind::McpTools, Some(server)) => server.to_string(),
            _ => span.name.clone(),
        };
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
            name,
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

fn group_of(attrs: &Map<String, Value>) -> Option<String> {
    ["session.id", "gen_ai.conversation.id"]
        .iter()
        .find_map(|k| attrs.get(*k).and_then(Value::as_str))
        .filter(|g| !g.is_empty())
        .map(str::to_string)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The attributes of an MCP client span from another SDK, as agentrace's MCP spans carry them:
/// `mcp.server` from `mcp.server` or `mcp.server.name`, else the server's address (HTTP);
/// `mcp.transport` `stdio` for `network.transport` pipe, `streamable_http` for tcp or quic;
/// `mcp.protocol_version`, `mcp.session_id`; `mcp.is_error` when `error.type` is `tool_error`.
fn mcp_attributes(a: &Map<String, Value>) -> Vec<(&'static str, Value)> {
    let text = |k: &str| a.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let mut out = Vec::new();
    let address = text("server.address").map(|host| match a.get("server.port") {
        Some(port) if !port.is_null() => format!("{host}:{port}"),
        _ => host.to_string(),
    });
    if let Some(server) = text("mcp.server")
        .or_else(|| text("mcp.server.name"))
        .map(str::to_string)
        .or(address)
    {
        out.push((mcp::SERVER, json!(server)));
    }
    match text("network.transport") {
        Some("pipe") => out.push((mcp::TRANSPORT, json!(mcp::STDIO))),
        Some("tcp" | "quic") => out.push((mcp::TRANSPORT, json!(mcp::STREAMABLE_HTTP))),
        _ => {}
    }
    if let Some(version) = text("mcp.protocol.version") {
        out.push((mcp::PROTOCOL_VERSION, json!(version)));
    }
    if let Some(session) = text("mcp.session.id") {
        out.push((mcp::SESSION_ID, json!(session)));
    }
    if text("error.type") == Some("tool_error") {
        out.push((mcp::IS_ERROR, json!(true)));
    }
    out
}

fn foreign_kind(a: &Map<String, Value>) -> SpanKind {
    match a.get("mcp.method.name").and_then(Value::as_str) {
        Some("tools/list") => return SpanKind::McpTools,
        Some("tools/call") => return SpanKind::Function,
        _ => {}
    }
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
