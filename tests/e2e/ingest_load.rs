//! `serve` under concurrent ingest (issue 16): many senders at once go through the process's one
//! writer, which commits what arrives together in one transaction. What a sender may rely on:
//! every span of a request is queryable as soon as its request returns, a body sent twice at the
//! same moment is stored once, and a bad body fails only its own request. (How fast is for
//! bench/run.sh, never asserted here.)

use std::io::Write;
use std::sync::{Arc, Barrier};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message;

use crate::support::serve::{Served, request};
use crate::support::*;

const SPANS: usize = 20;

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// One trace of [`SPANS`] spans (an agent and its model calls) as gzipped OTLP protobuf, as an
/// exporter sends it; the trace id is `n` spelled out in its 16 bytes.
fn body(n: u32) -> (String, Vec<u8>) {
    let mut trace_id = [0xab_u8; 16];
    trace_id[12..].copy_from_slice(&n.to_be_bytes());
    let now = jiff::Timestamp::now().as_nanosecond() as u64;
    let start = now - 10_000_000_000;
    let span_id = |k: usize| {
        let mut id = [0x5a_u8; 8];
        id[0] = k as u8 + 1;
        id[4..].copy_from_slice(&n.to_be_bytes());
        id.to_vec()
    };
    let spans = (0..SPANS)
        .map(|k| Span {
            trace_id: trace_id.to_vec(),
            span_id: span_id(k),
            parent_span_id: if k == 0 { Vec::new() } else { span_id(0) },
            name: if k == 0 {
                format!("invoke_agent load {n}")
            } else {
                "chat gpt-4o-mini".into()
            },
            start_time_unix_nano: start + k as u64 * 1_000_000,
            end_time_unix_nano: start + k as u64 * 1_000_000 + 500_000,
            attributes: if k == 0 {
                vec![attr("gen_ai.operation.name", "invoke_agent")]
            } else {
                vec![
                    attr("gen_ai.operation.name", "chat"),
                    attr("gen_ai.request.model", "gpt-4o-mini"),
                ]
            },
            status: Some(Status {
                code: status::StatusCode::Ok as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&request.encode_to_vec()).unwrap();
    let hex: String = trace_id.iter().map(|b| format!("{b:02x}")).collect();
    (hex, gz.finish().unwrap())
}

fn post(addr: &str, body: &[u8]) -> u16 {
    request(
        addr,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        body,
    )
    .status
}

/// The spans `GET /api/traces/ID` returns for `trace`.
fn spans_of(addr: &str, trace: &str) -> Vec<String> {
    let r = request(addr, "GET", &format!("/api/traces/{trace}"), &[], &[]);
    assert_eq!(r.status, 200, "GET trace {trace}: {}", r.text());
    r.json()["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["span_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn concurrent_senders_find_every_span_queryable_when_their_request_returns() {
    let env = TestEnv::new();
    let served = Served::start(&env, &["-q"]);
    let (senders, each) = (16, 6);
    let start = Arc::new(Barrier::new(senders));
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let addr = served.addr.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for k in 0..each {
                    let (trace, bytes) = body((s * each + k) as u32);
                    assert_eq!(post(&addr, &bytes), 200, "sender {s}, body {k}");
                    // Right after the answer, from another connection: all of it is there.
                    let spans = spans_of(&addr, &trace);
                    assert_eq!(spans.len(), SPANS, "trace {trace} right after its request");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let listed = env.list_json(&["--limit", "100000"]);
    assert_eq!(listed.len(), senders * each, "none lost, none doubled");
    assert!(listed.iter().all(|t| t["status"] == "ok"), "{listed:?}");
}

#[test]
fn the_same_body_sent_twice_at_once_is_stored_once_and_bad_bodies_fail_alone() {
    let env = TestEnv::new();
    let served = Served::start(&env, &["-q"]);
    // Pairs of senders with the same body at the same moment, with senders of bodies that are
    // not OTLP among them: the bad ones get their 400, every good one its 200.
    let pairs = 8;
    let start = Arc::new(Barrier::new(pairs * 3));
    let mut threads = Vec::new();
    for p in 0..pairs {
        let (trace, bytes) = body(1000 + p as u32);
        for _ in 0..2 {
            let (addr, start, trace, bytes) = (
                served.addr.clone(),
                start.clone(),
                trace.clone(),
                bytes.clone(),
            );
            threads.push(std::thread::spawn(move || {
                start.wait();
                assert_eq!(post(&addr, &bytes), 200);
                let spans = spans_of(&addr, &trace);
                assert_eq!(spans.len(), SPANS, "{trace}: {spans:?}");
            }));
        }
        let (addr, start) = (served.addr.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            start.wait();
            // A truncated gzip stream: refused whole, at its own request.
            let (_, mut bytes) = body(2000 + p as u32);
            bytes.truncate(bytes.len() / 2);
            assert_eq!(post(&addr, &bytes), 400);
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    let listed = env.list_json(&["--limit", "100000"]);
    assert_eq!(listed.len(), pairs, "each pair's trace once, no bad body's");
    for t in &listed {
        let doc = env.show_json(t["trace_id"].as_str().unwrap());
        let mut ids: Vec<&str> = doc["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["span_id"].as_str().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SPANS, "no span stored twice");
        assert_eq!(doc["spans"].as_array().unwrap().len(), SPANS);
    }
}
