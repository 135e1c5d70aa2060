//! OTLP ingest: agentrace's own export read back through both encodings, spans from other SDKs
//! mapped onto agentrace's kinds and attributes, and the reasons a request is refused.

#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status as OtlpStatus, span, status,
};
use prost::Message;
use serde_json::{Value, json};

use super::*;
use crate::export::otlp::map;
use crate::ingest::TraceHeader;
use crate::trace::fixture::{T0, every_kind, obj};
use crate::trace::{ErrorInfo, Span, SpanKind, TraceDoc};

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

// ---------------------------------------------------------------------------------------------
// agentrace's own export, read back.

fn assert_reads_back(doc: &TraceDoc, ingest: &Ingest) {
    assert_eq!(
        ingest.traces,
        [TraceHeader {
            trace_id: doc.trace.trace_id,
            name: "Support".into(),
            workflow: "Support workflow".into(),
            group_id: Some("conv-42".into()),
            metadata: doc.trace.metadata.clone(),
        }]
    );
    // The root span the export adds is the header, not a span.
    assert_eq!(ingest.spans.len(), doc.spans.len());
    for expected in &doc.spans {
        let got = ingest
            .spans
            .iter()
            .find(|s| s.span_id == expected.span_id)
            .unwrap_or_else(|| panic!("span {} is missing", expected.name));
        assert_eq!(got, expected, "span {}", expected.name);
    }
}

#[test]
fn agentraces_own_protobuf_export_reads_back_as_the_stored_trace() {
    let doc = every_kind();
    let request = map::request(std::slice::from_ref(&doc), map::resource("agentrace", &[]));
    let ingest = parse_protobuf(&request.encode_to_vec()).unwrap();
    assert_reads_back(&doc, &ingest);
}

#[test]
fn agentraces_own_json_export_reads_back_as_the_stored_trace() {
    let doc = every_kind();
    let body = serde_json::to_vec(&crate::export::otlp::to_json(
        std::slice::from_ref(&doc),
        "svc",
    ))
    .unwrap();
    let ingest = parse_json(&body).unwrap();
    assert_reads_back(&doc, &ingest);
    // The protobuf messages' own serde reads the same bytes to the same request.
    let theirs: ExportTraceServiceRequest = serde_json::from_slice(&body).unwrap();
    assert_eq!(from_request(&theirs).unwrap(), ingest);
}

#[test]
fn a_stored_attribute_named_like_the_exports_own_reads_back_on_any_span_but_a_tool_list() {
    let mut doc = every_kind();
    doc.spans[0]
        .attributes
        .insert("span.name".into(), json!("mine"));
    let request = map::request(std::slice::from_ref(&doc), map::resource("agentrace", &[]));
    let ingest = parse_protobuf(&request.encode_to_vec()).unwrap();
    assert_reads_back(&doc, &ingest);
}

#[test]
fn several_exported_traces_in_one_request_keep_apart() {
    let a = every_kind();
    let mut b = every_kind();
    b.trace.trace_id = TraceId([0x4c; 16]);
    b.trace.name = "Other".into();
    for s in &mut b.spans {
        s.trace_id = b.trace.trace_id;
    }
    let request = map::request(&[a, b], map::resource("agentrace", &[]));
    let ingest = parse_protobuf(&request.encode_to_vec()).unwrap();
    let names: Vec<&str> = ingest.traces.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Support", "Other"]);
    assert_eq!(ingest.spans.len(), 32);
    assert_eq!(
        ingest
            .spans
            .iter()
            .filter(|s| s.trace_id == TraceId([0x4c; 16]) && s.parent_id.is_none())
            .count(),
        4
    );
}

// ---------------------------------------------------------------------------------------------
// Spans from other SDKs.

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

const TA: [u8; 16] = [0xa1; 16];
const TB: [u8; 16] = [0xb2; 16];
const TC: [u8; 16] = [0xc3; 16];
const NS: u64 = 1_795_990_774_000_000_000;

