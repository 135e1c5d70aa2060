//! The payload the OpenAI Agents SDK (0.24, Python) POSTs to `/v1/traces/ingest`, built from
//! stored traces: `{"data": [trace, span, span, …, trace, span, …]}`.
//!
//! Every object has the SDK's keys, in the SDK's order, with the SDK's value shapes (compared
//! field by field with the real payloads in `../shared/reference/`):
//!
//! - a trace object (`object: "trace"`, `id`, `workflow_name`, `group_id`, `metadata` — `null`
//!   when empty), then its spans in the order they ended, as the SDK's batch processor sends them;
//! - span objects (`object: "trace.span"`, `id`, `trace_id`, `parent_id`, `started_at`,
//!   `ended_at` as Python's `datetime.isoformat()` in UTC, `span_data`, `error`).
//!
//! Mapping of our spans:
//!
//! - `agent` → `{type: agent, name, handoffs, tools, output_type}`; the offered `transfer_to_X`
//!   tools become `handoffs: [X]`.
//! - `generation` → `{type: generation, input, output, model, model_config, usage}`, with the
//!   messages in the chat completions shape the SDK records and `model_config` holding every
//!   `ModelSettings` key (ours set, the rest `null`) plus `base_url`, and the cached and
//!   reasoning token counts in `usage`'s details. A Responses API call (`api: responses`) is
//!   a `generation` too, not the SDK's `response` span: that span carries only a `response_id`
//!   for the dashboard to fetch the stored response, and agentrace's calls are `store: false`,
//!   so there is nothing to fetch; the generation carries the input, output and usage itself.
//! - `function` → `{type: function, name, input, output, mcp_data}`: `mcp_data` is `null` for
//!   a workflow tool and `{server, transport, protocol_version, session_id, is_error,
//!   structured_output}` (those recorded) for a call that went to an MCP server — the SDK
//!   records `{server}` there.
//! - `mcp_tools` → `{type: mcp_tools, server, result}` (the tool names), the SDK's
//!   `MCPListToolsSpanData`; the transport, URL, session and `cached` have no field in it.
//! - `handoff` → `{type: handoff, from_agent, to_agent}`.
//! - `custom` → `{type: custom, name, data}` with our attributes as `data`.
//! - `command` has no SDK type: it becomes `custom` with `data.span_kind: "command"` and its
//!   attributes (argv, exit code, stdout, …).
//!
//! Span events have no SDK equivalent: the events of custom and command spans travel in
//! `data.events` (`[{name, time, attributes}]`). A span that did not end `ok` or `error`
//! (skipped, cancelled, still running) says so in `data.status` when it is a custom span.
//!
//! Ids: our trace ids already have the SDK's form (`trace_` + 32 hex). Our span ids carry an
//! 8-byte OTLP span id (`span_` + 16 hex) while the SDK's are `span_` + 24 hex, so the export
//! appends eight zeros: `span_0123456789abcdef` is sent as `span_0123456789abcdef00000000`.

use serde_json::{Map, Value, json};

use super::ExportError;
use crate::trace::{HANDOFF_PREFIX, Span, SpanId, SpanKind, Status, Timestamp, TraceDoc, mcp};

/// The SDK's batch processor exports at most this many items per request.
pub const MAX_BATCH: usize = 128;

/// The whole payload of `docs`: `{"data": [...]}`.
pub fn to_json(docs: &[TraceDoc]) -> Value {
    json!({ "data": items(docs) })
}

/// The trace and span objects of `docs`, in the order the SDK sends them.
pub fn items(docs: &[TraceDoc]) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in docs {
        out.push(trace_object(doc));
        for span in end_order(&doc.spans) {
            out.push(span_object(span));
        }
    }
    out
}

/// The request bodies of a push: `{"data": [...]}` with at most [`MAX_BATCH`] items each.
pub fn batches(docs: &[TraceDoc]) -> Vec<Value> {
    items(docs)
        .chunks(MAX_BATCH)
        .map(|chunk| json!({ "data": chunk }))
        .collect()
}

