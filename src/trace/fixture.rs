//! A trace with one span of every kind and status, shaped as the engine records them: the one
//! fixture that the exports (OTLP, the Agents SDK payload) and the ingest parsers that read them
//! back are tested and fuzzed on. One copy, so that a new kind or attribute added here is
//! exported, read back and fuzzed by all of them at once. Tests only.

use serde_json::{Map, Value, json};

use super::score::{Score, ScoreSource};
use super::{
    ErrorInfo, Event, Span, SpanId, SpanKind, Status, Timestamp, Trace, TraceDoc, TraceId, Usage,
};

/// When the trace starts, in microseconds since the epoch; every time below is an offset from it.
pub(crate) const T0: i64 = 1_795_990_774_000_000;

/// The trace id of [`every_kind`].
pub(crate) fn tid() -> TraceId {
    TraceId([0x4b; 16])
}

/// The id of span `n` of [`every_kind`] (the ids are 1..=16).
pub(crate) fn sid(n: u8) -> SpanId {
    SpanId([0, 0, 0, 0, 0, 0, 0, n])
}

/// A JSON object literal as an attribute map.
pub(crate) fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A finished `ok` span with a fresh id and nothing recorded, in the trace of
/// [`Trace::sample`]; `start` and `end` are absolute microseconds. For tests that build their
/// own small trees.
pub(crate) fn bare_span(
    parent: Option<SpanId>,
    kind: SpanKind,
    name: &str,
    start: i64,
    end: i64,
) -> Span {
    Span {
        span_id: SpanId::generate(),
        trace_id: TraceId([1; 16]),
        parent_id: parent,
        kind,
        name: name.into(),
        status: Status::Ok,
        started_at: Timestamp(start),
        ended_at: Some(Timestamp(end)),
        attributes: Map::new(),
        events: Vec::new(),
        error: None,
    }
}

/// Span `n` of the fixture's trace, `start` and `end` in microseconds after [`T0`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn span(
    n: u8,
    parent: Option<u8>,
    kind: SpanKind,
    name: &str,
    status: Status,
    start: i64,
    end: Option<i64>,
    attributes: Value,
) -> Span {
    Span {
        span_id: sid(n),
        trace_id: tid(),
        parent_id: parent.map(sid),
        kind,
        name: name.into(),
        status,
        started_at: Timestamp(T0 + start),
        ended_at: end.map(|e| Timestamp(T0 + e)),
        attributes: obj(attributes),
        events: Vec::new(),
        error: None,
    }
}

