//! The mapping of stored traces to OTLP, span by span.

#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, span, status};
use prost::Message;
use serde_json::{Value, json};

use super::map::{self, provider_name, root_span_id};
use super::*;
use crate::trace::context::{META_TRACEPARENT, META_TRACESTATE};
use crate::trace::fixture::{T0, every_kind, obj, sid, tid};
use crate::trace::{ErrorInfo, Status, Timestamp};

fn spans_of(doc: &TraceDoc) -> Vec<OtlpSpan> {
    map::trace_spans(doc)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

#[track_caller]
fn s<'a>(attrs: &'a [KeyValue], key: &str) -> &'a str {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => s,
        other => panic!("{key}: expected a string, got {other:?}"),
    }
}

#[track_caller]
fn i(attrs: &[KeyValue], key: &str) -> i64 {
    match attr(attrs, key) {
        Some(any_value::Value::IntValue(i)) => *i,
        other => panic!("{key}: expected an int, got {other:?}"),
    }
}

fn named<'a>(spans: &'a [OtlpSpan], name: &str) -> &'a OtlpSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}: {:?}", names(spans)))
}

fn names(spans: &[OtlpSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn the_trace_becomes_a_root_span_over_the_stored_ones() {
    let d = every_kind();
    let spans = spans_of(&d);
    assert_eq!(
        names(&spans),
        [
            "invoke_workflow Support",
            "Triage",
            "invoke_agent helper",
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
            "execute_tool weather",
            "helper -> expert",
            "tools/list",
            "tools/list",
            "tools/list",
            "tools/call get_current_time",
            "tools/call echo",
            "helpful",
            "notify",
            "deploy",
            "Wait",
            "Still going"
        ]
    );
    let root = &spans[0];
    assert_eq!(root.span_id, root_span_id(&d).0.to_vec());
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.trace_id, tid().0.to_vec());
    assert_eq!(root.start_time_unix_nano, (T0 as u64) * 1000);
    assert_eq!(root.end_time_unix_nano, (T0 as u64 + 10_000) * 1000);
    assert_eq!(root.kind, span::SpanKind::Internal as i32);
    let a = &root.attributes;
    assert_eq!(s(a, "gen_ai.operation.name"), "invoke_workflow");
    assert_eq!(s(a, "gen_ai.workflow.name"), "Support");
    assert_eq!(s(a, "agentrace.workflow"), "Support workflow");
    assert_eq!(s(a, "gen_ai.conversation.id"), "conv-42");
    assert_eq!(s(a, "session.id"), "conv-42");
    assert_eq!(s(a, "agentrace.metadata.team"), "ops");
    assert_eq!(i(a, "agentrace.metadata.tier"), 3);
    let meta: Value = serde_json::from_str(s(a, "metadata")).unwrap();
    assert_eq!(
        meta,
        json!({"team": "ops", "tier": 3, "labels": {"a": "b"}})
    );
    assert_eq!(i(a, "agentrace.usage.input_tokens"), 30);
    assert_eq!(i(a, "agentrace.usage.output_tokens"), 12);
    assert_eq!(i(a, "agentrace.usage.total_tokens"), 42);
    assert_eq!(s(a, "openinference.span.kind"), "CHAIN");

    // Stored spans keep their ids, parents and times; top-level ones hang under the root.
    let triage = named(&spans, "Triage");
    assert_eq!(triage.span_id, sid(1).0.to_vec());
    assert_eq!(triage.parent_span_id, root.span_id);
    assert_eq!(triage.start_time_unix_nano, (T0 as u64 + 10) * 1000);
    assert_eq!(triage.end_time_unix_nano, (T0 as u64 + 9_000) * 1000);
    let agent = named(&spans, "invoke_agent helper");
    assert_eq!(agent.parent_span_id, sid(1).0.to_vec());
    assert_eq!(named(&spans, "notify").parent_span_id, root.span_id);
    assert!(spans.iter().all(|s| s.trace_id == tid().0.to_vec()));
}

#[test]
fn generation_spans_carry_genai_and_openinference_attributes() {
    let spans = spans_of(&every_kind());
    let g = named(&spans, "chat gpt-4o-mini");
    assert_eq!(g.kind, span::SpanKind::Client as i32);
    assert_eq!(g.parent_span_id, sid(2).0.to_vec());
    let a = &g.attributes;
    assert_eq!(s(a, "gen_ai.operation.name"), "chat");
    assert_eq!(s(a, "gen_ai.provider.name"), "127.0.0.1");
    assert_eq!(s(a, "gen_ai.request.model"), "gpt-4o-mini");
    assert_eq!(s(a, "gen_ai.response.model"), "gpt-4o-mini-2024-07-18");
    assert_eq!(s(a, "gen_ai.response.id"), "chatcmpl-1");
    assert_eq!(i(a, "gen_ai.usage.input_tokens"), 20);
    assert_eq!(i(a, "gen_ai.usage.output_tokens"), 5);
    assert_eq!(i(a, "gen_ai.request.max_tokens"), 64);
    assert_eq!(i(a, "gen_ai.request.seed"), 7);
    assert_eq!(
        attr(a, "gen_ai.request.temperature"),
        Some(&any_value::Value::DoubleValue(0.2))
    );
    assert_eq!(s(a, "openinference.span.kind"), "LLM");
    assert_eq!(s(a, "llm.model_name"), "gpt-4o-mini-2024-07-18");
    assert_eq!(i(a, "llm.token_count.prompt"), 20);
    assert_eq!(i(a, "llm.token_count.completion"), 5);
    assert_eq!(i(a, "llm.token_count.total"), 25);
    assert_eq!(s(a, "llm.input_messages.0.message.role"), "system");
    assert_eq!(s(a, "llm.input_messages.1.message.content"), "Weather?");
    assert_eq!(
        s(
            a,
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name"
        ),
        "weather"
    );
    let input: Value = serde_json::from_str(s(a, "gen_ai.input.messages")).unwrap();
    assert_eq!(
        input,
        json!([
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
            {"role": "assistant", "parts": [
                {"type": "tool_call", "id": "call_0", "name": "weather", "arguments": {}}
            ]},
            {"role": "tool", "parts": [
                {"type": "tool_call_response", "id": "call_0", "response": "none"}
            ]}
        ])
    );
    let output: Value = serde_json::from_str(s(a, "gen_ai.output.messages")).unwrap();
    assert_eq!(
        output,
        json!([{"role": "assistant", "finish_reason": "tool_calls", "parts": [
            {"type": "text", "content": "Let me look."},
            {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}
        ]}])
    );
    // What no convention covers stays, prefixed.
    assert_eq!(
        attr(a, "agentrace.cost_usd"),
        Some(&any_value::Value::DoubleValue(0.25))
    );
    assert_eq!(
        attr(a, "agentrace.stream"),
        Some(&any_value::Value::BoolValue(false))
    );
    assert!(attr(a, "agentrace.model_config").is_some());
    assert!(attr(a, "agentrace.input").is_none(), "mapped, not repeated");
    assert_eq!(s(a, "agentrace.span.kind"), "generation");
}

#[test]
fn messages_are_left_out_when_content_was_not_captured() {
    let spans = spans_of(&every_kind());
    let g = spans
        .iter()
        .find(|s| s.span_id == sid(10).0.to_vec())
        .unwrap();
    assert_eq!(g.name, "chat gpt-4o-mini");
    let a = &g.attributes;
    for key in [
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "input.value",
        "output.value",
        "llm.input_messages.0.message.content",
    ] {
        assert!(attr(a, key).is_none(), "{key} without content capture");
    }
    assert_eq!(i(a, "llm.token_count.total"), 17, "tokens are not content");
    assert!(s(a, "agentrace.tool_calls").contains("call_2"));
}

#[test]
fn agent_tool_handoff_and_command_spans() {
    let spans = spans_of(&every_kind());
    let a = &named(&spans, "invoke_agent helper").attributes;
    assert_eq!(s(a, "gen_ai.operation.name"), "invoke_agent");
    assert_eq!(s(a, "gen_ai.agent.name"), "helper");
    assert_eq!(s(a, "openinference.span.kind"), "AGENT");
    assert_eq!(s(a, "input.value"), "hi");
    assert_eq!(s(a, "output.value"), "{\"answer\": 1}");
    assert_eq!(s(a, "agentrace.model"), "gpt-4o-mini");
    assert!(
        attr(a, "llm.token_count.total").is_none(),
        "an agent's summed tokens would count twice in a backend"
    );

    let tool = named(&spans, "execute_tool weather");
    assert_eq!(tool.kind, span::SpanKind::Internal as i32);
    let a = &tool.attributes;
    assert_eq!(s(a, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(s(a, "gen_ai.tool.name"), "weather");
    assert_eq!(s(a, "gen_ai.tool.call.id"), "call_1");
    assert_eq!(s(a, "openinference.span.kind"), "TOOL");
    assert_eq!(s(a, "input.value"), "{\"city\":\"Paris\"}");
    assert_eq!(s(a, "output.value"), "Error: no such city");
    assert_eq!(i(a, "agentrace.pid"), 77);
    match attr(a, "agentrace.argv") {
        Some(any_value::Value::ArrayValue(arr)) => assert_eq!(
            arr.values,
            vec![AnyValue {
                value: Some(any_value::Value::StringValue("./weather.sh".into()))
            }]
        ),
        other => panic!("argv as a string array: {other:?}"),
    }

    let h = &named(&spans, "helper -> expert").attributes;
    assert_eq!(s(h, "agentrace.span.kind"), "handoff");
    assert_eq!(s(h, "agentrace.from_agent"), "helper");
    assert_eq!(s(h, "agentrace.to_agent"), "expert");

    let c = &named(&spans, "notify").attributes;
    assert_eq!(s(c, "agentrace.span.kind"), "command");
    assert_eq!(i(c, "process.exit.code"), 3);
    assert_eq!(i(c, "agentrace.exit_code"), 3);
    assert_eq!(s(c, "agentrace.stderr_tail"), "{boom}");

    let t = &named(&spans, "Triage").attributes;
    assert_eq!(s(t, "agentrace.span.kind"), "custom");
    assert_eq!(s(t, "agentrace.step_id"), "triage");
}

#[test]
fn events_keep_their_times_and_attributes() {
    let spans = spans_of(&every_kind());
    let triage = named(&spans, "Triage");
    assert_eq!(triage.events.len(), 1);
    let e = &triage.events[0];
    assert_eq!(e.name, "ticket received");
    assert_eq!(e.time_unix_nano, (T0 as u64 + 20) * 1000);
    assert_eq!(i(&e.attributes, "priority"), 2);
    assert_eq!(
        attr(&e.attributes, "vip"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(
        attr(&e.attributes, "score"),
        Some(&any_value::Value::DoubleValue(0.5))
    );
    assert!(matches!(
        attr(&e.attributes, "tags"),
        Some(any_value::Value::ArrayValue(_))
    ));
}

#[test]
fn statuses_errors_and_exception_events() {
    let mut d = every_kind();
    d.trace.error = Some(ErrorInfo::new("command `notify` failed"));
    let spans = spans_of(&d);
    let root = &spans[0];
    let st = root.status.as_ref().unwrap();
    assert_eq!(st.code, status::StatusCode::Error as i32);
    assert_eq!(st.message, "command `notify` failed");
    assert_eq!(root.events[0].name, "exception");

    let notify = named(&spans, "notify");
    let st = notify.status.as_ref().unwrap();
    assert_eq!(st.code, status::StatusCode::Error as i32);
    assert_eq!(st.message, "command `notify` exited with status 3: {boom}");
    let ex = notify
        .events
        .iter()
        .find(|e| e.name == "exception")
        .unwrap();
    assert_eq!(s(&ex.attributes, "exception.message"), st.message);
    assert_eq!(ex.time_unix_nano, notify.end_time_unix_nano);
    assert_eq!(
        s(&notify.attributes, "agentrace.error.data"),
        "{\"exit_code\":3}"
    );

    // A cancelled span is an error without an exception: its own events only.
    let cancelled = named(&spans, "Wait");
    let st = cancelled.status.as_ref().unwrap();
    assert_eq!(st.code, status::StatusCode::Error as i32);
    assert_eq!(st.message, "cancelled");
    let events: Vec<&str> = cancelled.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(events, ["interrupted"]);

    let skipped = named(&spans, "deploy");
    assert_eq!(
        skipped.status.as_ref().unwrap().code,
        status::StatusCode::Unset as i32
    );
    assert_eq!(s(&skipped.attributes, "agentrace.status"), "skipped");

    let ok = named(&spans, "Triage");
    assert_eq!(
        ok.status.as_ref().unwrap().code,
        status::StatusCode::Ok as i32
    );
}

#[test]
fn a_span_still_running_ends_with_its_trace() {
    let mut d = every_kind();
    d.spans[0].ended_at = None;
    d.spans[0].status = Status::Running;
    let spans = spans_of(&d);
    let triage = named(&spans, "Triage");
    assert_eq!(triage.end_time_unix_nano, (T0 as u64 + 10_000) * 1000);
    assert_eq!(s(&triage.attributes, "agentrace.status"), "running");
    assert_eq!(
        triage.status.as_ref().unwrap().code,
        status::StatusCode::Unset as i32
    );

    // A trace still running: everything ends at the latest time seen.
    d.trace.ended_at = None;
    d.trace.status = Status::Running;
    let spans = spans_of(&d);
    // (the end of `Wait` and its `interrupted` event)
    assert_eq!(spans[0].end_time_unix_nano, (T0 as u64 + 9_800) * 1000);
    assert_eq!(
        named(&spans, "Triage").end_time_unix_nano,
        (T0 as u64 + 9_800) * 1000
    );
}

#[test]
fn the_root_span_id_is_stable_and_distinct_per_run() {
    let d = every_kind();
    assert_eq!(root_span_id(&d), root_span_id(&d.clone()));
    assert_ne!(root_span_id(&d).0, [0; 8]);
    // Another run in the same (joined) trace: a different start, a different root.
    let mut other = d.clone();
    other.trace.started_at = Timestamp(T0 + 1);
    assert_ne!(root_span_id(&d), root_span_id(&other));
    // Never a stored span's id.
    let taken = root_span_id(&d);
    let mut clash = d.clone();
    clash.spans[0].span_id = taken;
    assert_ne!(root_span_id(&clash), taken);
}

#[test]
fn a_joined_trace_hangs_under_the_remote_parent() {
    let mut d = every_kind();
    d.trace.metadata.insert(
        META_TRACEPARENT.into(),
        json!(format!("00-{}-00f067aa0ba902b7-01", tid().hex())),
    );
    d.trace
        .metadata
        .insert(META_TRACESTATE.into(), json!("vendor=abc"));
    let spans = spans_of(&d);
    let root = &spans[0];
    assert_eq!(hex(&root.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(root.trace_state, "vendor=abc");
    assert_eq!(root.flags & 0x300, 0x300, "the parent is remote");
    assert!(root.links.is_empty());
    assert!(spans.iter().all(|s| s.trace_state == "vendor=abc"));
    assert!(
        attr(&root.attributes, "agentrace.metadata.agentrace.traceparent").is_none(),
        "the reserved keys are not metadata"
    );
    assert!(
        attr(&root.attributes, "metadata").unwrap()
            != &any_value::Value::StringValue(String::new())
    );
}

#[test]
fn a_trace_that_could_not_take_the_parent_id_links_to_it() {
    let mut d = every_kind();
    let other = "0af7651916cd43dd8448eb211c80319c";
    d.trace.metadata.insert(
        META_TRACEPARENT.into(),
        json!(format!("00-{other}-b7ad6b7169203331-01")),
    );
    let spans = spans_of(&d);
    let root = &spans[0];
    assert!(root.parent_span_id.is_empty());
    assert_eq!(root.links.len(), 1);
    assert_eq!(hex(&root.links[0].trace_id), other);
    assert_eq!(hex(&root.links[0].span_id), "b7ad6b7169203331");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn providers_come_from_the_endpoint() {
    let p = |v: Value| provider_name(&obj(v));
    assert_eq!(p(json!({})), "openai");
    assert_eq!(
        p(json!({"base_url": "https://api.openai.com/v1"})),
        "openai"
    );
    assert_eq!(
        p(json!({"base_url": "https://api.groq.com/openai/v1"})),
        "groq"
    );
    assert_eq!(
        p(json!({"base_url": "https://x.openai.azure.com/openai"})),
        "azure.ai.openai"
    );
    assert_eq!(
        p(json!({"base_url": "http://127.0.0.1:8088/v1"})),
        "127.0.0.1"
    );
    assert_eq!(
        p(json!({"base_url": "http://user:pw@Llama.Local:8088/v1"})),
        "llama.local"
    );
    assert_eq!(p(json!({"offline": true})), "agentrace.offline");
}

#[test]
fn the_json_encoding_is_the_one_collectors_accept() {
    let json = to_json(&[every_kind()], "svc");
    let rs = &json["resourceSpans"][0];
    let attrs = rs["resource"]["attributes"].as_array().unwrap();
    assert!(
        attrs
            .iter()
            .any(|a| a == &json!({"key": "service.name", "value": {"stringValue": "svc"}}))
    );
    let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 17);
    let root = &spans[0];
    assert_eq!(root["traceId"], tid().hex());
    assert_eq!(root["spanId"].as_str().unwrap().len(), 16);
    assert_eq!(
        root["startTimeUnixNano"],
        json!(((T0 as u64) * 1000).to_string())
    );
    assert_eq!(root["kind"], 1);
    let triage = &spans[1];
    assert_eq!(triage["parentSpanId"], root["spanId"]);
    let tier = root["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "agentrace.metadata.tier")
        .unwrap();
    assert_eq!(tier["value"], json!({"intValue": "3"}));
    let g = &spans[3];
    assert_eq!(g["kind"], 3, "CLIENT");
    let temp = g["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "gen_ai.request.temperature")
        .unwrap();
    assert_eq!(temp["value"], json!({"doubleValue": 0.2}));
    let event = &triage["events"][0];
    assert_eq!(
        event["timeUnixNano"],
        json!(((T0 as u64 + 20) * 1000).to_string())
    );
    // And it reads back as the same request.
    let back: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_value(json).unwrap();
    assert_eq!(back.resource_spans[0].scope_spans[0].spans.len(), 17);
}

#[test]
fn protobuf_round_trips() {
    let request = map::request(
        &[every_kind(), every_kind()],
        map::resource("agentrace", &[]),
    );
    let bytes = request.encode_to_vec();
    let back = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
        bytes.as_slice(),
    )
    .unwrap();
    assert_eq!(back, request);
    assert_eq!(back.resource_spans[0].scope_spans[0].spans.len(), 34);
}

#[test]
fn resource_attributes_from_the_environment_keep_the_service_name() {
    let r = map::resource(
        "svc",
        &[
            ("service.name".into(), "other".into()),
            ("openinference.project.name".into(), "proj".into()),
        ],
    );
    assert_eq!(s(&r.attributes, "service.name"), "svc");
    assert_eq!(s(&r.attributes, "openinference.project.name"), "proj");
}

/// The OTLP span of fixture span `n`.
fn by_sid(spans: &[OtlpSpan], n: u8) -> &OtlpSpan {
    spans
        .iter()
        .find(|s| s.span_id == sid(n).0.to_vec())
        .unwrap()
}

#[test]
fn mcp_calls_are_execute_tool_spans_and_mcp_client_spans_in_one() {
    let spans = spans_of(&every_kind());
    // A stdio call: over a pipe, with the negotiated protocol, and the tool call's attributes.
    let call = by_sid(&spans, 14);
    assert_eq!(call.name, "tools/call get_current_time");
    assert_eq!(call.kind, span::SpanKind::Client as i32);
    assert_eq!(call.parent_span_id, sid(2).0.to_vec());
    let a = &call.attributes;
    assert_eq!(s(a, "gen_ai.operation.name"), "execute_tool");
    assert_eq!(s(a, "gen_ai.tool.name"), "get_current_time");
    assert_eq!(s(a, "gen_ai.tool.call.id"), "call_3");
    assert_eq!(
        s(a, "gen_ai.tool.call.arguments"),
        "{\"timezone\":\"Europe/Paris\"}"
    );
    assert!(s(a, "gen_ai.tool.call.result").contains("2026-12-05T01:00:00"));
    assert_eq!(s(a, "openinference.span.kind"), "TOOL");
    assert_eq!(s(a, "mcp.method.name"), "tools/call");
    assert_eq!(s(a, "network.transport"), "pipe");
    assert_eq!(s(a, "mcp.protocol.version"), "2025-06-18");
    for key in [
        "network.protocol.name",
        "server.address",
        "mcp.session.id",
        "error.type",
    ] {
        assert!(
            attr(a, key).is_none(),
            "{key} on a stdio call that succeeded"
        );
    }
    assert_eq!(s(a, "agentrace.mcp.server"), "time");
    assert_eq!(
        serde_json::from_str::<Value>(s(a, "agentrace.structured_output")).unwrap(),
        json!({"datetime": "2026-12-05T01:00:00+01:00", "dst": false})
    );
    assert_eq!(
        call.status.as_ref().unwrap().code,
        status::StatusCode::Ok as i32
    );

    // An HTTP call whose result said isError: tcp, http, the session, error.type tool_error.
    let failed = by_sid(&spans, 15);
    assert_eq!(failed.name, "tools/call echo");
    assert_eq!(failed.kind, span::SpanKind::Client as i32);
    let a = &failed.attributes;
    assert_eq!(s(a, "network.transport"), "tcp");
    assert_eq!(s(a, "network.protocol.name"), "http");
    assert_eq!(s(a, "mcp.session.id"), "sess-7f3a");
    assert_eq!(s(a, "error.type"), "tool_error");
    assert_eq!(
        failed.status.as_ref().unwrap().code,
        status::StatusCode::Error as i32
    );
    assert_eq!(
        failed.status.as_ref().unwrap().message,
        "Error: message is required"
    );
    // A workflow tool stays an internal execute_tool span without MCP attributes.
    let tool = named(&spans, "execute_tool weather");
    assert_eq!(tool.kind, span::SpanKind::Internal as i32);
    assert!(attr(&tool.attributes, "mcp.method.name").is_none());
}

#[test]
fn an_mcp_servers_tool_list_is_a_tools_list_client_span() {
    let spans = spans_of(&every_kind());
    // Over streamable HTTP: the server's address and port from its URL.
    let http = by_sid(&spans, 13);
    assert_eq!(http.name, "tools/list");
    assert_eq!(http.kind, span::SpanKind::Client as i32);
    let a = &http.attributes;
    assert_eq!(s(a, "mcp.method.name"), "tools/list");
    assert!(
        attr(a, "gen_ai.operation.name").is_none(),
        "only tool calls are execute_tool"
    );
    assert_eq!(s(a, "network.transport"), "tcp");
    assert_eq!(s(a, "network.protocol.name"), "http");
    assert_eq!(s(a, "server.address"), "127.0.0.1");
    assert_eq!(i(a, "server.port"), 3001);
    assert_eq!(s(a, "mcp.session.id"), "sess-7f3a");
    assert_eq!(s(a, "mcp.protocol.version"), "2025-06-18");
    assert_eq!(s(a, "agentrace.mcp.server"), "everything");
    assert_eq!(s(a, "agentrace.span.kind"), "mcp_tools");
    // OpenInference: a CHAIN step whose output is the tool names.
    assert_eq!(s(a, "openinference.span.kind"), "CHAIN");
    assert_eq!(s(a, "output.value"), "[\"echo\",\"add\"]");
    assert_eq!(s(a, "output.mime_type"), "application/json");

    // From the run's cache: no request went out, so it is no client span.
    let cached = by_sid(&spans, 12);
    assert_eq!(cached.kind, span::SpanKind::Internal as i32);
    assert_eq!(s(&cached.attributes, "network.transport"), "pipe");
    // A server that failed: the error, its class, and its stderr.
    let broken = by_sid(&spans, 16);
    assert_eq!(s(&broken.attributes, "error.type"), "_OTHER");
    assert!(s(&broken.attributes, "agentrace.stderr_tail").contains("ImportError"));
    assert_eq!(
        broken.status.as_ref().unwrap().code,
        status::StatusCode::Error as i32
    );
    // The span's own name travels only when it is not its server's.
    assert!(attr(&broken.attributes, "agentrace.span.name").is_none());
    // …or when the span has no server attribute at all (an SDK's tool list without a server).
    let mut doc = every_kind();
    let renamed = doc.spans.iter_mut().find(|s| s.span_id == sid(13)).unwrap();
    renamed.name = "docs".into();
    let unnamed = doc.spans.iter_mut().find(|s| s.span_id == sid(12)).unwrap();
    unnamed.name = "mcp_tools".into();
    unnamed.attributes.remove("mcp.server");
    let spans = spans_of(&doc);
    assert_eq!(
        s(&by_sid(&spans, 13).attributes, "agentrace.span.name"),
        "docs"
    );
    let back = crate::ingest::otlp::from_request(&map::request(
        std::slice::from_ref(&doc),
        map::resource("agentrace", &[]),
    ))
    .unwrap();
    for (n, name) in [(13, "docs"), (12, "mcp_tools")] {
        let span = back.spans.iter().find(|s| s.span_id == sid(n)).unwrap();
        let stored = doc.spans.iter().find(|s| s.span_id == sid(n)).unwrap();
        assert_eq!(span.name, name);
        assert_eq!(span, stored);
    }
}

#[test]
fn the_api_a_generation_used_is_openai_api_type() {
    let api_type = |api: Option<&str>| {
        let mut doc = every_kind();
        let g = doc
            .spans
            .iter_mut()
            .find(|s| s.kind == crate::trace::SpanKind::Generation)
            .expect("a generation");
        match api {
            Some(api) => g.attributes.insert("api".into(), json!(api)),
            None => g.attributes.remove("api"),
        };
        let spans = spans_of(&doc);
        let a = &named(&spans, "chat gpt-4o-mini").attributes;
        (
            attr(a, "openai.api.type").map(|_| s(a, "openai.api.type").to_string()),
            attr(a, "agentrace.api").is_some(),
        )
    };
    assert_eq!(
        api_type(Some("responses")),
        (Some("responses".into()), true)
    );
    assert_eq!(
        api_type(Some("chat")),
        (Some("chat_completions".into()), true)
    );
    assert_eq!(api_type(None), (None, false));
}
