//! The test tooling itself: the fake OpenAI server answers, streams, calls tools, cuts
//! streams and injects faults as the other sections rely on; the redactor hides ids and times.

use std::time::Duration;
use std::time::Instant;

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn support_fake_server_answers_and_records_chat_completions() {
    use std::io::{Read, Write};
    let server = FakeOpenAI::start();
    server.push(Reply::unauthorized());
    let post = |path: &str| -> String {
        let body = r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}"#;
        let mut stream =
            std::net::TcpStream::connect(server.url().trim_start_matches("http://")).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let first = post("/v1/chat/completions");
    assert!(first.starts_with("HTTP/1.1 401"), "{first}");
    assert!(first.contains("invalid_api_key"));
    let second = post("/chat/completions");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.contains(r#""content":"echo: hi""#), "{second}");
    assert!(second.contains(r#""total_tokens":15"#), "{second}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].path, "/chat/completions");
    assert_eq!(requests[0].headers["authorization"], "Bearer k");
    assert_eq!(requests[0].message("user").as_deref(), Some("hi"));
    assert!(
        std::net::TcpStream::connect(
            refused_url()
                .trim_start_matches("http://")
                .trim_end_matches("/v1")
        )
        .is_err()
    );
}

/// POSTs a chat completion request to the fake and returns the content type and the body (or
/// the error that ended reading it, with the bytes read until then).
fn fake_post(server: &FakeOpenAI, body: Value) -> (String, Result<String, String>) {
    // reqwest is built without a TLS provider of its own; an error only means one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sent = reqwest::Client::new()
            .post(format!("{}/chat/completions", server.base_url()))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return (String::new(), Err(format!("{e}; read: "))),
        };
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let mut text = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => text.extend_from_slice(&chunk),
                Ok(None) => return (content_type, Ok(String::from_utf8(text).unwrap())),
                Err(e) => {
                    let read = String::from_utf8_lossy(&text).into_owned();
                    return (content_type, Err(format!("{e}; read: {read}")));
                }
            }
        }
    })
}

/// The `data:` payloads of an event stream, `[DONE]` included.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_string()
        })
        .collect()
}

/// A streamed answer put back together: (text, tool calls as (id, name, arguments), finish
/// reason, usage chunk, whether it ended with `[DONE]`).
struct Assembled {
    text: String,
    tool_calls: Vec<(String, String, String)>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    done: bool,
}

fn assemble(events: &[String]) -> Assembled {
    let mut a = Assembled {
        text: String::new(),
        tool_calls: Vec::new(),
        finish_reason: None,
        usage: None,
        done: false,
    };
    for (i, data) in events.iter().enumerate() {
        if data == "[DONE]" {
            assert_eq!(i, events.len() - 1, "[DONE] comes last");
            a.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk["id"].is_string() && chunk["created"].is_u64() && chunk["model"] == "m");
        if !chunk["usage"].is_null() {
            assert_eq!(
                chunk["choices"],
                json!([]),
                "the usage chunk has no choices"
            );
            a.usage = Some(chunk["usage"].clone());
            continue;
        }
        let choice = &chunk["choices"][0];
        let delta = &choice["delta"];
        if i == 0 {
            assert_eq!(delta["role"], "assistant", "the first delta has the role");
        } else {
            assert!(
                delta.get("role").is_none(),
                "only the first delta has the role"
            );
        }
        if let Some(text) = delta["content"].as_str() {
            a.text.push_str(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call["id"].as_str() {
                assert_eq!(index, a.tool_calls.len(), "a new call opens the next index");
                let name = call["function"]["name"].as_str().unwrap().to_string();
                a.tool_calls.push((id.to_string(), name, String::new()));
            }
            a.tool_calls[index].2 += call["function"]["arguments"].as_str().unwrap_or("");
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            a.finish_reason = Some(reason.to_string());
        }
    }
    a
}

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({"model": "m", "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "hello there, streaming world"}
    ]});
    if stream {
        body["stream"] = json!(true);
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
    }
    body
}