/// A span id in the SDK's form: `span_` + 24 hex (ours + eight zeros).
pub fn span_id(id: &SpanId) -> String {
    format!("span_{}00000000", id.hex())
}

/// A time as Python's `datetime.isoformat()` writes an aware UTC datetime:
/// `2026-11-24T22:34:10.935175+00:00`, without the fraction when it is zero.
pub fn iso_time(ts: Timestamp) -> String {
    let Ok(t) = jiff::Timestamp::from_microsecond(ts.micros()) else {
        return String::from("invalid-time");
    };
    let micros = ts.micros().rem_euclid(1_000_000);
    let seconds = t.strftime("%Y-%m-%dT%H:%M:%S");
    if micros == 0 {
        format!("{seconds}+00:00")
    } else {
        format!("{seconds}.{micros:06}+00:00")
    }
}

fn trace_object(doc: &TraceDoc) -> Value {
    let t = &doc.trace;
    json!({
        "object": "trace",
        "id": t.trace_id.to_string(),
        "workflow_name": t.name,
        "group_id": t.group_id,
        "metadata": if t.metadata.is_empty() { Value::Null } else { Value::Object(t.metadata.clone()) },
    })
}

/// Spans in the order they ended (children before their parents at the same instant); spans
/// that never ended come last, in tree order.
fn end_order(spans: &[Span]) -> Vec<&Span> {
    let parents: std::collections::HashMap<SpanId, Option<SpanId>> =
        spans.iter().map(|s| (s.span_id, s.parent_id)).collect();
    let depth = |span: &Span| {
        let mut d = 0usize;
        let mut parent = span.parent_id;
        while let Some(p) = parent {
            d += 1;
            parent = parents.get(&p).copied().flatten();
            if d > spans.len() {
                break;
            }
        }
        d
    };
    let mut keyed: Vec<(i64, std::cmp::Reverse<usize>, usize, &Span)> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let end = s.ended_at.map_or(i64::MAX, Timestamp::micros);
            (end, std::cmp::Reverse(depth(s)), i, s)
        })
        .collect();
    keyed.sort_by_key(|(end, depth, i, _)| (*end, *depth, *i));
    keyed.into_iter().map(|(.., s)| s).collect()
}

fn span_object(span: &Span) -> Value {
    json!({
        "object": "trace.span",
        "id": span_id(&span.span_id),
        "trace_id": span.trace_id.to_string(),
        "parent_id": span.parent_id.as_ref().map(span_id),
        "started_at": iso_time(span.started_at),
        "ended_at": span.ended_at.map(iso_time),
        "span_data": span_data(span),
        "error": span.error.as_ref().map(|e| json!({
            "message": e.message,
            "data": if e.data.is_null() || e.data == json!({}) { Value::Null } else { e.data.clone() },
        })),
    })
}

fn attr<'a>(span: &'a Span, key: &str) -> &'a Value {
    span.attributes.get(key).unwrap_or(&Value::Null)
}

