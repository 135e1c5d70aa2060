//! The Agents SDK ingest payload: the two captured SDK bodies, the export read back, and the
//! reasons a bad payload is refused.

#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value, json};

use super::*;
use crate::trace::fixture::{every_kind, span};

/// The two request bodies the Python SDK (openai-agents 0.24) sent (see `../shared/reference/`).
const REFERENCE: &str =
    include_str!("../../../tests/fixtures/openai-agents-sdk-ingest-payloads.json");

fn reference_bodies() -> Vec<Vec<u8>> {
    let bodies: Vec<Value> = serde_json::from_str(REFERENCE).unwrap();
    bodies
        .iter()
        .map(|b| serde_json::to_vec(b).unwrap())
        .collect()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn by_id(spans: &[Span], id: SpanId) -> &Span {
    spans.iter().find(|s| s.span_id == id).unwrap()
}

fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

fn kinds(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.kind.as_str()).collect()
}

/// The names from `span` up to its root.
fn ancestry<'a>(spans: &'a [Span], span: &'a Span) -> Vec<&'a str> {
    let mut out = vec![span.name.as_str()];
    let mut at = span;
    while let Some(parent) = at.parent_id {
        at = by_id(spans, parent);
        out.push(at.name.as_str());
    }
    out
}

fn err(body: Value) -> String {
    parse(&serde_json::to_vec(&body).unwrap()).unwrap_err().0
}

const TRACE: &str = "trace_421f771ffd47478da8eb7f05c9df2a93";

fn span_item(id: &str, parent: Option<&str>, span_data: Value) -> Value {
    json!({
        "object": "trace.span",
        "id": id,
        "trace_id": TRACE,
        "parent_id": parent,
        "started_at": "2026-11-24T22:34:10.935175+00:00",
        "ended_at": "2026-11-24T22:34:10.976731+00:00",
        "span_data": span_data,
        "error": null,
    })
}

