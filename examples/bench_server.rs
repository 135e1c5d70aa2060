//! A fast, minimal OpenAI-compatible chat completions server for the benchmarks.
//!
//! `cargo run --release --example bench_server -- --port 0 --latency-ms 100` prints
//! `listening on http://127.0.0.1:PORT/v1` and answers every `POST /v1/chat/completions` with a
//! fixed short reply after the given latency, streamed (with a usage chunk) or not, as asked.
//! It stops on SIGTERM/SIGINT or when stdin closes.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Clone)]
struct Config {
    latency: Duration,
}

fn chunk(delta: Value, finish: Value) -> String {
    let c = json!({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1_764_000_000u64,
        "model": "bench", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {c}\n\n")
}

async fn complete(State(cfg): State<Config>, body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !cfg.latency.is_zero() {
        tokio::time::sleep(cfg.latency).await;
    }
    let text = "Benchmark answer.";
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16});
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut out = String::new();
        out.push_str(&chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ));
        out.push_str(&chunk(json!({"content": text}), Value::Null));
        out.push_str(&chunk(json!({}), json!("stop")));
        let u = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": 1_764_000_000u64, "model": "bench", "choices": [], "usage": usage});
        out.push_str(&format!("data: {u}\n\ndata: [DONE]\n\n"));
        return (
            [(header::CONTENT_TYPE, "text/event-stream")],
            Body::from(out),
        )
            .into_response();
    }
    axum::Json(json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_764_000_000u64,
        "model": request.get("model").cloned().unwrap_or(json!("bench")),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": usage,
    }))
    .into_response()
}

#[tokio::main]
async fn main() {
    let mut port = 0u16;
    let mut latency_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "--latency-ms" => latency_ms = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(Config {
            latency: Duration::from_millis(latency_ms),
        });
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen: {e}");
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("listening on http://127.0.0.1:{addr}/v1");
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
}