fn str_attr(span: &Span, key: &str) -> Value {
    match attr(span, key) {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

fn span_data(span: &Span) -> Value {
    match span.kind {
        SpanKind::Agent => agent_data(span),
        SpanKind::Generation => generation_data(span),
        SpanKind::Function => json!({
            "type": "function",
            "name": span.attributes.get("tool").and_then(Value::as_str).unwrap_or(&span.name),
            "input": str_attr(span, "input"),
            "output": str_attr(span, "output"),
            "mcp_data": mcp_data(span),
        }),
        SpanKind::McpTools => json!({
            "type": "mcp_tools",
            "server": span.mcp_server(),
            "result": attr(span, mcp::TOOLS),
        }),
        SpanKind::Handoff => json!({
            "type": "handoff",
            "from_agent": str_attr(span, "from_agent"),
            "to_agent": str_attr(span, "to_agent"),
        }),
        // The Agents SDK has no evaluation span: a scorer is a custom span with its data.
        SpanKind::Custom | SpanKind::Command | SpanKind::Score => custom_data(span),
    }
}

/// A call's `mcp_data`: `{server, …}` as the SDK records an MCP tool's call, `null` for any
/// other tool.
fn mcp_data(span: &Span) -> Value {
    let Some(server) = span.mcp_server() else {
        return Value::Null;
    };
    let mut data = Map::new();
    data.insert("server".into(), json!(server));
    for (key, attribute) in mcp::SDK_MCP_DATA {
        if let Some(v) = span.attributes.get(attribute) {
            data.insert(key.into(), v.clone());
        }
    }
    Value::Object(data)
}

fn agent_data(span: &Span) -> Value {
    let mut tools = Vec::new();
    let mut handoffs = Vec::new();
    for name in attr(span, "tools").as_array().into_iter().flatten() {
        if let Some(name) = name.as_str() {
            match name.strip_prefix(HANDOFF_PREFIX) {
                Some(agent) => handoffs.push(agent.to_string()),
                None => tools.push(name.to_string()),
            }
        }
    }
    let output_type = span
        .attributes
        .get("output_type")
        .and_then(Value::as_str)
        .unwrap_or("str");
    json!({
        "type": "agent",
        "name": span.attributes.get("agent").and_then(Value::as_str).unwrap_or(&span.name),
        "handoffs": handoffs,
        "tools": tools,
        "output_type": output_type,
    })
}

/// Every key of the SDK's `ModelSettings.to_json_dict()` (0.24), in its order.
const MODEL_SETTINGS: [&str; 21] = [
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "tool_choice",
    "parallel_tool_calls",
    "truncation",
    "max_tokens",
    "reasoning",
    "verbosity",
    "metadata",
    "store",
    "prompt_cache_retention",
    "include_usage",
    "response_include",
    "top_logprobs",
    "retry",
    "context_management",
    "prompt_cache_options",
    "timeout",
    "base_url",
];

/// A token count a generation span records only when there is one (0 otherwise, as the SDK
/// sends it).
fn count_attr(span: &Span, key: &str) -> u64 {
    attr(span, key).as_u64().unwrap_or(0)
}

fn generation_data(span: &Span) -> Value {
    let config = attr(span, "model_config");
    let mut model_config = Map::new();
    for key in MODEL_SETTINGS {
        let value = match key {
            "base_url" => str_attr(span, "base_url"),
            _ => config.get(key).cloned().unwrap_or(Value::Null),
        };
        model_config.insert(key.to_string(), value);
    }
    let input = match attr(span, "input") {
        Value::Array(messages) => Value::Array(messages.iter().map(input_message).collect()),
        _ => Value::Null,
    };
    let output = output_messages(span);
    let usage = span.usage().map(|u| {
        json!({
            "requests": 1,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "total_tokens": u.total_tokens,
            "input_tokens_details": {
                "cache_write_tokens": 0,
                "cached_tokens": count_attr(span, "cached_input_tokens"),
                "cache_write_tokens_details": null,
            },
            "output_tokens_details": { "reasoning_tokens": count_attr(span, "reasoning_tokens") },
        })
    });
    json!({
        "type": "generation",
        "input": input,
        "output": output,
        "model": span.attributes.get("model").and_then(Value::as_str).unwrap_or(&span.name),
        "model_config": model_config,
        "usage": usage,
    })
}

/// A request message as the SDK records it (the chat completions shape, keys in its order).
fn input_message(m: &Value) -> Value {
    let role = m["role"].as_str().unwrap_or_default();
    match role {
        "system" => json!({ "content": m["content"], "role": "system" }),
        "user" => json!({ "role": "user", "content": m["content"] }),
        "assistant" => {
            let calls: Vec<Value> = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({
                        "id": c["id"],
                        "type": "function",
                        "function": {
                            "name": c["function"]["name"],
                            "arguments": c["function"]["arguments"],
                        },
                    })
                })
                .collect();
            let content = match &m["content"] {
                Value::String(s) if s.is_empty() && !calls.is_empty() => Value::Null,
                other => other.clone(),
            };
            if calls.is_empty() {
                json!({ "role": "assistant", "content": content })
            } else {
                json!({ "role": "assistant", "content": content, "tool_calls": calls })
            }
        }
        "tool" => json!({
            "role": "tool",
            "tool_call_id": m["tool_call_id"],
            "content": m["content"],
        }),
        _ => m.clone(),
    }
}