/// One span of every kind and status: a custom step with an event, an agent under it with a
/// generation (content captured: messages, output, tool calls), a second generation without
/// content (as `--no-content` and offline runs record it), a failed tool, a handoff, a failed
/// command, a skipped one, a cancelled span and a span still running under it, a judge's
/// `score` span with its evaluation event, and the agent's MCP servers: a stdio server's tool
/// list (from the run's cache), a streamable HTTP server's (with its session), a server that
/// failed to start (its stderr tail), a call that succeeded with structured content and one
/// whose result said `isError`. The trace failed,
/// belongs to a group and carries metadata (nested too).
pub(crate) fn every_kind() -> TraceDoc {
    let mut root = span(
        1,
        None,
        SpanKind::Custom,
        "Triage",
        Status::Ok,
        10,
        Some(9_000),
        json!({"step_id": "triage", "nested": {"a": [1, "x"]}, "empty": [], "ratio": 0.5,
               "tags": ["a", "b"], "vip": true}),
    );
    root.events.push(Event {
        name: "ticket received".into(),
        time: Timestamp(T0 + 20),
        attributes: obj(
            json!({"priority": 2, "tags": ["a", "b"], "vip": true, "score": 0.5,
                               "detail": {"k": "v"}}),
        ),
    });
    let agent = span(
        2,
        Some(1),
        SpanKind::Agent,
        "helper",
        Status::Ok,
        30,
        Some(8_000),
        json!({"agent": "helper", "model": "gpt-4o-mini", "input": "hi", "output": "{\"answer\": 1}",
               "tools": ["weather", "transfer_to_expert"], "output_type": "json_schema",
               "usage": {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42}}),
    );
    let generation = span(
        3,
        Some(2),
        SpanKind::Generation,
        "gpt-4o-mini",
        Status::Ok,
        40,
        Some(1_000),
        json!({
            "model": "gpt-4o-mini",
            "api": "chat",
            "model_config": {"temperature": 0.2, "max_tokens": 64, "seed": 7},
            "base_url": "http://127.0.0.1:8088/v1",
            "input": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "call_0", "type": "function",
                    "function": {"name": "weather", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "none"}
            ],
            "stream": false,
            "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
            "response_model": "gpt-4o-mini-2024-07-18",
            "finish_reason": "tool_calls",
            "response_id": "chatcmpl-1",
            "output": "Let me look.",
            "tool_calls": [{"id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"}],
            "cost_usd": 0.25,
            "time_to_first_token_ms": 12.5
        }),
    );
    let no_content = span(
        10,
        Some(2),
        SpanKind::Generation,
        "gpt-4o-mini",
        Status::Ok,
        1_010,
        Some(1_050),
        json!({"model": "gpt-4o-mini", "api": "responses",
               "usage": {"input_tokens": 10, "output_tokens": 7, "total_tokens": 17},
               "tool_calls": [{"id": "call_2", "name": "weather"}], "offline": true}),
    );
    let mut tool = span(
        4,
        Some(2),
        SpanKind::Function,
        "weather",
        Status::Error,
        1_100,
        Some(2_000),
        json!({"tool": "weather", "call_id": "call_1", "input": "{\"city\":\"Paris\"}",
               "output": "Error: no such city", "argv": ["./weather.sh"], "pid": 77}),
    );
    tool.error = Some(ErrorInfo::with_data(
        "no such city",
        json!({"city": "Paris", "codes": [1, 2]}),
    ));
    let handoff = span(
        5,
        Some(2),
        SpanKind::Handoff,
        "helper -> expert",
        Status::Ok,
        2_100,
        Some(2_100),
        json!({"from_agent": "helper", "to_agent": "expert"}),
    );
    let (mcp_tools, mcp_calls) = mcp_spans();
    let mut command = span(
        6,
        None,
        SpanKind::Command,
        "notify",
        Status::Error,
        9_100,
        Some(9_500),
        json!({"argv": ["notify", "x"], "pid": 99, "exit_code": 3, "stderr_tail": "{boom}",
               "stdout": "[1, 2]"}),
    );
    command.error = Some(ErrorInfo::with_data(
        "command `notify` exited with status 3: {boom}",
        json!({"exit_code": 3}),
    ));
    let skipped = span(
        7,
        None,
        SpanKind::Command,
        "deploy",
        Status::Skipped,
        9_600,
        Some(9_600),
        json!({"script": "make deploy", "skip_reason": "an earlier step failed"}),
    );
    let mut cancelled = span(
        8,
        None,
        SpanKind::Custom,
        "Wait",
        Status::Cancelled,
        9_700,
        Some(9_800),
        json!({}),
    );
    cancelled.events.push(Event {
        name: "interrupted".into(),
        time: Timestamp(T0 + 9_800),
        attributes: Map::new(),
    });
    let running = span(
        9,
        Some(8),
        SpanKind::Custom,
        "Still going",
        Status::Running,
        9_750,
        None,
        json!({"item": {"sku": "A-1"}}),
    );
    // A judge's score of the step: the evaluation event, and the judge's usage apart from the
    // trace's.
    let mut score = span(
        11,
        Some(1),
        SpanKind::Score,
        "helpful",
        Status::Ok,
        8_100,
        Some(8_900),
        json!({"scorer": "judge", "agent": "grader",
               "usage": {"input_tokens": 8, "output_tokens": 3, "total_tokens": 11}}),
    );
    score.events.push(
        Score {
            value: Some(0.5),
            label: Some("partly".into()),
            explanation: Some("misses the date".into()),
            passed: Some(false),
            threshold: Some(0.7),
            ..Score::new("helpful", ScoreSource::Judge)
        }
        .to_event(Timestamp(T0 + 8_850)),
    );
    TraceDoc {
        trace: Trace {
            trace_id: tid(),
            name: "Support".into(),
            workflow: "Support workflow".into(),
            group_id: Some("conv-42".into()),
            metadata: obj(json!({"team": "ops", "tier": 3, "labels": {"a": "b"}})),
            status: Status::Error,
            started_at: Timestamp(T0),
            ended_at: Some(Timestamp(T0 + 10_000)),
            usage: Usage::new(30, 12),
            cost_usd: Some(0.5),
            error: None,
            pid: Some(4242),
        },
        spans: [root, agent, generation, no_content, tool, handoff]
            .into_iter()
            .chain(mcp_tools)
            .chain(mcp_calls)
            .chain([score, command, skipped, cancelled, running])
            .collect(),
    }
}