#[test]
fn the_sdks_order_processing_body_parses_into_one_nested_trace() {
    let ingest = parse(&reference_bodies()[0]).unwrap();
    assert_eq!(ingest.traces.len(), 1);
    let t = &ingest.traces[0];
    assert_eq!(t.trace_id, TraceId::parse(TRACE).unwrap());
    assert_eq!(t.name, "E-commerce Order Processing");
    assert_eq!(t.workflow, "E-commerce Order Processing");
    assert_eq!(t.group_id, None);
    assert!(t.metadata.is_empty());

    let spans = &ingest.spans;
    assert_eq!(spans.len(), 11);
    assert_eq!(
        names(spans),
        [
            "gpt-5.6-luna",
            "turn",
            "Inventory Agent",
            "task",
            "Inventory Check",
            "gpt-5.6-luna",
            "turn",
            "Payment Agent",
            "task",
            "Payment Validation",
            "Order Validation"
        ]
    );
    assert_eq!(
        kinds(spans),
        [
            "generation",
            "custom",
            "agent",
            "custom",
            "custom",
            "generation",
            "custom",
            "agent",
            "custom",
            "custom",
            "custom"
        ]
    );
    // Every parent is in the payload; one root.
    let roots: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_id.is_none())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(roots, ["Order Validation"]);
    for s in spans {
        if let Some(p) = s.parent_id {
            assert!(
                spans.iter().any(|o| o.span_id == p),
                "{} has no parent",
                s.name
            );
        }
        assert_eq!(s.trace_id, t.trace_id);
        assert_eq!(s.status, Status::Ok);
        assert!(s.error.is_none());
    }
    assert_eq!(
        ancestry(spans, &spans[0]),
        [
            "gpt-5.6-luna",
            "turn",
            "Inventory Agent",
            "task",
            "Inventory Check",
            "Order Validation"
        ]
    );
    // The SDK's 24-digit ids are hashed, and kept.
    let g = &spans[0];
    assert_eq!(
        g.attributes["openai.span_id"],
        "span_bd9ac09f7b0b44c7b77961aa"
    );
    assert_eq!(g.span_id, parse_span_id("span_bd9ac09f7b0b44c7b77961aa"));
    assert_eq!(g.parent_id, Some(spans[1].span_id));
    assert_eq!(g.started_at.to_rfc3339(), "2026-11-24T22:34:10.935175Z");
    assert_eq!(
        g.ended_at.unwrap().to_rfc3339(),
        "2026-11-24T22:34:10.976731Z"
    );
    // A generation span as the engine records one.
    assert_eq!(g.attributes["model"], "gpt-5.6-luna");
    assert_eq!(g.usage(), Some(Usage::new(9, 6)));
    assert_eq!(
        g.attributes["input"],
        json!([
            {"content": "You check stock levels.", "role": "system"},
            {"role": "user", "content": "Check inventory for order ORD-001"}
        ])
    );
    assert_eq!(
        g.attributes["output"],
        "echo: Check inventory for order ORD-001"
    );
    assert_eq!(g.attributes["base_url"], "http://127.0.0.1:18089/v1/");
    assert_eq!(
        g.attributes["model_config"],
        json!({"reasoning": {"context": null, "effort": "none", "generate_summary": null,
               "mode": null, "summary": null}, "verbosity": "low"})
    );
    assert!(!g.attributes.contains_key("usage_details"), "all zero");
    assert!(!g.attributes.contains_key("tool_calls"));
    // Custom spans keep their data; the SDK's turn and task spans say what they are.
    let check = &spans[4];
    assert_eq!(check.attributes["items"], 3);
    assert_eq!(check.attributes["in_stock"], true);
    assert_eq!(spans[1].attributes["sdk_span_type"], "turn");
    assert_eq!(spans[1].attributes["agent_name"], "Inventory Agent");
    assert_eq!(spans[3].attributes["name"], "Agent workflow");
    let agent = &spans[2];
    assert_eq!(agent.attributes["agent"], "Inventory Agent");
    assert!(!agent.attributes.contains_key("tools"), "no tools offered");
    assert!(!agent.attributes.contains_key("output_type"), "the default");
}

#[test]
fn the_sdks_conversation_body_parses_into_two_traces_of_one_group() {
    let ingest = parse(&reference_bodies()[1]).unwrap();
    let traces = &ingest.traces;
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[0].name, "Customer Support - Initial Query");
    assert_eq!(traces[1].name, "Customer Support - Follow-up");
    assert_eq!(traces[0].group_id.as_deref(), Some("conv_12345"));
    assert_eq!(traces[1].group_id.as_deref(), Some("conv_12345"));
    assert_eq!(
        traces[0].metadata,
        obj(json!({"customer_id": "cust_789", "channel": "web", "priority": "high"}))
    );
    assert_eq!(
        traces[1].metadata,
        obj(json!({"customer_id": "cust_789", "channel": "web", "turn": 2}))
    );

    let spans = &ingest.spans;
    assert_eq!(spans.len(), 11);
    let first: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == traces[0].trace_id)
        .collect();
    assert_eq!(first.len(), 7);
    assert_eq!(
        spans
            .iter()
            .filter(|s| s.trace_id == traces[1].trace_id)
            .count(),
        4
    );
    assert_eq!(
        names(spans),
        [
            "gpt-5.6-luna",
            "lookup_account",
            "turn",
            "gpt-5.6-luna",
            "turn",
            "Support Agent",
            "task",
            "gpt-5.6-luna",
            "turn",
            "Support Agent",
            "task"
        ]
    );
    assert_eq!(
        kinds(spans),
        [
            "generation",
            "function",
            "custom",
            "generation",
            "custom",
            "agent",
            "custom",
            "generation",
            "custom",
            "agent",
            "custom"
        ]
    );
    let roots: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_id.is_none())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(roots, ["task", "task"]);
    assert_eq!(
        ancestry(spans, &spans[1]),
        ["lookup_account", "turn", "Support Agent", "task"]
    );

    // The model asked for a tool: no text, one call in the engine's shape.
    let call = &spans[0];
    assert!(!call.attributes.contains_key("output"));
    assert_eq!(
        call.attributes["tool_calls"],
        json!([{"id": "call_fake15", "name": "lookup_account", "arguments": "{}"}])
    );
    assert_eq!(call.usage(), Some(Usage::new(14, 1)));
    // The tool call.
    let tool = &spans[1];
    assert_eq!(tool.attributes["tool"], "lookup_account");
    assert_eq!(tool.attributes["input"], "{}");
    assert_eq!(
        tool.attributes["output"],
        "account cust_789 locked after 5 failed logins"
    );
    assert!(!tool.attributes.contains_key("mcp_data"));
    // The next request carries the call as the engine records it (content "" rather than null).
    let answer = &spans[3];
    assert_eq!(
        answer.attributes["input"][2],
        json!({"role": "assistant", "content": "", "tool_calls": [{"id": "call_fake15",
               "type": "function", "function": {"name": "lookup_account", "arguments": "{}"}}]})
    );
    assert_eq!(answer.usage(), Some(Usage::new(21, 19)));
    assert_eq!(spans[5].attributes["tools"], json!(["lookup_account"]));
}

