//! The OpenAI Agents SDK's traces ingest payload (`POST /v1/traces/ingest`), read back into
//! agentrace's model: the inverse of [`crate::export::openai`], and what the Python SDK
//! (`openai-agents`) sends when its exporter points at `agentrace serve`.
//!
//! The body is `{"data": [...]}` with `trace` objects (`id`, `workflow_name`, `group_id`,
//! `metadata`) and `trace.span` objects (`id`, `trace_id`, `parent_id`, `started_at`, `ended_at`,
//! `span_data`, `error`). The envelope is checked strictly — any bad item refuses the whole
//! request, with the item and field named (`data[3].started_at: invalid timestamp "yesterday"`);
//! what is inside `span_data` is mapped as well as it can be and never refused.
//!
//! Ids:
//!
//! - A trace id `trace_<32 hex>` (or the bare 32 hex) is the trace id itself. Any other
//!   `trace_…` string (the SDK allows `trace_<32 alphanumerics>`) becomes a 128-bit FNV-1a hash of
//!   the whole string, and the header keeps the original in metadata `openai.trace_id`.
//! - A span id `span_<16 hex>` (or the bare 16 hex) is the span id itself; `span_<16 hex>00000000`
//!   is how agentrace's own export writes one (see [`crate::export::openai::span_id`]) and reads
//!   back as the first 16 digits. Any other string — the SDK's own `span_<24 hex>`, or whatever a
//!   user passed — becomes a 64-bit FNV-1a hash of the whole string, the same for `id` and
//!   `parent_id`, so spans sent in different requests still find their parents; the span keeps
//!   the original in attribute `openai.span_id`.
//!
//! Spans, by `span_data.type` (fields not listed are kept as attributes under their own names,
//! nulls dropped):
//!
//! | type | kind | name | attributes |
//! |---|---|---|---|
//! | `agent` | agent | `name` | `agent`; `tools` = tools + `transfer_to_<handoff>`; `output_type` unless the default `str` |
//! | `generation` | generation | `model` | `model`, `input`, `output` + `tool_calls` (from a chat completions message), `model_config` (set keys), `base_url`, `usage` {input,output,total}, `usage_details` (non-zero details) |
//! | `response` | generation | `model` or `response` | `response_id`, `usage`, `openai.span_type` |
//! | `function` | function | `name` | `tool`, `input`, `output`; `mcp_data` with a `server`: `mcp.server` and its other keys as the export writes them (`transport` → `mcp.transport`, `protocol_version`, `session_id`, `is_error`, `structured_output`), any others kept in `mcp_data` |
//! | `mcp_tools` | mcp_tools | `server` or `mcp_tools` | `mcp.server` = `server`, `tools` = `result` |
//! | `handoff` | handoff | `from -> to` | `from_agent`, `to_agent` |
//! | `custom` | custom (command or score when `data.span_kind` says so) | `name` | `data`'s keys; `data.status` and `data.events` as written by the export become the status and events |
//! | anything else (`guardrail`, `task`, `turn`, `transcription`, `speech`, `speech_group`, …) | custom | `name` or the type | its fields, `openai.span_type` |
//!
//! Status: `error` → `error` with its message and data; no `ended_at` → `running`; else `ok`.

use serde_json::{Map, Value, json};

use super::{Ingest, IngestError, TraceHeader, json_kind};
use crate::trace::{
    ErrorInfo, Event, HANDOFF_PREFIX, Span, SpanId, SpanKind, Status, Timestamp, TraceId, Usage,
    mcp,
};

