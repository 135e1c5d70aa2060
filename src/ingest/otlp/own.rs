//! Reading agentrace's own OTLP export back: its spans become what they were when stored.
//!
//! [`crate::export::otlp`] sends a trace as a root span (`agentrace.trace_id`,
//! `agentrace.workflow`, …) over the real spans, which carry `agentrace.span.kind`,
//! `agentrace.status` and `agentrace.<attribute>` copies. Read back, the root becomes the
//! [`TraceHeader`] (name, workflow, group id, metadata) and not a span; its children get no
//! parent; each span gets back its kind, status, name, error (message and
//! `agentrace.error.data`), events (without the `exception` event the export adds) and
//! attributes, from the `agentrace.*` copies and from the conventions the export moved them to
//! (`gen_ai.request.model` → `model`, `input.value` → `input`, …); the convention copies
//! (`gen_ai.*`, `llm.*`, `openinference.*`, `input.*`, `output.*`, `tool.*`, `process.*`, and
//! the MCP conventions' `mcp.method.name`, `mcp.protocol.version`, `mcp.session.id`,
//! `network.*`, `server.*`, `error.type`) are dropped. An MCP call's name loses its
//! `tools/call ` prefix; a tool list (`tools/list`) is named after its server again. The export writes objects and mixed arrays as JSON text; such text is parsed back,
//! except under the keys that hold text (`input`, `output`, `stdout`, `stderr_tail`, …).
//! The root's own parent (a run that joined a `TRACEPARENT`) is not kept, and children whose
//! root came in another request keep the root's id as their parent.

use serde_json::{Map, Value, json};

use super::{Incoming, any_json, json_object, micros, otel_attributes, status_from_code, usage_of};
use crate::ingest::{IngestError, TraceHeader};
use crate::trace::ingest::TRACE_ROW_ATTRIBUTE;
use crate::trace::{ErrorInfo, Event, Span, SpanKind, Status, Trace};

impl Incoming<'_> {
    /// The root span agentrace's export makes of a trace.
    pub(super) fn is_agentrace_root(&self) -> bool {
        self.str("agentrace.trace_id").is_some()
            && self.str("agentrace.workflow").is_some()
            && !self.attrs.contains_key("agentrace.span.kind")
    }

    /// The kind of a span agentrace's export wrote.
    pub(super) fn agentrace_kind(&self) -> Option<SpanKind> {
        self.str("agentrace.span.kind").and_then(SpanKind::parse)
    }

    pub(super) fn agentrace_header(&self) -> TraceHeader {
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

    /// The trace row a pushing run sent on its root ([`TRACE_ROW_ATTRIBUTE`]), if it sent one:
    /// refused when it does not parse or names another trace. Its `pid` is dropped: the row
    /// belongs to no process of this machine.
    pub(super) fn agentrace_row(&self) -> Result<Option<Trace>, IngestError> {
        let Some(text) = self.attrs.get(TRACE_ROW_ATTRIBUTE) else {
            return Ok(None);
        };
        let bad = |why: String| IngestError::new(format!("{TRACE_ROW_ATTRIBUTE}: {why}"));
        let text = text
            .as_str()
            .ok_or_else(|| bad("expected JSON text".into()))?;
        let mut row: Trace = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if row.trace_id != self.trace_id {
            return Err(bad(format!(
                "names trace {}, but its span is in trace {}",
                row.trace_id, self.trace_id
            )));
        }
        row.pid = None;
        Ok(Some(row))
    }

    /// A span agentrace's export wrote, given back as it was stored.
    pub(super) fn agentrace_span(&self, kind: SpanKind) -> Span {
        let a = &self.attrs;
        let mut attributes = Map::new();
        for (k, v) in a {
            if let Some(key) = k.strip_prefix("agentrace.") {
                // `span.name` is what the export adds to a tool list (see below); on any other
                // span it is a stored attribute of that name.
                let added = key == "span.name" && kind == SpanKind::McpTools;
                if !matches!(key, "span.kind" | "status" | "error.data") && !added {
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
                let name = strip(&self.span.name, "execute_tool ");
                strip(&name, "tools/call ")
            }
            // The export names a tool list by its method: the span's name is its server's,
            // unless the export said otherwise.
            SpanKind::McpTools => self
                .str("agentrace.span.name")
                .or_else(|| self.str("agentrace.mcp.server"))
                .unwrap_or(&self.span.name)
                .to_string(),
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
            SpanKind::Custom | SpanKind::Handoff | SpanKind::Command | SpanKind::Score => {
                self.span.name.clone()
            }
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
    "mcp.method.name",
    "mcp.protocol.version",
    "mcp.session.id",
    "network.",
    "server.",
    "error.type",
    "openai.api.type",
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

fn strip(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
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
