//! The ingest benchmark (issue 16, point 7): C concurrent pushers post N bodies each to a running
//! `agentrace serve`, every body one trace of S spans as OTLP protobuf, gzipped, the way an
//! OpenTelemetry exporter sends them (an agent span, then model calls and tool calls under it,
//! with the GenAI attributes and short messages).
//!
//! `bench_ingest URL [--clients C] [--bodies N] [--spans S] [--token T]` prints one JSON line:
//! spans per second until queryable (from the first post until the last request has returned
//! AND the last trace reads back whole through `GET /api/traces/ID`), p50/p99/max request
//! latency, and errors: non-200 answers plus spans missing from the store when every trace is
//! read back afterwards (outside the timing). It never opens the store itself, so the same
//! benchmark measures serve on any store serve runs on (SQLite or PostgreSQL).

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message;
use serde_json::Value;

struct Args {
    url: String,
    clients: usize,
    bodies: usize,
    spans: usize,
    token: Option<String>,
}

fn usage() -> ! {
    eprintln!("usage: bench_ingest URL [--clients C] [--bodies N] [--spans S] [--token T]");
    std::process::exit(2)
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let Some(url) = it.next() else { usage() };
    let mut args = Args {
        url: url.trim_end_matches('/').to_string(),
        clients: 16,
        bodies: 100,
        spans: 100,
        token: std::env::var("AGENTRACE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else { usage() };
        let number = || value.parse::<usize>().ok().filter(|n| *n > 0);
        match flag.as_str() {
            "--clients" => args.clients = number().unwrap_or_else(|| usage()),
            "--bodies" => args.bodies = number().unwrap_or_else(|| usage()),
            "--spans" => args.spans = number().unwrap_or_else(|| usage()),
            "--token" => args.token = Some(value),
            _ => usage(),
        }
    }
    args
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.into()))
}