/// Parses one request body: `{"data": [trace and trace.span objects]}`.
pub fn parse(body: &[u8]) -> Result<Ingest, IngestError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| IngestError::new(format!("invalid JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(IngestError::new(format!(
            "the body must be a JSON object with a `data` array, got {}",
            json_kind(&root)
        )));
    };
    let items = match root.remove("data") {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(IngestError::new(format!(
                "data: expected an array, got {}",
                json_kind(&other)
            )));
        }
        None => {
            return Err(IngestError::new(
                "the body must be a JSON object with a `data` array: `data` is missing",
            ));
        }
    };
    let mut ingest = Ingest::default();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("data[{i}]");
        let Value::Object(item) = item else {
            return Err(IngestError::new(format!(
                "{at}: expected an object, got {}",
                json_kind(&item)
            )));
        };
        match item.get("object") {
            Some(Value::String(s)) if s == "trace" => ingest.traces.push(trace_header(&item, &at)?),
            Some(Value::String(s)) if s == "trace.span" => ingest.spans.push(span(item, &at)?),
            Some(Value::String(s)) => {
                return Err(IngestError::new(format!(
                    "{at}.object: unknown object type {s:?} (expected \"trace\" or \"trace.span\")"
                )));
            }
            None | Some(Value::Null) => {
                return Err(IngestError::new(format!("{at}.object: missing")));
            }
            Some(other) => {
                return Err(IngestError::new(format!(
                    "{at}.object: expected a string, got {}",
                    json_kind(other)
                )));
            }
        }
    }
    Ok(ingest)
}

/// A string field that must be there.
fn required_str<'a>(
    item: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a str, IngestError> {
    match item.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(IngestError::new(format!("{at}.{key}: missing"))),
        Some(other) => Err(IngestError::new(format!(
            "{at}.{key}: expected a string, got {}",
            json_kind(other)
        ))),
    }
}

/// A string field that may be absent or null.
fn optional_str<'a>(
    item: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a str>, IngestError> {
    match item.get(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        None | Some(Value::Null) => Ok(None),
        Some(other) => Err(IngestError::new(format!(
            "{at}.{key}: expected a string or null, got {}",
            json_kind(other)
        ))),
    }
}

fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn fnv1a_128(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

/// The trace id a sender's trace id stands for; `None` when it is not one.
pub fn parse_trace_id(s: &str) -> Option<TraceId> {
    if let Some(id) = TraceId::parse(s) {
        return Some(id);
    }
    let rest = s.strip_prefix("trace_")?;
    if rest.is_empty() {
        return None;
    }
    Some(TraceId(fnv1a_128(s.as_bytes()).max(1).to_be_bytes()))
}

/// The span id a sender's span id stands for (see the module docs); never fails.
pub fn parse_span_id(s: &str) -> SpanId {
    if let Some(id) = SpanId::parse(s) {
        return id;
    }
    if let Some(digits) = s.strip_prefix("span_")
        && digits.len() == 24
        && digits.is_ascii()
        && digits.ends_with("00000000")
        && let Some(id) = SpanId::parse(&digits[..16])
    {
        return id;
    }
    SpanId(fnv1a_64(s.as_bytes()).max(1).to_be_bytes())
}

/// Whether `s` is written differently from how agentrace shows `id` (the sender's own form is
/// then worth keeping). agentrace's own export form reads back exactly, so it does not count.
fn span_id_differs(s: &str, id: SpanId) -> bool {
    let shown = id.to_string();
    s != shown && s != format!("{shown}00000000")
}

/// RFC 3339 with an offset (`2026-11-24T22:34:10.935175+00:00`), or without one, taken as UTC
/// (a naive Python `isoformat()`).
fn parse_time(s: &str) -> Option<Timestamp> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Some(Timestamp(ts.as_microsecond()));
    }
    let civil: jiff::civil::DateTime = s.parse().ok()?;
    let ts = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(Timestamp(ts.as_microsecond()))
}