/// The response as the SDK records it: one `ChatCompletionMessage` dump.
fn output_messages(span: &Span) -> Value {
    let text = attr(span, "output");
    let calls = attr(span, "tool_calls").as_array();
    if text.is_null() && calls.is_none() {
        return Value::Null;
    }
    let tool_calls = calls.map(|calls| {
        calls
            .iter()
            .map(|c| {
                json!({
                    "id": c["id"],
                    "function": { "arguments": c["arguments"], "name": c["name"] },
                    "type": "function",
                })
            })
            .collect::<Vec<_>>()
    });
    let content = match text {
        Value::String(s) if s.is_empty() && tool_calls.is_some() => Value::Null,
        other => other.clone(),
    };
    json!([{
        "content": content,
        "refusal": null,
        "role": "assistant",
        "annotations": null,
        "audio": null,
        "function_call": null,
        "tool_calls": tool_calls,
    }])
}

fn custom_data(span: &Span) -> Value {
    let mut data = Map::new();
    if matches!(span.kind, SpanKind::Command | SpanKind::Score) {
        data.insert("span_kind".into(), json!(span.kind.as_str()));
    }
    for (k, v) in &span.attributes {
        data.insert(k.clone(), v.clone());
    }
    if !matches!(span.status, Status::Ok | Status::Error) {
        data.insert("status".into(), json!(span.status.as_str()));
    }
    if !span.events.is_empty() {
        let events: Vec<Value> = span
            .events
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "time": iso_time(e.time),
                    "attributes": e.attributes,
                })
            })
            .collect();
        data.insert("events".into(), Value::Array(events));
    }
    json!({ "type": "custom", "name": span.name, "data": data })
}

/// The OpenAI API base when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Where and how `--to-openai` posts, from the environment the SDK reads too.
#[derive(Clone, Debug)]
pub struct PushConfig {
    /// `{base}/traces/ingest`.
    pub url: String,
    pub api_key: String,
    pub organization: Option<String>,
    pub project: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl PushConfig {
    /// `OPENAI_API_KEY` (required), `OPENAI_BASE_URL` (default the OpenAI API),
    /// `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID` (sent as the SDK sends them, when set).
    pub fn from_env() -> Result<PushConfig, ExportError> {
        let api_key = env("OPENAI_API_KEY").ok_or_else(|| {
            ExportError::Failed(
                "--to-openai needs OPENAI_API_KEY (the key of the project whose traces dashboard \
                 receives the traces)"
                    .into(),
            )
        })?;
        let base = env("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        crate::trace::redact::register(&api_key);
        crate::trace::redact::register_url(&base);
        Ok(PushConfig {
            url: format!("{}/traces/ingest", base.trim_end_matches('/')),
            api_key,
            organization: env("OPENAI_ORG_ID"),
            project: env("OPENAI_PROJECT_ID"),
        })
    }
}

/// What a push delivered.
#[derive(Clone, Debug, Default)]
pub struct Pushed {
    pub requests: usize,
    pub traces: usize,
    pub spans: usize,
}

/// Posts `docs` as the SDK's exporter does: batches of at most [`MAX_BATCH`] items, bearer auth,
/// `OpenAI-Beta: traces=v1`; a server error or a network failure is retried (three times, with
/// backoff), a client error (4xx) is not. The error carries the server's message.
pub fn push(docs: &[TraceDoc], config: &PushConfig) -> Result<Pushed, ExportError> {
    // rustls needs a process-wide crypto provider; an error means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExportError::Failed(format!("cannot start the HTTP runtime: {e}")))?;
    runtime.block_on(push_async(docs, config))
}

async fn push_async(docs: &[TraceDoc], config: &PushConfig) -> Result<Pushed, ExportError> {
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| {
            ExportError::Failed(format!(
                "cannot build the HTTP client: {}",
                crate::causes::chain(&e)
            ))
        })?;
    let mut pushed = Pushed {
        traces: docs.len(),
        spans: docs.iter().map(|d| d.spans.len()).sum(),
        ..Pushed::default()
    };
    for body in batches(docs) {
        let body = serde_json::to_vec(&body).map_err(|e| ExportError::Failed(e.to_string()))?;
        post_with_retries(&client, config, body).await?;
        pushed.requests += 1;
    }
    Ok(pushed)
}

const MAX_RETRIES: u32 = 3;

async fn post_with_retries(
    client: &reqwest::Client,
    config: &PushConfig,
    body: Vec<u8>,
) -> Result<(), ExportError> {
    let mut attempt = 0;
    loop {
        let mut request = client
            .post(&config.url)
            .header("Authorization", format!("Bearer {}", config.api_key))
            .header("Content-Type", "application/json")
            .header("OpenAI-Beta", "traces=v1")
            .body(body.clone());
        if let Some(org) = &config.organization {
            request = request.header("OpenAI-Organization", org);
        }
        if let Some(project) = &config.project {
            request = request.header("OpenAI-Project", project);
        }
        let failure = match request.send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let message = format!("HTTP {status}: {}", server_message(&text));
                if status.is_client_error() {
                    return Err(ExportError::Failed(message));
                }
                message
            }
            Err(e) => crate::causes::chain(&e),
        };
        attempt += 1;
        if attempt > MAX_RETRIES {
            return Err(ExportError::Failed(format!(
                "{failure} (after {MAX_RETRIES} retries)"
            )));
        }
        // 1 s, 2 s, 4 s, with up to 10% jitter, as the SDK backs off.
        let base = 1000u64 << (attempt - 1);
        let jitter = rand::random::<u64>() % (base / 10 + 1);
        tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
    }
}