fn otel_span(
    trace: [u8; 16],
    id: u8,
    parent: Option<u8>,
    name: &str,
    kind: span::SpanKind,
    attributes: Vec<KeyValue>,
) -> OtlpSpan {
    OtlpSpan {
        trace_id: trace.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0x0f, id],
        parent_span_id: parent.map_or_else(Vec::new, |p| vec![0, 0, 0, 0, 0, 0, 0x0f, p]),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: NS + u64::from(id) * 1_000_000,
        end_time_unix_nano: NS + u64::from(id) * 1_000_000 + 500_123,
        attributes,
        status: Some(OtlpStatus::default()),
        ..Default::default()
    }
}

fn fsid(id: u8) -> SpanId {
    SpanId([0, 0, 0, 0, 0, 0, 0x0f, id])
}

fn foreign_request() -> ExportTraceServiceRequest {
    // Trace A: an HTTP server span over a GenAI agent, a model call, a tool call and a failure.
    let root = otel_span(
        TA,
        1,
        None,
        "POST /chat",
        span::SpanKind::Server,
        vec![
            s("http.request.method", "POST"),
            s("metadata.user", "u1"),
            i("metadata.attempt", 2),
        ],
    );
    let agent = otel_span(
        TA,
        2,
        Some(1),
        "invoke_agent Planner",
        span::SpanKind::Internal,
        vec![
            s("gen_ai.operation.name", "invoke_agent"),
            s("gen_ai.agent.name", "Planner"),
            s("gen_ai.conversation.id", "conv-7"),
        ],
    );
    let chat = otel_span(
        TA,
        3,
        Some(2),
        "chat gpt-4o",
        span::SpanKind::Client,
        vec![
            s("gen_ai.operation.name", "chat"),
            s("gen_ai.request.model", "gpt-4o"),
            s("gen_ai.response.model", "gpt-4o-2024-08-06"),
            i("gen_ai.usage.input_tokens", 10),
            i("gen_ai.usage.output_tokens", 5),
            s(
                "gen_ai.input.messages",
                r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#,
            ),
            s(
                "gen_ai.output.messages",
                r#"[{"role":"assistant","parts":[{"type":"text","content":"hello"}]}]"#,
            ),
            kv(
                "gen_ai.response.finish_reasons",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(any_value::Value::StringValue("stop".into())),
                    }],
                }),
            ),
            kv(
                "gen_ai.request.temperature",
                any_value::Value::DoubleValue(0.3),
            ),
        ],
    );
    let tool = otel_span(
        TA,
        4,
        Some(2),
        "execute_tool search",
        span::SpanKind::Internal,
        vec![
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "search"),
            s("gen_ai.tool.call.id", "call_9"),
            s("gen_ai.tool.call.arguments", r#"{"q":"rust"}"#),
            s("gen_ai.tool.call.result", "3 hits"),
        ],
    );
    let mut failed = otel_span(TA, 5, Some(2), "validate", span::SpanKind::Internal, vec![]);
    failed.status = Some(OtlpStatus {
        code: status::StatusCode::Error as i32,
        message: String::new(),
    });
    failed.events.push(span::Event {
        time_unix_nano: NS + 5_000_000 + 100_000,
        name: "exception".into(),
        attributes: vec![
            s("exception.type", "ValueError"),
            s("exception.message", "bad input"),
            s("exception.stacktrace", "Traceback ..."),
        ],
        dropped_attributes_count: 0,
    });
    let resource_a = Resource {
        attributes: vec![
            s("service.name", "support-bot"),
            s("deployment.environment", "prod"),
        ],
        ..Default::default()
    };

    // Trace B: OpenInference spans, from a process that did not name its service.
    let chain = otel_span(
        TB,
        6,
        None,
        "RAG",
        span::SpanKind::Internal,
        vec![
            s("openinference.span.kind", "CHAIN"),
            s("metadata", r#"{"env":"staging","n":1}"#),
            s("session.id", "sess-1"),
        ],
    );
    let mut llm = otel_span(
        TB,
        7,
        Some(6),
        "ChatOpenAI",
        span::SpanKind::Unspecified,
        vec![
            s("openinference.span.kind", "LLM"),
            s("llm.model_name", "gpt-4o-mini"),
            i("llm.token_count.prompt", 7),
            i("llm.token_count.completion", 3),
            i("llm.token_count.total", 11),
            s(
                "input.value",
                r#"{"messages":[{"role":"user","content":"q"}]}"#,
            ),
            s("input.mime_type", "application/json"),
            s("output.value", "{not json"),
            kv("raw", any_value::Value::BytesValue(vec![1, 2, 3, 255])),
            kv(
                "params",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![i("k", 1), s("s", "v")],
                }),
            ),
            kv("flag", any_value::Value::BoolValue(true)),
        ],
    );
    llm.end_time_unix_nano = 0;
    llm.links.push(span::Link {
        trace_id: TA.to_vec(),
        span_id: fsid(1).0.to_vec(),
        attributes: vec![s("why", "follows")],
        ..Default::default()
    });
    llm.trace_state = "vendor=1".into();
    let retrieve = otel_span(
        TB,
        8,
        Some(6),
        "retrieve",
        span::SpanKind::Internal,
        vec![s("openinference.span.kind", "RETRIEVER")],
    );
    let resource_b = Resource {
        attributes: vec![s("service.name", "unknown_service:python")],
        ..Default::default()
    };

    // Trace C: a span whose parent is elsewhere.
    let orphan = otel_span(TC, 9, Some(42), "late", span::SpanKind::Internal, vec![]);

    let scope = |name: &str| {
        Some(InstrumentationScope {
            name: name.into(),
            version: "1.2.3".into(),
            ..Default::default()
        })
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(resource_a),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope("opentelemetry.instrumentation.fastapi"),
                        spans: vec![root],
                        schema_url: String::new(),
                    },
                    ScopeSpans {
                        scope: scope("opentelemetry.instrumentation.openai_agents"),
                        spans: vec![agent, chat, tool, failed],
                        schema_url: String::new(),
                    },
                ],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: Some(resource_b),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![chain, llm, retrieve, orphan],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