fn time_field(
    item: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<Timestamp>, IngestError> {
    match optional_str(item, key, at)? {
        None => Ok(None),
        Some(s) => parse_time(s)
            .map(Some)
            .ok_or_else(|| IngestError::new(format!("{at}.{key}: invalid timestamp {s:?}"))),
    }
}

fn trace_header(item: &Map<String, Value>, at: &str) -> Result<TraceHeader, IngestError> {
    let raw_id = required_str(item, "id", at)?;
    let trace_id = parse_trace_id(raw_id).ok_or_else(|| {
        IngestError::new(format!(
            "{at}.id: not a trace id {raw_id:?} (expected trace_<32 hex>)"
        ))
    })?;
    let name = required_str(item, "workflow_name", at)?.to_string();
    let group_id = optional_str(item, "group_id", at)?.map(str::to_string);
    let mut metadata = match item.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(IngestError::new(format!(
                "{at}.metadata: expected an object or null, got {}",
                json_kind(other)
            )));
        }
    };
    if raw_id != trace_id.to_string() {
        metadata.insert("openai.trace_id".into(), Value::String(raw_id.to_string()));
    }
    Ok(TraceHeader {
        trace_id,
        name: name.clone(),
        workflow: name,
        group_id,
        metadata,
    })
}

fn span(mut item: Map<String, Value>, at: &str) -> Result<Span, IngestError> {
    let raw_id = required_str(&item, "id", at)?.to_string();
    if raw_id.is_empty() {
        return Err(IngestError::new(format!("{at}.id: empty")));
    }
    let span_id = parse_span_id(&raw_id);
    let raw_trace = required_str(&item, "trace_id", at)?;
    let trace_id = parse_trace_id(raw_trace).ok_or_else(|| {
        IngestError::new(format!(
            "{at}.trace_id: not a trace id {raw_trace:?} (expected trace_<32 hex>)"
        ))
    })?;
    let parent_id = optional_str(&item, "parent_id", at)?
        .filter(|p| !p.is_empty())
        .map(parse_span_id);
    let started_at = time_field(&item, "started_at", at)?
        .ok_or_else(|| IngestError::new(format!("{at}.started_at: missing")))?;
    let ended_at = time_field(&item, "ended_at", at)?;
    let error = match item.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(message)) => Some(ErrorInfo::new(message.clone())),
        Some(Value::Object(e)) => {
            let message = match e.get("message") {
                Some(Value::String(m)) => m.clone(),
                None | Some(Value::Null) => "error".to_string(),
                Some(other) => other.to_string(),
            };
            Some(match e.get("data") {
                None | Some(Value::Null) => ErrorInfo::new(message),
                Some(data) => ErrorInfo::with_data(message, data.clone()),
            })
        }
        Some(other) => {
            return Err(IngestError::new(format!(
                "{at}.error: expected an object or null, got {}",
                json_kind(other)
            )));
        }
    };
    let data = match item.remove("span_data") {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => {
            return Err(IngestError::new(format!("{at}.span_data: missing")));
        }
        Some(other) => {
            return Err(IngestError::new(format!(
                "{at}.span_data: expected an object, got {}",
                json_kind(&other)
            )));
        }
    };
    let span_type = required_str(&data, "type", &format!("{at}.span_data"))?.to_string();
    let mut mapped = map_span_data(&span_type, data);
    if span_id_differs(&raw_id, span_id) {
        mapped
            .attributes
            .insert("openai.span_id".into(), Value::String(raw_id));
    }
    let status = if error.is_some() {
        Status::Error
    } else if let Some(status) = mapped.status {
        status
    } else if ended_at.is_none() {
        Status::Running
    } else {
        Status::Ok
    };
    Ok(Span {
        span_id,
        trace_id,
        parent_id,
        kind: mapped.kind,
        name: mapped.name,
        status,
        started_at,
        ended_at,
        attributes: mapped.attributes,
        events: mapped.events,
        error,
    })
}

/// What `span_data` says about a span.
struct Mapped {
    kind: SpanKind,
    name: String,
    attributes: Map<String, Value>,
    /// A status the span data states itself (custom spans exported by agentrace).
    status: Option<Status>,
    events: Vec<Event>,
}

impl Mapped {
    fn new(kind: SpanKind, name: String) -> Self {
        Mapped {
            kind,
            name,
            attributes: Map::new(),
            status: None,
            events: Vec::new(),
        }
    }

    fn set(&mut self, key: &str, value: Value) {
        if !value.is_null() {
            self.attributes.insert(key.to_string(), value);
        }
    }

