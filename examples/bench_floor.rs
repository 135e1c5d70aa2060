//! The floor under benchmark B2: the same fan-out of streamed chat completions, made with the
//! libraries agentrace is built on (async-openai over reqwest, on one tokio thread, branches
//! started eight at a time like agentrace's) and nothing else: no workflow, no spans, no store.
//!
//! `bench_floor BASE_URL N` makes N calls at once and exits 0 when every one returned a whole
//! stream (`BENCH_FLOOR_THREADS=2`: on two worker threads instead of one thread; `BENCH_FLOOR_LIMIT=N`:
//! at most N calls at once, the rest queued). B2's wall time minus this one's is what agentrace itself adds to the fan-out.

use std::sync::Arc;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

async fn call(
    client: Client<OpenAIConfig>,
    i: usize,
    limit: Option<Arc<Semaphore>>,
) -> Result<(), String> {
    // Held for the whole call, stream included: at most the limit's connections at once.
    let _permit = match &limit {
        Some(s) => Some(s.acquire().await.map_err(|e| e.to_string())?),
        None => None,
    };
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": format!("question {i}")},
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let mut stream = client
        .chat()
        .create_stream_byot::<Value, Value>(body)
        .await
        .map_err(|e| e.to_string())?;
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        chunk.map_err(|e| e.to_string())?;
        chunks += 1;
    }
    if chunks == 0 {
        return Err("an empty stream".into());
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(base), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<usize>())) else {
        eprintln!("usage: bench_floor BASE_URL N");
        std::process::exit(2);
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .tls_certs_only([])
        .build()
        .unwrap_or_else(|e| {
            eprintln!("cannot build the HTTP client: {e}");
            std::process::exit(1)
        });
    let config = OpenAIConfig::new()
        .with_api_base(base.trim_end_matches('/'))
        .with_api_key(std::env::var("OPENAI_API_KEY").unwrap_or_default());
    let client = Client::build(http, config);
    // `BENCH_FLOOR_THREADS=N`: the calls spread over N worker threads instead.
    let threads = std::env::var("BENCH_FLOOR_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let runtime = match threads {
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1)
    });
    // `BENCH_FLOOR_LIMIT=N`: at most N calls (so N connections) at once, the rest queued.
    let limit = std::env::var("BENCH_FLOOR_LIMIT")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(|n| Arc::new(Semaphore::new(n)));
    let failed = runtime.block_on(async {
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            tasks.push(tokio::spawn(call(client.clone(), i, limit.clone())));
            if i % 8 == 7 {
                tokio::task::yield_now().await;
            }
        }
        let mut failed = 0;
        for task in tasks {
            if let Err(e) = task.await.unwrap_or_else(|e| Err(e.to_string())) {
                eprintln!("{e}");
                failed += 1;
            }
        }
        failed
    });
    std::process::exit(i32::from(failed > 0));
}