#[test]
fn spans_from_other_sdks_map_onto_agentraces_kinds_and_attributes() {
    let ingest = parse_protobuf(&foreign_request().encode_to_vec()).unwrap();

    // Headers for the traces whose root came; none for trace C.
    assert_eq!(
        ingest.traces,
        [
            TraceHeader {
                trace_id: TraceId(TA),
                name: "POST /chat".into(),
                workflow: "support-bot".into(),
                group_id: Some("conv-7".into()),
                metadata: obj(json!({"user": "u1", "attempt": 2})),
            },
            TraceHeader {
                trace_id: TraceId(TB),
                name: "RAG".into(),
                workflow: "RAG".into(),
                group_id: Some("sess-1".into()),
                metadata: obj(json!({"env": "staging", "n": 1})),
            },
        ]
    );
    let spans = &ingest.spans;
    assert_eq!(spans.len(), 9);

    let root = by_name(spans, "POST /chat");
    assert_eq!(root.kind, SpanKind::Custom);
    assert_eq!(root.parent_id, None);
    assert_eq!(root.status, Status::Ok);
    assert_eq!(root.started_at, Timestamp(T0 + 1_000));
    assert_eq!(
        root.ended_at,
        Some(Timestamp(T0 + 1_500)),
        "nanoseconds truncated"
    );
    assert_eq!(root.attributes["http.request.method"], "POST");
    assert_eq!(root.attributes["otel.span_kind"], "server");
    assert_eq!(
        root.attributes["otel.scope.name"],
        "opentelemetry.instrumentation.fastapi"
    );
    assert_eq!(root.attributes["otel.scope.version"], "1.2.3");
    assert_eq!(root.attributes["resource.service.name"], "support-bot");
    assert_eq!(root.attributes["resource.deployment.environment"], "prod");

    let agent = by_name(spans, "invoke_agent Planner");
    assert_eq!(agent.kind, SpanKind::Agent);
    assert_eq!(agent.parent_id, Some(fsid(1)));
    assert_eq!(agent.attributes["agent"], "Planner");

    let chat = by_name(spans, "chat gpt-4o");
    assert_eq!(chat.kind, SpanKind::Generation);
    assert_eq!(chat.parent_id, Some(fsid(2)));
    assert_eq!(chat.attributes["model"], "gpt-4o-2024-08-06");
    assert_eq!(chat.usage(), Some(Usage::new(10, 5)));
    assert_eq!(
        chat.attributes["input"],
        json!([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
    );
    assert_eq!(chat.attributes["output"][0]["parts"][0]["content"], "hello");
    assert_eq!(
        chat.attributes["gen_ai.request.model"], "gpt-4o",
        "originals kept"
    );
    assert_eq!(
        chat.attributes["gen_ai.response.finish_reasons"],
        json!(["stop"])
    );
    assert_eq!(chat.attributes["gen_ai.request.temperature"], 0.3);
    assert_eq!(chat.attributes["otel.span_kind"], "client");

    let tool = by_name(spans, "execute_tool search");
    assert_eq!(tool.kind, SpanKind::Function);
    assert_eq!(tool.attributes["tool"], "search");
    assert_eq!(tool.attributes["call_id"], "call_9");
    assert_eq!(tool.attributes["input"], r#"{"q":"rust"}"#);
    assert_eq!(tool.attributes["output"], "3 hits");

    let failed = by_name(spans, "validate");
    assert_eq!(failed.status, Status::Error);
    assert_eq!(
        failed.error,
        Some(ErrorInfo::with_data(
            "bad input",
            json!({"type": "ValueError", "message": "bad input", "stacktrace": "Traceback ..."})
        ))
    );
    assert_eq!(failed.events.len(), 1);
    assert_eq!(failed.events[0].name, "exception");
    assert_eq!(failed.events[0].time, Timestamp(T0 + 5_100));
    assert_eq!(failed.events[0].attributes["exception.type"], "ValueError");

    let chain = by_name(spans, "RAG");
    assert_eq!(chain.kind, SpanKind::Custom);
    assert_eq!(
        chain.attributes["resource.service.name"],
        "unknown_service:python"
    );
    assert!(!chain.attributes.contains_key("otel.scope.name"));

    let llm = by_name(spans, "ChatOpenAI");
    assert_eq!(llm.kind, SpanKind::Generation);
    assert_eq!(llm.status, Status::Running);
    assert_eq!(llm.ended_at, None);
    assert_eq!(llm.attributes["model"], "gpt-4o-mini");
    assert_eq!(
        llm.usage(),
        Some(Usage {
            input_tokens: 7,
            output_tokens: 3,
            total_tokens: 11
        })
    );
    assert_eq!(
        llm.attributes["input"],
        json!({"messages": [{"role": "user", "content": "q"}]})
    );
    assert_eq!(llm.attributes["output"], "{not json");
    assert_eq!(llm.attributes["raw"], "AQID/w==");
    assert_eq!(llm.attributes["params"], json!({"k": 1, "s": "v"}));
    assert_eq!(llm.attributes["flag"], true);
    assert!(
        !llm.attributes.contains_key("otel.span_kind"),
        "unspecified"
    );
    assert_eq!(llm.attributes["otel.trace_state"], "vendor=1");
    assert_eq!(
        llm.attributes["otel.links"],
        json!([{"trace_id": "a1".repeat(16), "span_id": "0000000000000f01",
                "attributes": {"why": "follows"}}])
    );

    assert_eq!(by_name(spans, "retrieve").kind, SpanKind::Custom);
    let orphan = by_name(spans, "late");
    assert_eq!(orphan.parent_id, Some(fsid(42)));
    assert_eq!(orphan.trace_id, TraceId(TC));
}

/// One request of `spans`, under a resource without a service name.
fn request_of(spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: None,
            scope_spans: vec![ScopeSpans {
                scope: None,
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

#[test]
fn mcp_client_spans_from_other_sdks_read_as_tool_lists_and_mcp_calls() {
    // As the MCP conventions' examples have them: a tools/list and a tools/call over stdio (no
    // server name anywhere), and a tools/call over HTTP whose result said isError.
    let list = otel_span(
        TC,
        1,
        None,
        "tools/list",
        span::SpanKind::Client,
        vec![
            s("mcp.method.name", "tools/list"),
            s("mcp.server.name", "weather"),
            s("network.transport", "pipe"),
            s("mcp.protocol.version", "2025-06-18"),
            s("openinference.span.kind", "CHAIN"),
            s("output.value", r#"["get-weather"]"#),
        ],
    );
    let call = otel_span(
        TC,
        2,
        None,
        "tools/call get-weather",
        span::SpanKind::Client,
        vec![
            s("mcp.method.name", "tools/call"),
            s("gen_ai.operation.name", "execute_tool"),
            s("gen_ai.tool.name", "get-weather"),
            s("network.transport", "pipe"),
            s("mcp.session.id", "8267461134f24305af708e66b8eda71a"),
        ],
    );
    let mut failed = otel_span(
        TC,
        3,
        None,
        "tools/call lookup",
        span::SpanKind::Client,
        vec![
            s("mcp.method.name", "tools/call"),
            s("network.transport", "tcp"),
            s("network.protocol.name", "http"),
            s("server.address", "mcp.example.com"),
            i("server.port", 8443),
            s("error.type", "tool_error"),
        ],
    );
    failed.status = Some(OtlpStatus {
        code: status::StatusCode::Error as i32,
        message: "no such record".into(),
    });
    let spans = parse_protobuf(&request_of(vec![list, call, failed]).encode_to_vec())
        .unwrap()
        .spans;

    let list = &spans[0];
    assert_eq!(list.kind, SpanKind::McpTools);
    assert_eq!(
        list.name, "weather",
        "named after its server, as agentrace's are"
    );
    assert_eq!(list.mcp_server(), Some("weather"));
    assert_eq!(list.mcp_tool_names(), ["get-weather"]);
    assert_eq!(list.attributes["mcp.transport"], "stdio");
    assert_eq!(list.attributes["mcp.protocol_version"], "2025-06-18");

    let call = &spans[1];
    assert_eq!(call.kind, SpanKind::Function);
    assert_eq!(call.attributes["tool"], "get-weather");
    assert_eq!(call.attributes["mcp.transport"], "stdio");
    assert_eq!(
        call.attributes["mcp.session_id"],
        "8267461134f24305af708e66b8eda71a"
    );
    // A stdio span names no server: the call is an MCP call of no known server.
    assert_eq!(call.mcp_server(), None);
    assert!(!call.attributes.contains_key("mcp.is_error"));

    let failed = &spans[2];
    assert_eq!(
        failed.kind,
        SpanKind::Function,
        "tools/call without gen_ai attributes"
    );
    assert_eq!(failed.attributes["tool"], "lookup", "from the span name");
    assert_eq!(failed.mcp_server(), Some("mcp.example.com:8443"));
    assert_eq!(failed.attributes["mcp.transport"], "streamable_http");
    assert_eq!(failed.attributes["mcp.is_error"], true);
    assert_eq!(failed.status, Status::Error);
    assert_eq!(failed.error.as_ref().unwrap().message, "no such record");
}

#[test]
fn the_same_request_in_json_maps_the_same() {
    let request = foreign_request();
    let json = serde_json::to_vec(&request).unwrap();
    assert_eq!(
        parse_json(&json).unwrap(),
        parse_protobuf(&request.encode_to_vec()).unwrap()
    );
}

/// What OTLP/JSON senders write besides the spec's canonical form.
#[test]
fn otlp_json_as_senders_write_it() {
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
        "scopeSpans": [{
            "scope": {"name": "ai"},
            "spans": [
                {
                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                    "spanId": "EEE19B7EC3C1B174",
                    "name": "ai.generateText",
                    "kind": "SPAN_KIND_CLIENT",
                    "startTimeUnixNano": 1795990774000000000u64,
                    "endTimeUnixNano": "1795990774250000000",
                    "attributes": [
                        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": 4}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "6"}},
                        {"key": "empty", "value": {"arrayValue": {}}},
                        {"key": "nan", "value": {"doubleValue": "NaN"}},
                        {"key": "bytes", "value": {"bytesValue": "AQID"}},
                        {"key": "nothing", "value": {}},
                        {"key": "null"}
                    ],
                    "events": [],
                    "links": [],
                    "status": {"code": "STATUS_CODE_ERROR", "message": "quota"}
                },
                {
                    "trace_id": "5b8efff798038103d269b633813fc60c",
                    "span_id": "1111111111111111",
                    "parent_span_id": "eee19b7ec3c1b174",
                    "name": "child",
                    "kind": 1,
                    "start_time_unix_nano": "1795990774100000000",
                    "end_time_unix_nano": null,
                    "status": {}
                }
            ]
        }]
    }]});
    let ingest = parse_json(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(ingest.traces.len(), 1);
    assert_eq!(ingest.traces[0].workflow, "web");
    let g = by_name(&ingest.spans, "ai.generateText");
    assert_eq!(
        g.trace_id,
        TraceId::parse("5b8efff798038103d269b633813fc60c").unwrap()
    );
    assert_eq!(g.kind, SpanKind::Generation);
    assert_eq!(g.status, Status::Error);
    assert_eq!(g.error, Some(ErrorInfo::with_data("quota", json!({}))));
    assert_eq!(g.usage(), Some(Usage::new(4, 6)));
    assert_eq!(g.ended_at, Some(Timestamp(T0 + 250_000)));
    assert_eq!(g.attributes["otel.span_kind"], "client");
    assert_eq!(g.attributes["empty"], json!([]));
    assert_eq!(g.attributes["nan"], "NaN");
    assert_eq!(g.attributes["bytes"], "AQID");
    assert_eq!(g.attributes["nothing"], Value::Null);
    assert_eq!(g.attributes["null"], Value::Null);
    let child = by_name(&ingest.spans, "child");
    assert_eq!(child.parent_id, Some(g.span_id));
    assert_eq!(child.status, Status::Running);
    assert_eq!(child.attributes["otel.span_kind"], "internal");
}

#[test]
fn empty_requests_are_valid() {
    assert_eq!(parse_protobuf(b"").unwrap(), Ingest::default());
    assert_eq!(parse_json(b"{}").unwrap(), Ingest::default());
    assert_eq!(
        parse_json(br#"{"resourceSpans": [{"scopeSpans": [{"spans": []}]}]}"#).unwrap(),
        Ingest::default()
    );
}

fn json_err(body: Value) -> String {
    parse_json(&serde_json::to_vec(&body).unwrap())
        .unwrap_err()
        .0
}

fn proto_err(request: &ExportTraceServiceRequest) -> String {
    parse_protobuf(&request.encode_to_vec()).unwrap_err().0
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    assert!(
        parse_protobuf(b"\xff\xff\xff")
            .unwrap_err()
            .0
            .starts_with("invalid OTLP protobuf: ")
    );
    assert!(
        parse_json(b"{nope")
            .unwrap_err()
            .0
            .starts_with("invalid OTLP JSON: ")
    );
    assert_eq!(
        json_err(json!([])),
        "invalid OTLP JSON: the body: expected an object, got an array"
    );
    assert_eq!(
        json_err(json!({"resourceSpans": {}})),
        "invalid OTLP JSON: resourceSpans: expected an array, got an object"
    );
    let one = |span: Value| json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]});
    let good = json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                      "name": "x", "startTimeUnixNano": "1", "endTimeUnixNano": "2"});
    let with = |key: &str, value: Value| {
        let mut bad = good.clone();
        bad[key] = value;
        json_err(one(bad))
    };
    assert_eq!(
        with("kind", json!("SPAN_KIND_WEIRD")),
        "invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[0].kind: unknown value \"SPAN_KIND_WEIRD\""
    );
    assert_eq!(
        with("startTimeUnixNano", json!("soon")),
        "invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano: expected an integer, got \"soon\""
    );
    assert_eq!(
        with("endTimeUnixNano", json!(-1)),
        "invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[0].endTimeUnixNano: -1 is out of range"
    );
    assert_eq!(
        with("traceId", json!("xyz!")),
        "invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[0].traceId: not a hex id: \"xyz!\""
    );
    assert_eq!(
        with(
            "attributes",
            json!([{"key": "a", "value": {"intValue": true}}])
        ),
        "invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value.intValue: expected an integer, got true"
    );
    assert_eq!(
        with("name", json!(5)),
        "invalid OTLP JSON: resourceSpans[0].scopeSpans[0].spans[0].name: expected a string, got a number"
    );
    // Ids, the same through either encoding.
    assert_eq!(
        with("traceId", json!("abcdef")),
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: a trace id must be 16 bytes, got 3"
    );
    assert_eq!(
        with("traceId", json!("")),
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: a trace id must be 16 bytes, got 0"
    );

    let mut request = foreign_request();
    request.resource_spans[0].scope_spans[1].spans[2].trace_id = vec![1, 2, 3];
    assert_eq!(
        proto_err(&request),
        "resourceSpans[0].scopeSpans[1].spans[2].traceId: a trace id must be 16 bytes, got 3"
    );
    let mut request = foreign_request();
    request.resource_spans[1].scope_spans[0].spans[3].trace_id = vec![0; 16];
    assert_eq!(
        proto_err(&request),
        "resourceSpans[1].scopeSpans[0].spans[3].traceId: a trace id must not be all zeros"
    );
    let mut request = foreign_request();
    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0; 8];
    assert_eq!(
        proto_err(&request),
        "resourceSpans[0].scopeSpans[0].spans[0].spanId: a span id must not be all zeros"
    );
    let mut request = foreign_request();
    request.resource_spans[0].scope_spans[1].spans[0].span_id = vec![1; 4];
    assert_eq!(
        proto_err(&request),
        "resourceSpans[0].scopeSpans[1].spans[0].spanId: a span id must be 8 bytes, got 4"
    );
    let mut request = foreign_request();
    request.resource_spans[0].scope_spans[1].spans[1].parent_span_id = vec![1; 3];
    assert_eq!(
        proto_err(&request),
        "resourceSpans[0].scopeSpans[1].spans[1].parentSpanId: a span id must be 8 bytes, got 3"
    );
    // A zero parent is no parent.
    let mut request = foreign_request();
    request.resource_spans[0].scope_spans[1].spans[0].parent_span_id = vec![0; 8];
    let ingest = parse_protobuf(&request.encode_to_vec()).unwrap();
    assert_eq!(
        by_name(&ingest.spans, "invoke_agent Planner").parent_id,
        None
    );
}

#[test]
fn base64_both_ways() {
    for bytes in [
        &b""[..],
        b"\x01",
        b"\x01\x02",
        b"\x01\x02\x03",
        b"\xff\xfe\xfd\xfc\xfb",
    ] {
        let text = b64::encode(bytes);
        assert_eq!(b64::decode(&text).as_deref(), Some(bytes), "{text}");
    }
    assert_eq!(b64::encode(b"\x01\x02\x03\xff"), "AQID/w==");
    assert_eq!(b64::decode("AQID_w").unwrap(), b"\x01\x02\x03\xff");
    assert_eq!(b64::decode("A"), None);
    assert_eq!(b64::decode("A*"), None);
}