    /// The fields nothing else took, under their own names, unless a mapped one has the name.
    fn keep_rest(mut self, rest: Map<String, Value>) -> Self {
        for (k, v) in rest {
            if !v.is_null() && !self.attributes.contains_key(&k) {
                self.attributes.insert(k, v);
            }
        }
        self
    }
}

/// Removes `key` when it holds a string.
fn take_string(data: &mut Map<String, Value>, key: &str) -> Option<String> {
    match data.get(key) {
        Some(Value::String(_)) => match data.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn take(data: &mut Map<String, Value>, key: &str) -> Value {
    data.remove(key).unwrap_or(Value::Null)
}

fn map_span_data(span_type: &str, mut data: Map<String, Value>) -> Mapped {
    data.remove("type");
    match span_type {
        "agent" => agent(data),
        "generation" => generation(data),
        "response" => response(data),
        "function" => function(data),
        "handoff" => handoff(data),
        "mcp_tools" => mcp_tools(data),
        "custom" => custom(data),
        other => sdk_only(other, data),
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn agent(mut data: Map<String, Value>) -> Mapped {
    let name = take_string(&mut data, "name").unwrap_or_else(|| "agent".into());
    let mut m = Mapped::new(SpanKind::Agent, name.clone());
    m.set("agent", Value::String(name));
    let tools = take(&mut data, "tools");
    let handoffs = take(&mut data, "handoffs");
    match (
        strings(&tools).or_else(|| tools.is_null().then(Vec::new)),
        strings(&handoffs).or_else(|| handoffs.is_null().then(Vec::new)),
    ) {
        (Some(tools), Some(handoffs)) => {
            let offered: Vec<String> = tools
                .into_iter()
                .chain(handoffs.into_iter().map(|h| format!("{HANDOFF_PREFIX}{h}")))
                .collect();
            if !offered.is_empty() {
                m.set("tools", json!(offered));
            }
        }
        _ => {
            m.set("tools", tools);
            m.set("handoffs", handoffs);
        }
    }
    match take(&mut data, "output_type") {
        Value::String(s) if s == "str" => {}
        other => m.set("output_type", other),
    }
    m.keep_rest(data)
}

/// A token count (see [`super::token_count`]), if the field is there.
fn count(v: Option<&Value>) -> Option<u64> {
    v.and_then(super::token_count)
}

/// Whether a value carries anything but zeros, nulls and empties.
fn has_content(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(has_content),
        Value::Object(o) => o.values().any(has_content),
    }
}

/// The SDK's usage (`input_tokens`, `output_tokens`, maybe `total_tokens`, `requests` and
/// `*_details`) as agentrace's `usage`, plus `usage_details` when the details say anything; the
/// raw value as `openai.usage` when it has no token counts.
fn set_usage(m: &mut Mapped, usage: Value) {
    if usage.is_null() {
        return;
    }
    let counts = usage.as_object().and_then(|u| {
        let input = count(u.get("input_tokens")).or_else(|| count(u.get("prompt_tokens")))?;
        let output = count(u.get("output_tokens")).or_else(|| count(u.get("completion_tokens")))?;
        let total = count(u.get("total_tokens")).unwrap_or(input + output);
        Some(Usage {
            input_tokens: input,
            output_tokens: output,
            total_tokens: total,
        })
    });
    let Some(counts) = counts else {
        m.set("openai.usage", usage);
        return;
    };
    m.set("usage", counts.to_value());
    let details: Map<String, Value> = usage
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            !matches!(
                k.as_str(),
                "input_tokens"
                    | "output_tokens"
                    | "total_tokens"
                    | "prompt_tokens"
                    | "completion_tokens"
                    | "requests"
            ) && has_content(v)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !details.is_empty() {
        m.set("usage_details", Value::Object(details));
    }
}

/// Request messages as the engine records them: an assistant message that only calls tools has
/// content `""` (the SDK and the export write `null`).
fn input_messages(input: Value) -> Value {
    match input {
        Value::Array(messages) => Value::Array(
            messages
                .into_iter()
                .map(|mut m| {
                    if m["role"] == "assistant"
                        && m["content"].is_null()
                        && m["tool_calls"].as_array().is_some_and(|c| !c.is_empty())
                        && let Some(o) = m.as_object_mut()
                    {
                        o.insert("content".into(), Value::String(String::new()));
                    }
                    m
                })
                .collect(),
        ),
        other => other,
    }
}

/// A response recorded as one chat completions message dump (what the SDK records for chat
/// completions models, and what the export writes): its text and its tool calls in the engine's
/// shape (`[{id, name, arguments}]`). `None` for any other shape, which is kept as it came.
fn chat_output(output: &Value) -> Option<(Value, Value)> {
    let [message] = output.as_array()?.as_slice() else {
        return None;
    };
    let message = message.as_object()?;
    if message.get("role").and_then(Value::as_str) != Some("assistant") {
        return None;
    }
    for (k, v) in message {
        match k.as_str() {
            "role" | "content" | "tool_calls" => {}
            "refusal" | "annotations" | "audio" | "function_call" if !has_content(v) => {}
            _ => return None,
        }
    }
    let text = match message.get("content") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(_) => return None,
    };
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Array(calls)) => {
            let mut out = Vec::with_capacity(calls.len());
            for c in calls {
                let function = c.get("function")?.as_object()?;
                let mut call = Map::new();
                call.insert("id".into(), c.get("id").cloned().unwrap_or(Value::Null));
                call.insert(
                    "name".into(),
                    function.get("name").cloned().unwrap_or(Value::Null),
                );
                match function.get("arguments") {
                    None | Some(Value::Null) => {}
                    Some(args) => {
                        call.insert("arguments".into(), args.clone());
                    }
                }
                out.push(Value::Object(call));
            }
            Value::Array(out)
        }
        Some(_) => return None,
    };
    Some((text, calls))
}