/// The MCP spans of [`every_kind`]'s agent (span 2), as the engine records them: the tool lists
/// of three servers (12: stdio, cached; 13: streamable HTTP with a session; 16: a stdio server
/// that failed to start), then two calls (14: ok, with structured content; 15: `isError`).
fn mcp_spans() -> (Vec<Span>, Vec<Span>) {
    let time = span(
        12,
        Some(2),
        SpanKind::McpTools,
        "time",
        Status::Ok,
        2_200,
        Some(2_300),
        json!({"mcp.server": "time", "mcp.transport": "stdio",
               "tools": ["get_current_time", "convert_time"],
               "mcp.protocol_version": "2025-06-18", "cached": true}),
    );
    let everything = span(
        13,
        Some(2),
        SpanKind::McpTools,
        "everything",
        Status::Ok,
        2_300,
        Some(2_400),
        json!({"mcp.server": "everything", "mcp.transport": "streamable_http",
               "mcp.url": "http://127.0.0.1:3001/mcp", "tools": ["echo", "add"],
               "mcp.protocol_version": "2025-06-18", "mcp.session_id": "sess-7f3a",
               "cached": false}),
    );
    let mut broken = span(
        16,
        Some(2),
        SpanKind::McpTools,
        "broken",
        Status::Error,
        2_400,
        Some(2_500),
        json!({"mcp.server": "broken", "mcp.transport": "stdio", "tools": [],
               "cached": false, "stderr_tail": "Traceback (most recent call last):\nImportError: no module"}),
    );
    broken.error = Some(ErrorInfo::new(
        "MCP server `broken` exited before it answered initialize",
    ));
    let call = span(
        14,
        Some(2),
        SpanKind::Function,
        "get_current_time",
        Status::Ok,
        2_600,
        Some(2_700),
        json!({"tool": "get_current_time", "call_id": "call_3",
               "input": "{\"timezone\":\"Europe/Paris\"}",
               "output": "{\"datetime\": \"2026-12-05T01:00:00+01:00\"}",
               "mcp.server": "time", "mcp.transport": "stdio",
               "mcp.protocol_version": "2025-06-18", "mcp.is_error": false,
               "structured_output": {"datetime": "2026-12-05T01:00:00+01:00", "dst": false}}),
    );
    let mut failed_call = span(
        15,
        Some(2),
        SpanKind::Function,
        "echo",
        Status::Error,
        2_700,
        Some(2_800),
        json!({"tool": "echo", "call_id": "call_4", "input": "{}",
               "output": "Error: message is required",
               "mcp.server": "everything", "mcp.transport": "streamable_http",
               "mcp.protocol_version": "2025-06-18", "mcp.session_id": "sess-7f3a",
               "mcp.is_error": true}),
    );
    failed_call.error = Some(ErrorInfo::new("Error: message is required"));
    (vec![time, everything, broken], vec![call, failed_call])
}