#[test]
fn ids_hash_the_same_across_requests() {
    let bodies = reference_bodies();
    let a = parse(&bodies[0]).unwrap();
    let b = parse(&bodies[0]).unwrap();
    assert_eq!(a, b);
    // A child sent alone still points at the parent sent earlier.
    let child = json!({"data": [span_item("span_child", Some("span_efd1d9239886449b89a1770e"),
                               json!({"type": "custom", "name": "late", "data": {}}))]});
    let late = parse(&serde_json::to_vec(&child).unwrap()).unwrap();
    assert_eq!(late.spans[0].parent_id, Some(a.spans[1].span_id));
    assert_eq!(late.spans[0].attributes["openai.span_id"], "span_child");
    // Our own ids, and the export's 24-digit form of them, read back as themselves.
    assert_eq!(
        parse_span_id("span_0123456789abcdef"),
        SpanId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
    );
    assert_eq!(
        parse_span_id("span_0123456789abcdef00000000"),
        SpanId([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef])
    );
    assert_ne!(
        parse_span_id("span_0123456789abcdef00000001"),
        parse_span_id("span_0123456789abcdef00000000")
    );
    assert_ne!(parse_span_id("span_ä0123456789abcdef0000000").0, [0; 8]);
    assert_ne!(parse_span_id("").0, [0; 8]);
    // Trace ids: the SDK allows trace_<32 alphanumerics>.
    let custom = "trace_ThisIsMyOwnTraceIdOf32Chars0";
    let id = parse_trace_id(custom).unwrap();
    assert_eq!(parse_trace_id(custom), Some(id));
    assert_ne!(id.0, [0; 16]);
    assert_eq!(parse_trace_id("nope"), None);
    assert_eq!(parse_trace_id("trace_"), None);
    let body = json!({"data": [
        {"object": "trace", "id": custom, "workflow_name": "W", "group_id": null, "metadata": {"k": 1}},
        {"object": "trace.span", "id": "span_0123456789abcdef", "trace_id": custom, "parent_id": null,
         "started_at": "2026-11-24T22:34:10+00:00", "ended_at": null,
         "span_data": {"type": "custom", "name": "open", "data": {}}, "error": null}
    ]});
    let ingest = parse(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(ingest.traces[0].trace_id, id);
    assert_eq!(
        ingest.traces[0].metadata,
        obj(json!({"k": 1, "openai.trace_id": custom}))
    );
    let s = &ingest.spans[0];
    assert_eq!(s.trace_id, id);
    assert!(!s.attributes.contains_key("openai.span_id"));
    // Not ended: running.
    assert_eq!(s.status, Status::Running);
    assert_eq!(s.ended_at, None);
}

#[test]
fn every_sdk_span_type_is_kept() {
    let body = json!({"data": [
        span_item("a", None, json!({"type": "guardrail", "name": "no_pii", "triggered": true})),
        span_item("b", Some("a"), json!({"type": "response", "response_id": "resp_1",
            "usage": {"input_tokens": 3, "output_tokens": 4,
                      "output_tokens_details": {"reasoning_tokens": 2}}})),
        span_item("c", None, json!({"type": "transcription", "input": {"data": "AAA", "format": "pcm"},
            "output": "hello", "model": "whisper-1", "model_config": {}})),
        span_item("d", None, json!({"type": "mcp_tools", "server": "files", "result": ["read", "write"]})),
        span_item("e", None, json!({"type": "task", "name": "Agent workflow", "usage": {"requests": 1}})),
        span_item("f", None, json!({"type": "turn", "turn": 2, "agent_name": "A"})),
        span_item("g", None, json!({"type": "something_new", "x": [1, 2]})),
        span_item("h", None, json!({"type": "speech_group", "input": "hi"})),
        span_item("i", None, json!({"type": "handoff", "from_agent": "triage", "to_agent": null})),
        span_item("j", None, json!({"type": "function", "name": "read", "input": "{}", "output": "x",
            "mcp_data": {"server": "files"}})),
        span_item("k", None, json!({"type": "agent", "name": "Planner", "handoffs": ["Writer"],
            "tools": ["search"], "output_type": "Plan"})),
        span_item("l", None, json!({"type": "generation", "model": "m", "input": "raw prompt",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "hi"}]}],
            "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                      "input_tokens_details": {"cached_tokens": 1}}})),
        span_item("m", None, json!({"type": "custom", "name": "odd", "data": {"status": "weird",
            "events": [{"name": "no time"}]}})),
    ]});
    let spans = parse(&serde_json::to_vec(&body).unwrap()).unwrap().spans;
    let get = |n: usize| &spans[n];

    let guard = get(0);
    assert_eq!(
        (guard.kind, guard.name.as_str()),
        (SpanKind::Custom, "no_pii")
    );
    assert_eq!(guard.attributes["openai.span_type"], "guardrail");
    assert_eq!(guard.attributes["triggered"], true);

    let resp = get(1);
    assert_eq!(
        (resp.kind, resp.name.as_str()),
        (SpanKind::Generation, "response")
    );
    assert_eq!(resp.parent_id, Some(guard.span_id));
    assert_eq!(resp.attributes["response_id"], "resp_1");
    assert_eq!(resp.attributes["openai.span_type"], "response");
    assert_eq!(resp.usage(), Some(Usage::new(3, 4)));
    assert_eq!(
        resp.attributes["usage_details"],
        json!({"output_tokens_details": {"reasoning_tokens": 2}})
    );

    let tr = get(2);
    assert_eq!(
        (tr.kind, tr.name.as_str()),
        (SpanKind::Custom, "transcription")
    );
    assert_eq!(
        tr.attributes["input"],
        json!({"data": "AAA", "format": "pcm"})
    );
    assert_eq!(tr.attributes["output"], "hello");
    assert_eq!(tr.attributes["model"], "whisper-1");

    // The SDK's MCP spans: a server's tool list, and a call with its server.
    let listing = get(3);
    assert_eq!(
        (listing.kind, listing.name.as_str()),
        (SpanKind::McpTools, "files")
    );
    assert_eq!(listing.attributes["mcp.server"], "files");
    assert_eq!(listing.attributes["tools"], json!(["read", "write"]));
    assert_eq!(listing.mcp_tool_names(), ["read", "write"]);
    assert_eq!(get(4).name, "Agent workflow");
    assert_eq!(get(4).attributes["openai.span_type"], "task");
    assert_eq!(get(4).attributes["usage"], json!({"requests": 1}));
    assert_eq!(get(5).name, "turn");
    assert_eq!(get(5).attributes["turn"], 2);
    assert_eq!(get(6).name, "something_new");
    assert_eq!(get(6).attributes["x"], json!([1, 2]));
    assert_eq!(get(6).attributes["openai.span_type"], "something_new");
    assert_eq!(get(7).attributes["openai.span_type"], "speech_group");
    assert_eq!(get(7).attributes["input"], "hi");

    let handoff = get(8);
    assert_eq!(
        (handoff.kind, handoff.name.as_str()),
        (SpanKind::Handoff, "triage -> ?")
    );
    assert_eq!(handoff.attributes["from_agent"], "triage");
    assert!(!handoff.attributes.contains_key("to_agent"));

    let f = get(9);
    assert_eq!((f.kind, f.name.as_str()), (SpanKind::Function, "read"));
    assert_eq!(f.attributes["mcp.server"], "files");
    assert!(!f.attributes.contains_key("mcp_data"));
    assert_eq!(f.mcp_server(), Some("files"));

    let agent = get(10);
    assert_eq!(agent.kind, SpanKind::Agent);
    assert_eq!(
        agent.attributes["tools"],
        json!(["search", "transfer_to_Writer"])
    );
    assert_eq!(agent.attributes["output_type"], "Plan");

    // A responses-API output is kept as it came.
    let g = get(11);
    assert_eq!(g.attributes["input"], "raw prompt");
    assert_eq!(g.attributes["output"][0]["type"], "message");
    assert_eq!(g.usage(), Some(Usage::new(1, 2)));
    assert_eq!(
        g.attributes["usage_details"],
        json!({"input_tokens_details": {"cached_tokens": 1}})
    );

    // Data that only looks like the export's status and events stays data.
    let odd = get(12);
    assert_eq!(odd.status, Status::Ok);
    assert_eq!(odd.attributes["status"], "weird");
    assert_eq!(odd.attributes["events"], json!([{"name": "no time"}]));
    assert!(odd.events.is_empty());
}