fn generation(mut data: Map<String, Value>) -> Mapped {
    let model = take_string(&mut data, "model");
    let mut m = Mapped::new(
        SpanKind::Generation,
        model.clone().unwrap_or_else(|| "generation".into()),
    );
    if let Some(model) = model {
        m.set("model", Value::String(model));
    }
    match take(&mut data, "model_config") {
        Value::Object(mut config) => {
            if let Some(Value::String(url)) = config.remove("base_url") {
                m.set("base_url", Value::String(url));
            }
            config.retain(|_, v| !v.is_null());
            if !config.is_empty() {
                m.set("model_config", Value::Object(config));
            }
        }
        other => m.set("model_config", other),
    }
    m.set("input", input_messages(take(&mut data, "input")));
    let output = take(&mut data, "output");
    match chat_output(&output) {
        Some((text, calls)) => {
            m.set("output", text);
            m.set("tool_calls", calls);
        }
        None => m.set("output", output),
    }
    set_usage(&mut m, take(&mut data, "usage"));
    m.keep_rest(data)
}

fn response(mut data: Map<String, Value>) -> Mapped {
    let model = take_string(&mut data, "model").or_else(|| {
        data.get("response")
            .and_then(|r| r.get("model"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let mut m = Mapped::new(
        SpanKind::Generation,
        model.clone().unwrap_or_else(|| "response".into()),
    );
    m.set("openai.span_type", json!("response"));
    if let Some(model) = model {
        m.set("model", Value::String(model));
    }
    m.set("response_id", take(&mut data, "response_id"));
    set_usage(&mut m, take(&mut data, "usage"));
    m.keep_rest(data)
}

fn function(mut data: Map<String, Value>) -> Mapped {
    let name = take_string(&mut data, "name").unwrap_or_else(|| "function".into());
    let mut m = Mapped::new(SpanKind::Function, name.clone());
    m.set("tool", Value::String(name));
    m.set("input", take(&mut data, "input"));
    m.set("output", take(&mut data, "output"));
    match take(&mut data, "mcp_data") {
        Value::Object(mut mcp_data) if mcp_data.get("server").is_some_and(Value::is_string) => {
            m.set(mcp::SERVER, take(&mut mcp_data, "server"));
            for (key, attribute) in mcp::SDK_MCP_DATA {
                m.set(attribute, take(&mut mcp_data, key));
            }
            if !mcp_data.is_empty() {
                m.set("mcp_data", Value::Object(mcp_data));
            }
        }
        other => m.set("mcp_data", other),
    }
    m.keep_rest(data)
}

/// The SDK's `MCPListToolsSpanData`: one server's tool list.
fn mcp_tools(mut data: Map<String, Value>) -> Mapped {
    let server = take_string(&mut data, "server");
    let mut m = Mapped::new(
        SpanKind::McpTools,
        server.clone().unwrap_or_else(|| "mcp_tools".into()),
    );
    if let Some(server) = server {
        m.set(mcp::SERVER, Value::String(server));
    }
    m.set(mcp::TOOLS, take(&mut data, "result"));
    m.keep_rest(data)
}

fn handoff(mut data: Map<String, Value>) -> Mapped {
    let from = take_string(&mut data, "from_agent");
    let to = take_string(&mut data, "to_agent");
    let name = match (&from, &to) {
        (None, None) => "handoff".to_string(),
        (f, t) => format!(
            "{} -> {}",
            f.as_deref().unwrap_or("?"),
            t.as_deref().unwrap_or("?")
        ),
    };
    let mut m = Mapped::new(SpanKind::Handoff, name);
    if let Some(from) = from {
        m.set("from_agent", Value::String(from));
    }
    if let Some(to) = to {
        m.set("to_agent", Value::String(to));
    }
    m.keep_rest(data)
}

/// `data.events` as the export writes them: `[{name, time, attributes}]`; `None` unless every
/// element has that shape.
fn exported_events(v: &Value) -> Option<Vec<Event>> {
    v.as_array()?
        .iter()
        .map(|e| {
            let e = e.as_object()?;
            let name = e.get("name")?.as_str()?.to_string();
            let time = parse_time(e.get("time")?.as_str()?)?;
            let attributes = match e.get("attributes") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(a)) => a.clone(),
                Some(_) => return None,
            };
            Some(Event {
                name,
                time,
                attributes,
            })
        })
        .collect()
}

fn custom(mut data: Map<String, Value>) -> Mapped {
    let name = take_string(&mut data, "name").unwrap_or_else(|| "custom".into());
    let mut m = Mapped::new(SpanKind::Custom, name);
    match take(&mut data, "data") {
        Value::Object(mut attrs) => {
            let kind = match attrs.get("span_kind").and_then(Value::as_str) {
                Some("command") => Some(SpanKind::Command),
                Some("score") => Some(SpanKind::Score),
                _ => None,
            };
            if let Some(kind) = kind {
                attrs.remove("span_kind");
                m.kind = kind;
            }
            if let Some(status) = attrs
                .get("status")
                .and_then(Value::as_str)
                .and_then(Status::parse)
                .filter(|s| matches!(s, Status::Running | Status::Cancelled | Status::Skipped))
            {
                attrs.remove("status");
                m.status = Some(status);
            }
            if let Some(events) = attrs.get("events").and_then(exported_events) {
                attrs.remove("events");
                m.events = events;
            }
            m.attributes = attrs;
        }
        other => m.set("data", other),
    }
    m.keep_rest(data)
}

/// A type agentrace has no kind for: a custom span that keeps the type and every field.
fn sdk_only(span_type: &str, mut data: Map<String, Value>) -> Mapped {
    let name = take_string(&mut data, "name").unwrap_or_else(|| span_type.to_string());
    let mut m = Mapped::new(SpanKind::Custom, name);
    m.set("openai.span_type", Value::String(span_type.to_string()));
    m.keep_rest(data)
}

#[cfg(test)]
#[path = "tests/openai.rs"]
mod tests;