fn i(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One trace of `spans` spans: an agent span and, under it, model calls and tool calls taking
/// turns. Returns the trace id (hex) and the gzipped protobuf body.
fn body(run: &str, n: usize, spans: usize, now_ns: u64) -> (String, Vec<u8>) {
    let trace_id: [u8; 16] = rand::random();
    let root_id: [u8; 8] = rand::random();
    let start = now_ns - 60_000_000_000;
    let mut out = Vec::with_capacity(spans);
    out.push(Span {
        trace_id: trace_id.to_vec(),
        span_id: root_id.to_vec(),
        name: "invoke_agent support".into(),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: start + spans as u64 * 10_000_000,
        attributes: vec![
            s("gen_ai.operation.name", "invoke_agent"),
            s("gen_ai.agent.name", "support"),
            s("session.id", format!("{run}-{n}")),
        ],
        status: Some(Status {
            code: status::StatusCode::Ok as i32,
            ..Default::default()
        }),
        ..Default::default()
    });
    for k in 1..spans {
        let at = start + k as u64 * 10_000_000;
        let attributes = if k % 2 == 1 {
            vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.request.model", "gpt-4o-mini"),
                s("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                i("gen_ai.usage.input_tokens", 420 + k as i64),
                i("gen_ai.usage.output_tokens", 37),
                s(
                    "gen_ai.input.messages",
                    format!(
                        r#"[{{"role":"user","parts":[{{"type":"text","content":"Where is order {n}-{k}? It was due on Tuesday."}}]}}]"#
                    ),
                ),
                s(
                    "gen_ai.output.messages",
                    r#"[{"role":"assistant","parts":[{"type":"text","content":"Let me look it up in the order system."}]}]"#,
                ),
            ]
        } else {
            vec![
                s("gen_ai.operation.name", "execute_tool"),
                s("gen_ai.tool.name", "lookup_order"),
                s("gen_ai.tool.call.id", format!("call_{k}")),
                s(
                    "gen_ai.tool.call.arguments",
                    format!(r#"{{"order":"{n}-{k}"}}"#),
                ),
                s(
                    "gen_ai.tool.call.result",
                    r#"{"status":"shipped","eta":"Friday"}"#,
                ),
            ]
        };
        out.push(Span {
            trace_id: trace_id.to_vec(),
            span_id: rand::random::<[u8; 8]>().to_vec(),
            parent_span_id: root_id.to_vec(),
            name: if k % 2 == 1 {
                "chat gpt-4o-mini".into()
            } else {
                "execute_tool lookup_order".into()
            },
            kind: if k % 2 == 1 { 3 } else { 1 },
            start_time_unix_nano: at,
            end_time_unix_nano: at + 9_000_000,
            attributes,
            status: Some(Status {
                code: status::StatusCode::Ok as i32,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![s("service.name", "bench-ingest")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans: out,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&request.encode_to_vec());
    (hex(&trace_id), gz.finish().unwrap_or_default())
}

struct Pusher {
    latencies: Vec<Duration>,
    errors: usize,
    /// The trace of the request that returned last, and when.
    last: Option<(Instant, String)>,
    first_error: Option<String>,
}

async fn push(
    http: reqwest::Client,
    url: String,
    token: Option<String>,
    bodies: Vec<(String, Vec<u8>)>,
) -> Pusher {
    let mut p = Pusher {
        latencies: Vec::with_capacity(bodies.len()),
        errors: 0,
        last: None,
        first_error: None,
    };
    for (trace, body) in bodies {
        let mut request = http
            .post(format!("{url}/v1/traces"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "gzip")
            .body(body);
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let t = Instant::now();
        let answer = request.send().await;
        let ok = match answer {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                p.first_error.get_or_insert(format!("{status}: {text}"));
                false
            }
            Err(e) => {
                p.first_error.get_or_insert(e.to_string());
                false
            }
        };
        let done = Instant::now();
        p.latencies.push(done - t);
        if ok {
            p.last = Some((done, trace));
        } else {
            p.errors += 1;
        }
    }
    p
}

/// How many spans `GET /api/traces/ID` returns for `trace` (0 when it is not there).
async fn spans_of(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    trace: &str,
) -> Result<usize, String> {
    let mut request = http.get(format!("{url}/api/traces/{trace}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.map_err(|e| e.to_string())?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(0);
    }
    if !r.status().is_success() {
        return Err(format!("GET /api/traces/{trace}: {}", r.status()));
    }
    let doc: Value = r.json().await.map_err(|e| e.to_string())?;
    Ok(doc
        .get("spans")
        .and_then(Value::as_array)
        .map_or(0, Vec::len))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

async fn bench(args: Args) -> Result<Value, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(args.clients)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos() as u64;
    let run = hex(&rand::random::<[u8; 4]>());
    // Every body made before the clock starts: the pushers only send.
    let work: Vec<Vec<(String, Vec<u8>)>> = (0..args.clients)
        .map(|c| {
            (0..args.bodies)
                .map(|n| body(&run, c * args.bodies + n, args.spans, now_ns))
                .collect()
        })
        .collect();
    let traces: Vec<String> = work
        .iter()
        .flat_map(|w| w.iter().map(|(t, _)| t.clone()))
        .collect();
    let bytes: usize = work.iter().flatten().map(|(_, b)| b.len()).sum();

    let start = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .map(|bodies| {
            tokio::spawn(push(
                http.clone(),
                args.url.clone(),
                args.token.clone(),
                bodies,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut last: Option<(Instant, String)> = None;
    let mut first_error = None;
    for task in tasks {
        let p = task.await.map_err(|e| e.to_string())?;
        latencies.extend(p.latencies);
        errors += p.errors;
        first_error = first_error.or(p.first_error);
        if let Some((at, trace)) = p.last
            && last.as_ref().is_none_or(|(l, _)| at > *l)
        {
            last = Some((at, trace));
        }
    }
    // Queryable: the trace of the request that returned last reads back whole.
    let mut queryable = start.elapsed();
    if let Some((_, trace)) = &last {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if spans_of(&http, &args.url, args.token.as_deref(), trace).await? >= args.spans {
                queryable = start.elapsed();
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("trace {trace} never became queryable"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Then, untimed, every trace: spans lost count as errors.
    let mut missing = 0;
    for trace in &traces {
        let n = spans_of(&http, &args.url, args.token.as_deref(), trace).await?;
        missing += args.spans.saturating_sub(n);
    }
    latencies.sort();
    let ok_spans = (traces.len() - errors) * args.spans;
    Ok(serde_json::json!({
        "clients": args.clients,
        "bodies": traces.len(),
        "spans": traces.len() * args.spans,
        "body_bytes": bytes / traces.len().max(1),
        "queryable_ms": (queryable.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        "spans_per_s": (ok_spans as f64 / queryable.as_secs_f64()).round(),
        "p50_ms": (percentile(&latencies, 50.0) * 10.0).round() / 10.0,
        "p99_ms": (percentile(&latencies, 99.0) * 10.0).round() / 10.0,
        "max_ms": (percentile(&latencies, 100.0) * 10.0).round() / 10.0,
        "errors": errors,
        "missing_spans": missing,
        "first_error": first_error,
    }))
}

fn main() {
    let args = args();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::exit(1)
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("bench_ingest: {e}");
            std::process::exit(1)
        }
    }
}