#[test]
fn errors_and_times() {
    let mut failed = span_item("x", None, json!({"type": "function", "name": "f"}));
    failed["error"] = json!({"message": "Tool failed", "data": {"tool": "f"}});
    let mut plain = span_item(
        "y",
        None,
        json!({"type": "custom", "name": "c", "data": {}}),
    );
    plain["error"] = json!({"message": "bad", "data": null});
    plain["started_at"] = json!("2026-11-24T22:34:10.935175");
    plain["ended_at"] = json!("2026-11-24T23:34:10.5+01:00");
    let spans = parse(&serde_json::to_vec(&json!({"data": [failed, plain]})).unwrap())
        .unwrap()
        .spans;
    assert_eq!(spans[0].status, Status::Error);
    assert_eq!(
        spans[0].error,
        Some(ErrorInfo::with_data("Tool failed", json!({"tool": "f"})))
    );
    assert_eq!(spans[1].error, Some(ErrorInfo::new("bad")));
    assert_eq!(
        spans[1].started_at.to_rfc3339(),
        "2026-11-24T22:34:10.935175Z"
    );
    assert_eq!(
        spans[1].ended_at.unwrap().to_rfc3339(),
        "2026-11-24T22:34:10.500000Z"
    );
}

#[test]
fn an_empty_payload_is_valid() {
    assert_eq!(parse(br#"{"data": []}"#).unwrap(), Ingest::default());
}

#[test]
fn bad_payloads_are_refused_with_the_reason() {
    assert!(
        parse(b"not json")
            .unwrap_err()
            .0
            .starts_with("invalid JSON: "),
        "{:?}",
        parse(b"not json")
    );
    assert_eq!(
        err(json!([])),
        "the body must be a JSON object with a `data` array, got an array"
    );
    assert_eq!(
        err(json!({})),
        "the body must be a JSON object with a `data` array: `data` is missing"
    );
    assert_eq!(
        err(json!({"data": {}})),
        "data: expected an array, got an object"
    );
    assert_eq!(
        err(json!({"data": [1]})),
        "data[0]: expected an object, got a number"
    );
    assert_eq!(err(json!({"data": [{}]})), "data[0].object: missing");
    assert_eq!(
        err(json!({"data": [{"object": "response"}]})),
        "data[0].object: unknown object type \"response\" (expected \"trace\" or \"trace.span\")"
    );
    assert_eq!(
        err(json!({"data": [{"object": 3}]})),
        "data[0].object: expected a string, got a number"
    );

    let good = span_item(
        "a",
        None,
        json!({"type": "custom", "name": "ok", "data": {}}),
    );
    let with = |key: &str, value: Value| {
        let mut bad = good.clone();
        if value.is_null() {
            bad.as_object_mut().unwrap().remove(key);
        } else {
            bad[key] = value;
        }
        // The good item first: nothing of the request is accepted.
        err(json!({"data": [good.clone(), bad]}))
    };
    assert_eq!(
        with("started_at", json!("yesterday")),
        "data[1].started_at: invalid timestamp \"yesterday\""
    );
    assert_eq!(
        with("started_at", Value::Null),
        "data[1].started_at: missing"
    );
    assert_eq!(
        with("ended_at", json!(5)),
        "data[1].ended_at: expected a string or null, got a number"
    );
    assert_eq!(with("id", Value::Null), "data[1].id: missing");
    assert_eq!(with("id", json!("")), "data[1].id: empty");
    assert_eq!(
        with("trace_id", json!("abc")),
        "data[1].trace_id: not a trace id \"abc\" (expected trace_<32 hex>)"
    );
    assert_eq!(
        with("parent_id", json!(7)),
        "data[1].parent_id: expected a string or null, got a number"
    );
    assert_eq!(with("span_data", Value::Null), "data[1].span_data: missing");
    assert_eq!(
        with("span_data", json!("custom")),
        "data[1].span_data: expected an object, got a string"
    );
    assert_eq!(
        with("span_data", json!({"name": "x"})),
        "data[1].span_data.type: missing"
    );
    assert_eq!(
        with("error", json!(true)),
        "data[1].error: expected an object or null, got a boolean"
    );

    let trace = json!({"object": "trace", "id": TRACE, "workflow_name": "W"});
    let with_trace = |key: &str, value: Value| {
        let mut bad = trace.clone();
        if value.is_null() {
            bad.as_object_mut().unwrap().remove(key);
        } else {
            bad[key] = value;
        }
        err(json!({"data": [bad]}))
    };
    assert_eq!(
        with_trace("workflow_name", Value::Null),
        "data[0].workflow_name: missing"
    );
    assert_eq!(
        with_trace("id", json!("trace-1")),
        "data[0].id: not a trace id \"trace-1\" (expected trace_<32 hex>)"
    );
    assert_eq!(
        with_trace("group_id", json!(1)),
        "data[0].group_id: expected a string or null, got a number"
    );
    assert_eq!(
        with_trace("metadata", json!("x")),
        "data[0].metadata: expected an object or null, got a string"
    );
}

// ---------------------------------------------------------------------------------------------
// agentrace's own export, read back.

/// What the export cannot carry: the engine's bookkeeping that the SDK format has no field for.
fn without_unexported(mut s: Span) -> Span {
    let dropped: &[&str] = match s.kind {
        SpanKind::Agent => &["model", "input", "output", "usage"],
        SpanKind::Generation => &[
            "api",
            "stream",
            "cost_usd",
            "finish_reason",
            "response_id",
            "response_model",
            "time_to_first_token_ms",
            "offline",
        ],
        SpanKind::Function => &["call_id", "argv", "pid"],
        // The SDK's `MCPListToolsSpanData` has the server and the tool names only.
        SpanKind::McpTools => &[
            "mcp.transport",
            "mcp.url",
            "mcp.protocol_version",
            "mcp.session_id",
            "cached",
            "stderr_tail",
        ],
        _ => &[],
    };
    for key in dropped {
        s.attributes.remove(*key);
    }
    // Of the model settings, the SDK's `model_config` carries the sampling ones it knows.
    if let Some(config) = s
        .attributes
        .get_mut("model_config")
        .and_then(Value::as_object_mut)
    {
        config.remove("seed");
    }
    s
}

#[test]
fn agentraces_own_export_reads_back_as_the_same_spans() {
    let doc = every_kind();
    let body =
        serde_json::to_vec(&crate::export::openai::to_json(std::slice::from_ref(&doc))).unwrap();
    let ingest = parse(&body).unwrap();

    assert_eq!(
        ingest.traces,
        [TraceHeader {
            trace_id: doc.trace.trace_id,
            name: "Support".into(),
            // The SDK payload has no field for the workflow: it reads back as the name.
            workflow: "Support".into(),
            group_id: Some("conv-42".into()),
            metadata: doc.trace.metadata.clone(),
        }]
    );
    assert_eq!(ingest.spans.len(), doc.spans.len());
    for expected in doc.spans.iter().cloned().map(without_unexported) {
        let got = by_id(&ingest.spans, expected.span_id);
        assert_eq!(got, &expected, "span {}", expected.name);
    }
}

#[test]
fn export_batches_read_back_one_by_one() {
    // A push splits a trace over several requests: every part parses, and the parents link.
    let mut doc = every_kind();
    for n in 20..=150u8 {
        doc.spans.push(span(
            n,
            Some(1),
            SpanKind::Custom,
            "many",
            Status::Ok,
            i64::from(n),
            Some(i64::from(n) + 1),
            json!({}),
        ));
    }
    let mut spans = Vec::new();
    for body in crate::export::openai::batches(std::slice::from_ref(&doc)) {
        spans.extend(parse(&serde_json::to_vec(&body).unwrap()).unwrap().spans);
    }
    assert_eq!(spans.len(), doc.spans.len());
    for s in &doc.spans {
        assert_eq!(by_id(&spans, s.span_id).parent_id, s.parent_id);
    }
}

#[test]
fn mcp_shapes_the_export_does_not_write_are_kept_as_they_came() {
    let body = json!({"data": [
        // No server name: the span is named by its type.
        span_item("a", None, json!({"type": "mcp_tools", "server": null, "result": null})),
        // `mcp_data` without a server is not an MCP call agentrace can name: kept whole.
        span_item("b", None, json!({"type": "function", "name": "t", "input": null, "output": null,
            "mcp_data": {"tool": "t"}})),
        // Keys the export does not write stay in `mcp_data`.
        span_item("c", None, json!({"type": "function", "name": "t", "input": null, "output": null,
            "mcp_data": {"server": "s", "is_error": true, "request_id": 7}})),
    ]});
    let mut spans = parse(&serde_json::to_vec(&body).unwrap()).unwrap().spans;
    for s in &mut spans {
        s.attributes.remove("openai.span_id");
    }
    assert_eq!(
        (spans[0].kind, spans[0].name.as_str()),
        (SpanKind::McpTools, "mcp_tools")
    );
    assert!(spans[0].attributes.is_empty(), "{:?}", spans[0].attributes);
    assert_eq!(spans[0].mcp_server(), Some("mcp_tools"));
    assert_eq!(
        spans[1].attributes,
        obj(json!({"tool": "t", "mcp_data": {"tool": "t"}}))
    );
    assert_eq!(spans[1].mcp_server(), None);
    assert_eq!(
        spans[2].attributes,
        obj(json!({"tool": "t", "mcp.server": "s", "mcp.is_error": true,
                   "mcp_data": {"request_id": 7}}))
    );
}