#[test]
fn support_fake_server_streams_the_same_text_with_a_usage_chunk() {
    let server = FakeOpenAI::start();
    let (plain_type, plain) = fake_post(&server, chat_body(false, false));
    assert_eq!(plain_type, "application/json");
    let plain: Value = serde_json::from_str(&plain.unwrap()).unwrap();
    let text = plain["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text, "echo: hello there, streaming world");

    let (stream_type, streamed) = fake_post(&server, chat_body(true, true));
    assert!(
        stream_type.starts_with("text/event-stream"),
        "{stream_type}"
    );
    let events = sse_data(&streamed.unwrap());
    let content_deltas = events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(
        content_deltas >= 3,
        "the text comes in several deltas: {events:#?}"
    );
    let a = assemble(&events);
    assert_eq!(a.text, text, "streamed text = non-streamed text");
    assert_eq!(a.finish_reason.as_deref(), Some("stop"));
    assert_eq!(a.usage, Some(plain["usage"].clone()));
    assert!(a.done);

    // Without include_usage (as OpenAI does) and for NoUsageStream (as llama.cpp does): no usage.
    let (_, streamed) = fake_post(&server, chat_body(true, false));
    let a = assemble(&sse_data(&streamed.unwrap()));
    assert_eq!((a.text.as_str(), a.usage, a.done), (text, None, true));
    server.push(Reply::NoUsageStream);
    let (_, streamed) = fake_post(&server, chat_body(true, true));
    let a = assemble(&sse_data(&streamed.unwrap()));
    assert_eq!((a.text.as_str(), a.usage, a.done), (text, None, true));
    server.push(Reply::NoUsageStream);
    let (_, plain) = fake_post(&server, chat_body(false, false));
    let plain: Value = serde_json::from_str(&plain.unwrap()).unwrap();
    assert!(plain.get("usage").is_none(), "{plain:#}");

    let requests = server.requests();
    assert!(!requests[0].is_stream() && requests[1].is_stream());
    assert!(requests[1].wants_stream_usage() && !requests[2].wants_stream_usage());
}

#[test]
fn support_fake_server_calls_tools_streamed_or_not() {
    let server = FakeOpenAI::start();
    let calls = [
        ("get_weather", json!({"city": "Paris", "unit": "celsius"})),
        ("get_time", json!({"zone": "Europe/Paris"})),
    ];
    server.push(Reply::tool_calls(&calls));
    server.push(Reply::tool_calls(&calls));
    let (_, plain) = fake_post(&server, chat_body(false, false));
    let plain: Value = serde_json::from_str(&plain.unwrap()).unwrap();
    let choice = &plain["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let (p, c) = TOOL_CALL_USAGE;
    assert_eq!(plain["usage"]["total_tokens"], p + c);
    let plain_calls: Vec<(String, String, String)> = choice["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["type"], "function");
            (
                t["id"].as_str().unwrap().to_string(),
                t["function"]["name"].as_str().unwrap().to_string(),
                t["function"]["arguments"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(plain_calls.len(), 2);
    for (i, (id, name, arguments)) in plain_calls.iter().enumerate() {
        assert!(id.starts_with("call_"), "{id}");
        assert_eq!(name, calls[i].0);
        assert_eq!(
            serde_json::from_str::<Value>(arguments).unwrap(),
            calls[i].1
        );
    }

    let (_, streamed) = fake_post(&server, chat_body(true, true));
    let events = sse_data(&streamed.unwrap());
    let a = assemble(&events);
    assert_eq!(a.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(a.text, "");
    assert_eq!(a.usage.unwrap()["total_tokens"], p + c);
    assert_eq!(a.tool_calls.len(), 2);
    for (i, (id, name, arguments)) in a.tool_calls.iter().enumerate() {
        assert!(
            id.starts_with("call_") && !plain_calls.iter().any(|c| &c.0 == id),
            "ids are never reused: {id}"
        );
        assert_eq!(name, calls[i].0);
        assert_eq!(
            arguments, &plain_calls[i].2,
            "the same arguments, in fragments"
        );
    }
    let fragments = events
        .iter()
        .filter(|e| e.contains(r#""arguments":"#) && !e.contains(r#""id":"call_"#))
        .count();
    assert!(fragments >= 4, "arguments arrive in fragments: {events:#?}");
}

#[test]
fn support_fake_server_can_cut_a_stream() {
    let server = FakeOpenAI::start();
    server.push(Reply::CutStream);
    let (_, cut) = fake_post(&server, chat_body(true, true));
    let error = cut.expect_err("a cut stream ends in a read error");
    let read = error.split_once("; read: ").unwrap().1;
    let events = sse_data(read);
    let a = assemble(&events);
    assert!(a.text.starts_with("partial: ") && a.text.len() < "partial: hello there".len() + 20);
    assert_eq!((a.finish_reason, a.usage, a.done), (None, None, false));

    server.push(Reply::CutStream);
    let (_, cut) = fake_post(&server, chat_body(false, false));
    assert!(cut.is_err(), "a cut JSON body ends in a read error too");
}

/// A raw `POST /v1/chat/completions` (non-streaming), returning the whole HTTP response text
/// (status line and headers included).
fn raw_post(server: &FakeOpenAI) -> String {
    use std::io::{Read, Write};
    let body = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let mut stream =
        std::net::TcpStream::connect(server.url().trim_start_matches("http://")).unwrap();
    write!(
        stream,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn support_fake_server_injects_faults_and_counts_concurrent_requests() {
    let server = FakeOpenAI::start();
    server.push_all([
        Reply::rate_limited(1),
        Reply::server_error(),
        Reply::bad_request(),
    ]);
    let limited = raw_post(&server);
    assert!(limited.starts_with("HTTP/1.1 429"), "{limited}");
    assert!(
        limited
            .to_ascii_lowercase()
            .contains("\r\nretry-after: 1\r\n"),
        "{limited}"
    );
    assert!(raw_post(&server).starts_with("HTTP/1.1 500"));
    assert!(raw_post(&server).starts_with("HTTP/1.1 400"));
    assert!(raw_post(&server).starts_with("HTTP/1.1 200"));
    assert_eq!(server.request_count(), 4);
    assert_eq!(server.max_in_flight(), 1, "one request at a time so far");

    // Five requests at once, each answered after a delay: all five are in flight together.
    server.set_default(Reply::delayed(1500, Reply::text("slow", 1, 1)));
    let started = Instant::now();
    let posts: Vec<_> = (0..5)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || raw_post(&server))
        })
        .collect();
    for post in posts {
        let response = post.join().unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains(r#""content":"slow""#), "{response}");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the delay holds the answer"
    );
    assert_eq!(server.max_in_flight(), 5);
    assert_eq!(server.in_flight(), 0);
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 9);
    assert!(
        arrivals.windows(2).all(|w| w[0] <= w[1]),
        "in arrival order"
    );
    assert!(arrivals[3] <= started && arrivals[4] >= started);
}

#[test]
fn support_redaction_replaces_ids_times_and_durations() {
    let text = "trace_0123456789abcdef0123456789abcdef span_0123456789abcdef 2026-11-24T22:19:34.123456Z took 812.4ms (1.2s) v2 x3";
    assert_eq!(
        redact(text),
        "trace_[ID] span_[ID] [TIME] took [DUR] ([DUR]) v2 x3"
    );
    let doc = json!({"trace_id": "trace_0123456789abcdef0123456789abcdef", "spans": [
        {"span_id": "span_0123456789abcdef", "parent_id": null, "duration_ms": 1.5},
        {"span_id": "span_1111111111111111", "parent_id": "span_0123456789abcdef", "started_at": "2026-11-24T22:19:34.123456Z"}
    ]});
    assert_eq!(
        redact_json(&doc),
        json!({"trace_id": "trace_1", "spans": [
            {"span_id": "span_1", "parent_id": null, "duration_ms": "[DUR]"},
            {"span_id": "span_2", "parent_id": "span_1", "started_at": "[TIME]"}
        ]})
    );
}