/// `error.message` of an OpenAI error body, else the body itself (shortened).
fn server_message(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text)
        && let Some(m) = v["error"]["message"].as_str().or(v["message"].as_str())
    {
        return m.to_string();
    }
    let text = text.trim();
    if text.is_empty() {
        return "(empty response)".into();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{Event, Trace};

    use crate::trace::fixture::bare_span as span;

    fn doc(spans: Vec<Span>) -> TraceDoc {
        TraceDoc {
            trace: Trace::sample("W"),
            spans,
        }
    }

    #[test]
    fn times_are_python_isoformat() {
        assert_eq!(
            iso_time(Timestamp(1_795_990_774_123_456)),
            "2026-11-29T22:19:34.123456+00:00"
        );
        assert_eq!(
            iso_time(Timestamp(1_795_990_774_000_000)),
            "2026-11-29T22:19:34+00:00"
        );
        assert_eq!(
            iso_time(Timestamp(1_795_990_774_000_010)),
            "2026-11-29T22:19:34.000010+00:00"
        );
    }

    #[test]
    fn span_ids_have_24_hex_digits() {
        let id = SpanId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(span_id(&id), "span_0123456789abcdef00000000");
    }

    #[test]
    fn spans_come_in_end_order_children_first() {
        let root = span(None, SpanKind::Custom, "root", 0, 100);
        let a = span(Some(root.span_id), SpanKind::Custom, "a", 1, 100);
        let b = span(Some(root.span_id), SpanKind::Command, "b", 2, 50);
        let names: Vec<Value> = items(&[doc(vec![root, a, b])])
            .iter()
            .map(|i| i["span_data"]["name"].clone())
            .collect();
        assert_eq!(names, [Value::Null, json!("b"), json!("a"), json!("root")]);
    }

    #[test]
    fn commands_and_events_become_custom_data() {
        let mut cmd = span(None, SpanKind::Command, "build", 0, 10);
        cmd.attributes.insert("argv".into(), json!(["make"]));
        cmd.events.push(Event {
            name: "started".into(),
            time: Timestamp(5),
            attributes: Map::new(),
        });
        let out = span_data(&cmd);
        assert_eq!(out["type"], "custom");
        assert_eq!(out["data"]["span_kind"], "command");
        assert_eq!(out["data"]["argv"], json!(["make"]));
        assert_eq!(out["data"]["events"][0]["name"], "started");
    }

    #[test]
    fn a_generation_carries_its_cached_and_reasoning_tokens_in_the_usage_details() {
        let mut g = span(None, SpanKind::Generation, "gpt-5-mini", 0, 10);
        g.attributes.insert("api".into(), json!("responses"));
        g.attributes.insert(
            "usage".into(),
            json!({"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}),
        );
        g.attributes.insert("cached_input_tokens".into(), json!(2));
        g.attributes.insert("reasoning_tokens".into(), json!(4));
        let data = span_data(&g);
        assert_eq!(
            data["type"], "generation",
            "not the SDK's `response` span: nothing is stored to fetch"
        );
        assert_eq!(data["usage"]["input_tokens_details"]["cached_tokens"], 2);
        assert_eq!(
            data["usage"]["output_tokens_details"]["reasoning_tokens"],
            4
        );
        g.attributes.remove("reasoning_tokens");
        assert_eq!(
            span_data(&g)["usage"]["output_tokens_details"]["reasoning_tokens"],
            0
        );
    }

    #[test]
    fn agents_split_tools_from_handoffs() {
        let mut agent = span(None, SpanKind::Agent, "triage", 0, 10);
        agent.attributes.insert("agent".into(), json!("triage"));
        agent
            .attributes
            .insert("tools".into(), json!(["lookup", "transfer_to_billing"]));
        let out = span_data(&agent);
        assert_eq!(
            out,
            json!({"type": "agent", "name": "triage", "handoffs": ["billing"], "tools": ["lookup"], "output_type": "str"})
        );
    }

    #[test]
    fn batches_hold_at_most_128_items() {
        let spans: Vec<Span> = (0..300)
            .map(|i| span(None, SpanKind::Custom, "s", i, i + 1))
            .collect();
        let batches = batches(&[doc(spans)]);
        let sizes: Vec<usize> = batches
            .iter()
            .map(|b| b["data"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [128, 128, 45]);
    }

    #[test]
    fn mcp_spans_have_the_sdks_shapes() {
        let doc = crate::trace::fixture::every_kind();
        let data = |n: u8| {
            let s = doc
                .spans
                .iter()
                .find(|s| s.span_id == crate::trace::fixture::sid(n))
                .unwrap();
            span_data(s)
        };
        // `MCPListToolsSpanData.export()`: type, server, result.
        assert_eq!(
            data(12),
            json!({"type": "mcp_tools", "server": "time",
                   "result": ["get_current_time", "convert_time"]})
        );
        assert_eq!(
            data(16),
            json!({"type": "mcp_tools", "server": "broken", "result": []})
        );
        // A call: the SDK's `mcp_data = {"server": …}`, and agentrace's facts beside it.
        assert_eq!(
            data(14),
            json!({"type": "function", "name": "get_current_time",
                   "input": "{\"timezone\":\"Europe/Paris\"}",
                   "output": "{\"datetime\": \"2026-12-05T01:00:00+01:00\"}",
                   "mcp_data": {"server": "time", "transport": "stdio",
                                "protocol_version": "2025-06-18", "is_error": false,
                                "structured_output": {"datetime": "2026-12-05T01:00:00+01:00",
                                                      "dst": false}}})
        );
        assert_eq!(
            data(15)["mcp_data"],
            json!({"server": "everything", "transport": "streamable_http",
                   "protocol_version": "2025-06-18", "session_id": "sess-7f3a",
                   "is_error": true})
        );
        // A workflow tool is no MCP call.
        assert_eq!(data(4)["mcp_data"], Value::Null);
        // The keys in the SDK's order.
        let listing = data(12);
        let keys: Vec<&String> = listing.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "server", "result"]);
    }
}
