//! End-to-end tests of `agentrace serve`: the server as a child process, spoken to
//! over real TCP. Ingest from the Agents SDK payload and from OTLP (agentrace's own exporter as
//! the client), the JSON API against the CLI's JSON, live change events, tokens, the loopback
//! `Host` rule, bad payloads, size limits, shutdown, and the UI in headless Chromium. The real
//! Python clients (openai-agents, the OpenTelemetry SDK) are in `real_python_*` below.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::serve::{Served, next_change, open_events, request};
use crate::support::*;

/// The two request bodies the Agents SDK 0.24 sent to its ingest endpoint (see
/// tests/fixtures/openai-agents-sdk-ingest-payloads.json).
fn sdk_bodies() -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openai-agents-sdk-ingest-payloads.json");
    match serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("JSON") {
        Value::Array(bodies) => bodies,
        other => panic!("fixture is not an array: {other}"),
    }
}

/// A copy of one of the example workflows in `workflows/`, in the test's directory.
fn example(env: &TestEnv, name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("workflows")
        .join(name);
    env.write(
        name,
        &std::fs::read_to_string(path).expect("example workflow"),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn trace_count(env: &TestEnv) -> usize {
    env.list_json(&["--limit", "100000"]).len()
}

/// The span names of a `show --format json` document, each prefixed by its depth in dots.
fn outline(doc: &Value) -> Vec<String> {
    let spans = doc["spans"].as_array().expect("spans");
    let mut depth = std::collections::HashMap::new();
    spans
        .iter()
        .map(|s| {
            let d = s["parent_id"]
                .as_str()
                .and_then(|p| depth.get(p).copied())
                .map_or(0, |d: usize| d + 1);
            depth.insert(s["span_id"].as_str().unwrap().to_string(), d);
            format!(
                "{}{} {}",
                ".".repeat(d),
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect()
}

// ---- start, tokens, hosts, shutdown ----

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_a_token() {
    let env = TestEnv::new();
    let out = env.run(&["serve", "--addr", "0.0.0.0:0"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{err}"
    );
    assert!(
        err.contains("--token") && err.contains("AGENTRACE_TOKEN"),
        "{err}"
    );

    let out = env.run(&["serve", "--addr", "0.0.0.0:0", "--token", "short"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("at least 8 characters"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_token_is_required_on_every_request_when_one_is_set() {
    let env = TestEnv::new().env("AGENTRACE_TOKEN", "tok-123456789");
    let served = Served::start(&env, &[]);
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/api/traces"),
        ("GET", "/assets/main.js"),
        ("POST", "/v1/traces/ingest"),
        ("POST", "/v1/traces"),
    ] {
        let r = served.request(method, path, &[("Content-Type", "application/json")], b"{}");
        assert_eq!(
            r.status,
            401,
            "{method} {path} without a token: {}",
            r.text()
        );
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer"))
        );
        let r = served.request(
            method,
            path,
            &[
                ("Authorization", "Bearer tok-wrong-token"),
                ("Content-Type", "application/json"),
            ],
            b"{}",
        );
        assert_eq!(r.status, 401, "{method} {path} with a wrong token");
    }
    let good = [("Authorization", "Bearer tok-123456789")];
    assert_eq!(served.request("GET", "/api/traces", &good, b"").status, 200);
    // A token works from any Host: it is what protects a public address.
    let r = served.request(
        "GET",
        "/api/traces",
        &[
            ("Authorization", "Bearer tok-123456789"),
            ("Host", "traces.example"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);

    // A browser logs in once with ?token=, gets a cookie, and is sent back without the token.
    let r = served.get("/traces/abc?token=tok-123456789");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/traces/abc"));
    let cookie = r.header("set-cookie").expect("a cookie").to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let r = served.request("GET", "/api/traces", &[("Cookie", pair)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served.get("/?token=nope-nope-nope").status, 401);
}

#[test]
fn without_a_token_only_loopback_hosts_are_served() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    assert_eq!(served.get("/api/traces").status, 200);
    let port = served.addr.rsplit(':').next().unwrap().to_string();
    for host in [format!("localhost:{port}"), format!("[::1]:{port}")] {
        let r = served.request("GET", "/api/traces", &[("Host", &host)], b"");
        assert_eq!(r.status, 200, "{host}");
    }
    // A page elsewhere that rebinds its name to 127.0.0.1 still sends its own name.
    let r = served.request("GET", "/api/traces", &[("Host", "attacker.example")], b"");
    assert_eq!(r.status, 403);
    assert!(r.error().contains("loopback"), "{}", r.error());
}

#[test]
fn serve_stops_cleanly_on_sigterm_even_with_a_browser_listening() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let mut events = open_events(&served.addr);
    next_change(&mut events);
    let out = served.stop();
    assert_exit(&out, 0);
}

// ---- the JSON API is the CLI's JSON ----

#[test]
fn the_api_answers_with_the_clis_json() {
    let env = TestEnv::new();
    let support = example(&env, "support.yaml");
    let out = env.run(&[
        "run",
        support.to_str().unwrap(),
        "--offline",
        "--format",
        "none",
    ]);
    assert_exit(&out, 0);
    let served = Served::start(&env, &[]);

    let cli = env.list_json(&[]);
    let api = served.get_json("/api/traces");
    assert_eq!(api, Value::Array(cli.clone()));
    let id = cli[0]["trace_id"].as_str().unwrap();
    assert_eq!(
        served.get_json(&format!("/api/traces/{id}")),
        env.show_json(id)
    );
    assert_eq!(served.get_json("/api/traces/last"), env.show_json("last"));
    let group = cli[0]["group_id"]
        .as_str()
        .expect("support.yaml has a group");
    assert_eq!(
        served.get_json(&format!("/api/groups/{group}")),
        env.json(&["show", "--group", group, "--format", "json"])
    );
    let (a, b) = (cli[1]["trace_id"].as_str().unwrap(), id);
    assert_eq!(
        served.get_json(&format!("/api/diff?a={a}&b={b}")),
        env.json(&["diff", a, b, "--format", "json"])
    );
    let workflow = cli[0]["workflow"].as_str().unwrap().replace(' ', "+");
    assert_eq!(
        served
            .get_json(&format!("/api/traces?workflow={workflow}&limit=1"))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(served.get_json("/api/traces?workflow=nope"), json!([]));
    assert_eq!(served.get_json("/api/traces?status=error"), json!([]));

    // Errors are JSON with a reason, and the right status.
    let r = served.get("/api/traces/trace_00000000000000000000000000000001");
    assert_eq!(r.status, 404);
    assert!(r.error().contains("no trace matches"), "{}", r.error());
    let r = served.get("/api/traces?status=great");
    assert_eq!(r.status, 400);
    assert!(r.error().contains("unknown status"), "{}", r.error());
    assert_eq!(served.get("/api/nothing").status, 404);
    assert_eq!(served.get("/api/groups/nobody").status, 404);
    // The UI is the page for any other path; it names its script and style.
    let page = served.get("/traces/whatever");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(page.text().contains("/assets/main.js"), "{}", page.text());
    assert_eq!(served.get("/assets/app.css").status, 200);
    // The modules are served as they are, as JavaScript; an asset path that names none is not
    // the page.
    for module in ["main.js", "dom.js", "waterfall.js"] {
        let r = served.get(&format!("/assets/{module}"));
        assert_eq!(r.status, 200, "{module}");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/javascript"),
            "{module}"
        );
    }
    assert_eq!(served.get("/assets/app.js").status, 404);
    assert_eq!(served.get("/assets/nothing.js").status, 404);
}

#[test]
fn a_run_in_another_process_is_announced_on_the_event_stream() {
    let env = TestEnv::new();
    env.write("w.yaml", "name: Ticker\nsteps:\n  - run: [\"true\"]\n");
    let served = Served::start(&env, &[]);
    let mut events = open_events(&served.addr);
    let first = next_change(&mut events);
    let out = env.run(&["run", "w.yaml", "--offline", "--format", "none"]);
    assert_exit(&out, 0);
    let next = next_change(&mut events);
    assert!(next > first, "{first} -> {next}");
    assert_eq!(served.get_json("/api/traces")[0]["name"], "Ticker");
}

// ---- ingest: refusals ----

#[test]
fn bad_payloads_get_400_with_a_reason_and_store_nothing() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let before = trace_count(&env);
    for (path, content_type, body, says) in [
        (
            "/v1/traces/ingest",
            "application/json",
            &b"{not json"[..],
            "JSON",
        ),
        ("/v1/traces/ingest", "application/json", b"[1,2]", "data"),
        (
            "/v1/traces/ingest",
            "application/json",
            br#"{"data": [{"object": "trace.span", "id": "span_1"}]}"#,
            "data[0]",
        ),
        (
            "/v1/traces",
            "application/x-protobuf",
            b"\xff\xff\xff\xff",
            "protobuf",
        ),
        (
            "/v1/traces",
            "application/json",
            b"{\"resourceSpans\": 7}",
            "JSON",
        ),
    ] {
        let r = served.post(path, content_type, body);
        assert_eq!(
            r.status,
            400,
            "{path} {:?}: {}",
            String::from_utf8_lossy(body),
            r.text()
        );
        assert!(r.error().contains(says), "{path}: {}", r.error());
    }
    let r = served.post("/v1/traces", "text/plain", b"hello");
    assert_eq!(r.status, 415);
    let r = served.request(
        "POST",
        "/v1/traces/ingest",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        b"not gzip at all",
    );
    assert_eq!(r.status, 400);
    assert!(r.error().contains("gzip"), "{}", r.error());
    assert_eq!(trace_count(&env), before, "nothing was stored");
}

#[test]
fn bodies_over_the_limit_get_413_before_or_after_decompression() {
    let env = TestEnv::new();
    let served = Served::start(&env, &["--max-body-mb", "1"]);
    let big = vec![b' '; 1024 * 1024 + 10];
    let r = served.post("/v1/traces/ingest", "application/json", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("limit"), "{}", r.error());
    // A small gzip that inflates past the limit (a "zip bomb") is refused too.
    let bomb = gzip(&vec![b' '; 3 * 1024 * 1024]);
    assert!(bomb.len() < 100_000);
    let r = served.request(
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &bomb,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // A declared length over the limit is refused without reading the body.
    let r = request(
        &served.addr,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", "999999999"),
        ],
        b"",
    );
    assert_eq!(r.status, 413);
    assert_eq!(trace_count(&env), 0);
}

// ---- ingest: the Agents SDK payload ----

#[test]
fn agents_sdk_payloads_become_traces_that_show_list_and_export_read() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let bodies = sdk_bodies();
    for body in &bodies {
        let r = served.post(
            "/v1/traces/ingest",
            "application/json",
            &serde_json::to_vec(body).unwrap(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    served.wait_log("agents-sdk");

    // The order trace: nested custom spans around agent and generation spans.
    let order = env.list_json(&["--workflow", "E-commerce Order Processing"]);
    assert_eq!(order.len(), 1, "{order:#?}");
    let id = order[0]["trace_id"].as_str().unwrap();
    assert_eq!(
        id, "trace_421f771ffd47478da8eb7f05c9df2a93",
        "the SDK's trace id is kept"
    );
    let doc = env.show_json(id);
    assert_eq!(doc["status"], "ok");
    let lines = outline(&doc);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('.') && l.contains("generation")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("agent Inventory Agent")),
        "{lines:#?}"
    );
    assert!(
        doc["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{}",
        doc["usage"]
    );
    // Every span's parent is in the trace.
    let ids: Vec<&str> = doc["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["span_id"].as_str().unwrap())
        .collect();
    for s in doc["spans"].as_array().unwrap() {
        if let Some(p) = s["parent_id"].as_str() {
            assert!(ids.contains(&p), "dangling parent {p}");
        }
    }
    let tree = stdout(&env.run(&["show", id]));
    assert!(tree.contains("Inventory Agent"), "{tree}");

    // The conversation: two traces sharing a group, with metadata.
    let sdk_traces: Vec<&Value> = bodies[1]["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["object"] == "trace")
        .collect();
    let group = sdk_traces[0]["group_id"].as_str().expect("a group id");
    let conv = env.list_json(&["--group", group]);
    assert_eq!(conv.len(), 2, "{conv:#?}");
    for t in &conv {
        let sent = sdk_traces
            .iter()
            .find(|s| s["id"] == t["trace_id"])
            .expect("same ids");
        assert_eq!(t["name"], sent["workflow_name"]);
        for (k, v) in sent["metadata"].as_object().into_iter().flatten() {
            assert_eq!(&t["metadata"][k], v, "metadata {k}");
        }
    }
    let out = env.run(&["show", "--group", group]);
    assert_exit(&out, 0);
    // The exports read ingested traces like any other.
    let out = env.run(&["export", id, "--format", "openai"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Inventory Agent"));
    let stats = env.run(&["stats"]);
    assert_exit(&stats, 0);
}

#[test]
fn spans_may_arrive_before_their_parents_and_their_trace_over_several_requests() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let body = &sdk_bodies()[0];
    let items = body["data"].as_array().unwrap();
    let (traces, mut spans): (Vec<&Value>, Vec<&Value>) =
        items.iter().partition(|o| o["object"] == "trace");
    // Children first (the SDK sends a span when it ends, so parents usually come last), in
    // one request each, and the trace object at the very end.
    spans.sort_by_key(|s| std::cmp::Reverse(s["started_at"].as_str().unwrap().to_string()));
    for (i, span) in spans.iter().enumerate() {
        let r = served.post(
            "/v1/traces/ingest",
            "application/json",
            &serde_json::to_vec(&json!({"data": [span]})).unwrap(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        if i == 0 {
            // Readable at once, under a placeholder name, with the lone span at the top.
            // (`last` never names an ingested trace: it is asked for by id.)
            let doc = served.get_json("/api/traces/trace_421f771ffd47478da8eb7f05c9df2a93");
            assert_eq!(doc["spans"].as_array().unwrap().len(), 1);
        }
    }
    let r = served.post(
        "/v1/traces/ingest",
        "application/json",
        &serde_json::to_vec(&json!({"data": traces})).unwrap(),
    );
    assert_eq!(r.status, 200);
    let late = env.show_json("trace_421f771ffd47478da8eb7f05c9df2a93");

    // The same payload in one request gives the same trace.
    let env2 = TestEnv::new();
    let served2 = Served::start(&env2, &[]);
    let r = served2.post(
        "/v1/traces/ingest",
        "application/json",
        &serde_json::to_vec(body).unwrap(),
    );
    assert_eq!(r.status, 200);
    let whole = env2.show_json("trace_421f771ffd47478da8eb7f05c9df2a93");
    assert_eq!(late["name"], "E-commerce Order Processing");
    assert_eq!(outline(&late), outline(&whole));
    assert_eq!(late["usage"], whole["usage"]);
    assert_eq!(late["started_at"], whole["started_at"]);
    assert_eq!(late["ended_at"], whole["ended_at"]);
    // Sending it again changes nothing: ingest is idempotent.
    let r = served2.post(
        "/v1/traces/ingest",
        "application/json",
        &serde_json::to_vec(body).unwrap(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        env2.show_json("trace_421f771ffd47478da8eb7f05c9df2a93"),
        whole
    );
}

// ---- ingest: OTLP, with agentrace's own exporter as the client ----

#[test]
fn otlp_protobuf_and_json_with_gzip_round_trip_agentrace_traces() {
    let source = TestEnv::new();
    source.write("w.yaml", "name: Round Trip\nmodel: gpt-4o-mini\nagents: { a: { instructions: Be brief. } }\nsteps:\n  - span: Prepare\n    steps:\n      - { id: ask, agent: a, input: \"What is OTLP?\" }\n      - run: [\"echo\", \"done\"]\n");
    let out = source.run(&[
        "run",
        "w.yaml",
        "--offline",
        "--group",
        "conv-otlp",
        "--meta",
        "tier=gold",
        "--format",
        "none",
    ]);
    assert_exit(&out, 0);
    let original = source.show_json("last");
    let id = original["trace_id"].as_str().unwrap().to_string();

    for protocol in ["http/protobuf", "http/json"] {
        let env = TestEnv::new();
        let served = Served::start(&env, &[]);
        let out = source.run_with(
            &["export", "last", "--otlp", "--endpoint", &served.url("")],
            |c| {
                c.env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
                    .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
            },
        );
        assert_exit(&out, 0);
        served.wait_log("otlp");
        let got = env.show_json(&id);
        assert_eq!(got["name"], original["name"], "{protocol}");
        assert_eq!(got["workflow"], original["workflow"]);
        assert_eq!(got["group_id"], "conv-otlp");
        assert_eq!(got["metadata"]["tier"], "gold");
        assert_eq!(outline(&got), outline(&original), "{protocol}");
        assert_eq!(got["usage"], original["usage"]);
        assert_eq!(got["status"], original["status"]);
        // Still an offline run, that costs nothing and that the filters find as one.
        assert_eq!(got["offline"], true, "{protocol}");
        assert_eq!(got["cost_usd"], json!(0.0), "{protocol}");
        assert_eq!(env.list_json(&["--offline"]).len(), 1, "{protocol}");
        assert_eq!(env.list_json(&["--no-offline"]).len(), 0, "{protocol}");
    }
}

// ---- hostile pages and senders ----

/// An Agents SDK body with one trace and one finished span, at the given RFC 3339 times.
pub(crate) fn sdk_body(trace_hex: &str, name: &str, started: &str, ended: &str) -> Vec<u8> {
    let trace_id = format!("trace_{trace_hex}");
    serde_json::to_vec(&json!({"data": [
        {"object": "trace", "id": trace_id, "workflow_name": name},
        {"object": "trace.span", "id": format!("span_{}", &trace_hex[..24]),
         "trace_id": trace_id, "parent_id": null,
         "started_at": started, "ended_at": ended,
         "span_data": {"type": "custom", "name": "step", "data": {}}},
    ]}))
    .unwrap()
}

/// Now plus `seconds`, as RFC 3339.
pub(crate) fn now_plus(seconds: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds)).to_string()
}

#[test]
fn a_cross_origin_or_untyped_write_is_refused_and_stores_nothing() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let body = sdk_body(
        "aaaa0000aaaa0000aaaa0000aaaa0001",
        "Attack",
        &now_plus(-2),
        &now_plus(-1),
    );
    // No Content-Type: what `fetch(url, {mode: 'no-cors', body: arrayBuffer})` sends.
    for path in ["/v1/traces/ingest", "/v1/traces"] {
        let r = served.request("POST", path, &[], &body);
        assert_eq!(r.status, 415, "{path}: {}", r.text());
        assert!(r.error().contains("not none"), "{}", r.error());
        let r = served.post(path, "text/plain", &body);
        assert_eq!(r.status, 415, "{path}");
    }
    // Another origin, even with the right Content-Type (a page cannot send that without a
    // preflight, but a non-browser can; the check does not depend on it).
    let port = served.addr.rsplit(':').next().unwrap().to_string();
    for origin in [
        "http://evil.example".to_string(),
        format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() ^ 1),
        format!("http://localhost:{port}"),
        "null".to_string(),
    ] {
        for (path, content_type) in [
            ("/v1/traces/ingest", "application/json"),
            ("/v1/traces", "application/json"),
        ] {
            let r = served.request(
                "POST",
                path,
                &[("Content-Type", content_type), ("Origin", &origin)],
                &body,
            );
            assert_eq!(r.status, 403, "{origin} {path}: {}", r.text());
            assert!(
                r.error().contains("may not change anything"),
                "{}",
                r.error()
            );
        }
        // Any other state-changing method too, and the CORS preflight.
        for method in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
            let r = served.request(
                method,
                "/api/traces",
                &[
                    ("Origin", &origin),
                    ("Access-Control-Request-Method", "POST"),
                ],
                b"",
            );
            assert_eq!(r.status, 403, "{method} from {origin}");
            assert_eq!(r.header("access-control-allow-origin"), None);
        }
        // Reading is not a write: a cross-origin GET gets no CORS header, so a page cannot
        // read the answer.
        let r = served.request("GET", "/api/traces", &[("Origin", &origin)], b"");
        assert_eq!(r.header("access-control-allow-origin"), None);
    }
    assert_eq!(trace_count(&env), 0, "nothing was stored");

    // The server's own origin (its UI) and clients that send no Origin are served.
    let own = format!("http://{}", served.addr);
    let r = served.request(
        "POST",
        "/v1/traces/ingest",
        &[("Content-Type", "application/json"), ("Origin", &own)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(trace_count(&env), 1);

    // With a token, a page on a sibling port of the same host (same site, so the SameSite
    // cookie goes along) is refused all the same.
    let env = TestEnv::new().env("AGENTRACE_TOKEN", "tok-123456789");
    let served = Served::start(&env, &[]);
    let r = served.request(
        "POST",
        "/v1/traces/ingest",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://127.0.0.1:3000"),
            ("Cookie", "agentrace_token=tok-123456789"),
        ],
        &body,
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(trace_count(&env), 0);
}

const REPLAYED: &str = r#"
name: Local run
model: gpt-4o-mini
agents: { a: { instructions: Answer. } }
steps:
  - id: ask
    agent: a
    input: "Hello?"
"#;

#[test]
fn an_ingested_trace_never_becomes_last_for_show_or_replay() {
    let env = TestEnv::with_fake().workflow("w.yaml", REPLAYED);
    let served = Served::start(&env, &[]);
    let sent = "bbbb0000bbbb0000bbbb0000bbbb0001";
    let ingest = |started: &str, ended: &str| {
        served.post(
            "/v1/traces/ingest",
            "application/json",
            &sdk_body(sent, "Sent here", started, ended),
        )
    };

    // A store holding only an ingested trace has no `last`: its id is needed.
    let r = ingest(&now_plus(-3), &now_plus(-2));
    assert_eq!(r.status, 200, "{}", r.text());
    let out = env.run(&["show", "last"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no trace recorded by `run` yet"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["run", "w.yaml", "--replay", "last"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--replay last: no trace recorded by `run` yet"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.server().request_count(), 0, "nothing ran");
    let r = served.get("/api/traces/last");
    assert_eq!(r.status, 404);
    assert!(r.error().contains("give its id"), "{}", r.error());

    // A run, then an ingested trace dated after it (an hour ahead: within what a clock may
    // be off by): `last` is still the run, for show, diff, export, the API and --replay.
    env.server().push(Reply::text("Hi from the model.", 5, 3));
    let out = env.run(&["run", "w.yaml", "--format", "none"]);
    assert_exit(&out, 0);
    let run_id = env.list_json(&["--workflow", "Local run"])[0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = ingest(&now_plus(3600), &now_plus(3601));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        env.list_json(&[])[0]["trace_id"],
        format!("trace_{sent}"),
        "listed first, by its time"
    );
    assert_eq!(env.show_json("last")["trace_id"], run_id.as_str());
    assert_eq!(
        served.get_json("/api/traces/last")["trace_id"],
        run_id.as_str()
    );
    let out = env.run(&["export", "last", "--format", "openai"]);
    assert!(stdout(&out).contains(&run_id[6..]), "{}", stdout(&out));
    let requests = env.server().request_count();
    let out = env.run(&["run", "w.yaml", "--replay", "last", "--format", "none"]);
    assert_exit(&out, 0);
    assert_eq!(
        env.server().request_count(),
        requests,
        "answered from the run"
    );
    let replay = env.show_json("last");
    assert_eq!(replay["metadata"]["agentrace.replay_of"], run_id.as_str());
    // The ingested trace is still there, by its id.
    assert_exit(&env.run(&["show", &format!("trace_{sent}")]), 0);
}

#[test]
fn ingested_times_no_clock_gives_are_refused_with_a_reason() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let hex = "cccc0000cccc0000cccc0000cccc0001";
    for (started, ended, says) in [
        (
            "2099-01-01T00:00:00Z".to_string(),
            "2099-01-01T00:00:01Z".to_string(),
            "started_at 2099-01-01T00:00:00.000000Z is more than a day ahead",
        ),
        (now_plus(-10), now_plus(2 * 86_400), "ended_at"),
        (
            "1999-12-31T23:59:59Z".to_string(),
            now_plus(-1),
            "is before 2000-01-01",
        ),
        (now_plus(-1), now_plus(-5), "is before its started_at"),
    ] {
        let r = served.post(
            "/v1/traces/ingest",
            "application/json",
            &sdk_body(hex, "Timed", &started, &ended),
        );
        assert_eq!(r.status, 400, "{started}..{ended}: {}", r.text());
        assert!(r.error().contains(says), "{}", r.error());
    }
    // OTLP's largest time (u64::MAX ns, year 2554), an unset start, an end before the start.
    for (start, end, says) in [
        (u64::MAX, u64::MAX, "2554"),
        (0, 1, "before 2000-01-01"),
        (
            1_795_990_000_000_000_000,
            1_795_980_000_000_000_000,
            "before its started_at",
        ),
    ] {
        let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": hex, "spanId": "0123456789abcdef", "name": "step",
            "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string()}]}]}]});
        let r = served.post(
            "/v1/traces",
            "application/json",
            &serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(r.status, 400, "{start}..{end}: {}", r.text());
        assert!(r.error().contains(says), "{}", r.error());
    }
    assert_eq!(trace_count(&env), 0, "nothing was stored");
    // A clock a few hours ahead is a clock, not an attack; no duration is ever negative.
    let r = served.post(
        "/v1/traces/ingest",
        "application/json",
        &sdk_body(hex, "Timed", &now_plus(3 * 3600), &now_plus(3 * 3600 + 2)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = env.show_json(&format!("trace_{hex}"));
    assert!(doc["duration_ms"].as_f64().unwrap() >= 0.0, "{doc}");
}

#[test]
fn huge_names_are_cut_on_ingest_and_list_rows_stay_small() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let hex = "dddd0000dddd0000dddd0000dddd0001";
    let name = "N".repeat(3 << 20);
    let mut body: Value =
        serde_json::from_slice(&sdk_body(hex, &name, &now_plus(-2), &now_plus(-1))).unwrap();
    body["data"][0]["metadata"] = json!({"note": "m".repeat(1 << 20)});
    body["data"][1]["span_data"]["name"] = json!("S".repeat(1 << 20));
    body["data"][1]["span_data"]["data"] = json!({"blob": "b".repeat(1 << 20)});
    let r = served.post(
        "/v1/traces/ingest",
        "application/json",
        &serde_json::to_vec(&body).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The name, the workflow (the same name), the metadata, the span's name and its data.
    let line = served.wait_log("agents-sdk");
    assert!(line.ends_with(", 5 over-long field(s) cut"), "{line}");
    let doc = env.show_json(&format!("trace_{hex}"));
    let stored = doc["name"].as_str().unwrap();
    assert!(stored.len() < 1100, "a name of {} bytes", stored.len());
    assert!(
        stored.ends_with("…[truncated: 3145728 bytes in all]"),
        "{}",
        &stored[1000..]
    );
    assert!(doc["metadata"]["note"].as_str().unwrap().len() < 1100);
    let span = &doc["spans"][0];
    assert!(span["name"].as_str().unwrap().len() < 1100);
    let blob = span["attributes"]["blob"].as_str().unwrap();
    assert!(
        blob.len() < 256 * 1024 + 64 && blob.contains("truncated: 1048576 bytes"),
        "{}",
        blob.len()
    );
    // What the UI re-reads on every change stays small.
    let r = served.get("/api/traces?limit=100");
    assert_eq!(r.status, 200);
    assert!(r.body.len() < 8 * 1024, "a list of {} bytes", r.body.len());
    let out = env.run(&["list", "--format", "json"]);
    assert!(out.stdout.len() < 8 * 1024, "{} bytes", out.stdout.len());
}

#[test]
fn concurrent_ingest_bytes_are_bounded_and_the_rest_told_to_retry() {
    use std::io::Read;

    let env = TestEnv::new();
    let out = env.run(&["serve", "--max-body-mb", "4", "--max-ingest-mb", "2"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--max-ingest-mb (2) must be at least --max-body-mb (4)"));

    let served = Served::start(&env, &["--max-body-mb", "1", "--max-ingest-mb", "1"]);
    // A sender that has sent 1,040,000 of its 1,048,000 bytes holds that much of the budget
    // until it finishes.
    let padding = 1_048_000 - br#"{"data": []}"#.len();
    let mut first_body = br#"{"data": []}"#.to_vec();
    first_body.extend(std::iter::repeat_n(b' ', padding));
    let mut slow = std::net::TcpStream::connect(&served.addr).unwrap();
    write!(
        slow,
        "POST /v1/traces/ingest HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        served.addr,
        first_body.len()
    )
    .unwrap();
    slow.write_all(&first_body[..1_040_000]).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // Another request finds the budget spent: 503 with Retry-After, at once.
    let second = sdk_body(
        "eeee0000eeee0000eeee0000eeee0001",
        "Second",
        &now_plus(-2),
        &now_plus(-1),
    );
    let mut padded = second.clone();
    padded.extend(std::iter::repeat_n(b' ', 20_000));
    let r = served.post("/v1/traces/ingest", "application/json", &padded);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.error().contains("--max-ingest-mb"), "{}", r.error());
    // The first finishes; the budget is back and the retry goes through.
    slow.write_all(&first_body[1_040_000..]).unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let r = served.post("/v1/traces/ingest", "application/json", &padded);
    assert_eq!(r.status, 200, "{}", r.text());
    // One request needing more than the whole budget (gzip: as sent plus inflated) is a 413,
    // not a 503 it could retry forever.
    let mut state = 0x2545_f491_u32;
    let noise: Vec<u8> = (0..600_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    let r = served.request(
        "POST",
        "/v1/traces/ingest",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&noise),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.error().contains("ingest budget"), "{}", r.error());
    // A small gzip of a large body fits: what it sent is given back once inflated.
    let mut big = br#"{"data": []}"#.to_vec();
    big.extend(std::iter::repeat_n(b' ', 1_000_000));
    let r = served.request(
        "POST",
        "/v1/traces/ingest",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        &gzip(&big),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn the_login_redirect_stays_on_this_server() {
    let env = TestEnv::new().env("AGENTRACE_TOKEN", "tok-123456789");
    let served = Served::start(&env, &[]);
    for path in [
        "/\\evil.example?token=tok-123456789",
        "/\\/evil.example?token=tok-123456789",
        "//evil.example?token=tok-123456789",
        "/%09/evil.example?token=tok-123456789",
    ] {
        let r = served.get(path);
        if r.status == 400 {
            continue; // refused before it reaches us: no redirect at all
        }
        assert_eq!(r.status, 303, "{path}: {}", r.text());
        let location = r.header("location").unwrap();
        assert!(
            location == "/"
                || (location.starts_with('/')
                    && !location.contains('\\')
                    && !location.starts_with("//")),
            "{path} -> {location}"
        );
    }
    let r = served.get("/\\evil.example?token=tok-123456789");
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/"));
    let r = served.get("/traces/abc?token=tok-123456789");
    assert_eq!(r.header("location"), Some("/traces/abc"));
}

#[test]
fn the_token_can_come_from_a_file_out_of_sight_of_ps() {
    let env = TestEnv::new();
    let file = env.write("token", "tok-from-a-file\n");
    let served = Served::start(&env, &["--token-file", file.to_str().unwrap()]);
    assert_eq!(served.get("/api/traces").status, 401);
    let r = served.request(
        "GET",
        "/api/traces",
        &[("Authorization", "Bearer tok-from-a-file")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    drop(served);
    let empty = env.write("empty", "\n");
    for (args, says) in [
        (vec!["--token-file", empty.to_str().unwrap()], "is empty"),
        (
            vec!["--token-file", "/nonexistent/token"],
            "cannot read the token file",
        ),
        (
            vec![
                "--token-file",
                file.to_str().unwrap(),
                "--token",
                "tok-123456789",
            ],
            "give the token once",
        ),
    ] {
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend(args);
        let out = env.run(&all);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
}

#[test]
fn thousands_of_search_words_or_meta_filters_are_a_400_not_a_500() {
    let env = TestEnv::new();
    env.write("w.yaml", "name: W\nsteps:\n  - run: [\"true\"]\n");
    assert_exit(
        &env.run(&["run", "w.yaml", "--offline", "--format", "none"]),
        0,
    );
    let served = Served::start(&env, &[]);
    let words = format!("/api/traces?search={}", "w+".repeat(3000));
    let r = served.get(&words);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error()
            .contains("too many search words (3000): at most 32"),
        "{}",
        r.error()
    );
    let metas = format!("/api/traces?{}", "meta=k%3Dv&".repeat(5000));
    let r = served.get(&metas);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error().contains("too many metadata filters (5000)"),
        "{}",
        r.error()
    );
    let ok = format!("/api/traces?search={}", "w+".repeat(32));
    assert_eq!(served.get(&ok).status, 200);

    let text = "w ".repeat(3000);
    let out = env.run(&["list", "--search", &text]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("too many search words (3000)"),
        "{}",
        stderr(&out)
    );
    let mut args = vec!["list"];
    for _ in 0..5000 {
        args.extend(["--meta", "k=v"]);
    }
    let out = env.run(&args);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("too many metadata filters (5000)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn error_bodies_never_show_where_the_store_is() {
    let env = TestEnv::sqlite();
    env.write("w.yaml", "name: W\nsteps:\n  - run: [\"true\"]\n");
    assert_exit(
        &env.run(&["run", "w.yaml", "--offline", "--format", "none"]),
        0,
    );
    let served = Served::start(&env, &[]);
    let dir = env.path().to_string_lossy().into_owned();
    let r = served.get("/api/traces/trace_00000000000000000000000000000001");
    assert_eq!(r.status, 404);
    assert!(r.error().contains("no trace matches"), "{}", r.error());
    assert!(!r.text().contains(&dir), "{}", r.text());
    // A store that breaks under the server: a generic 500, the details on serve's stderr.
    std::fs::write(env.store(), vec![0x5a; 64 * 1024]).unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", env.store().display()));
    let r = served.get("/api/traces");
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(!r.text().contains(&dir), "{}", r.text());
    assert!(
        r.error().contains("the server's log says why"),
        "{}",
        r.error()
    );
    let line = served.wait_log("not an agentrace store");
    assert!(line.contains(&dir), "{line}");
}

// ---- the UI in a real browser ----

#[test]
fn the_ui_lists_filters_and_opens_traces_in_headless_chromium_with_names_as_text() {
    // ... and the HTML export of each trace shows every span's details as the trace page does.
    let Some(browser) = crate::files::chromium() else {
        return;
    };
    let Some(node_path) = playwright() else {
        return;
    };
    let env = TestEnv::new();
    let support = example(&env, "support.yaml");
    assert_exit(
        &env.run(&[
            "run",
            support.to_str().unwrap(),
            "--offline",
            "--format",
            "none",
        ]),
        0,
    );
    let hostile = "<script>alert(1)</script>";
    env.write("h.yaml", &format!("name: Hostile\nsteps:\n  - span: \"{hostile}\"\n    steps:\n      - run: [\"echo\", \"<img src=x onerror=alert(2)>\"]\n"));
    assert_exit(
        &env.run(&["run", "h.yaml", "--offline", "--format", "none"]),
        0,
    );
    let hostile_id = env.list_json(&["--workflow", "Hostile"])[0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let support_id = env.list_json(&["--workflow", "Customer Support Conversation"])[0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let served = Served::start(&env, &[]);
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/drive.mjs");
    let screenshot = env.path().join("ui.png");
    // The whole conversation of the support trace in one file, the hostile trace alone.
    let conversation: Vec<String> = env
        .list_json(&["--group", "conv_12345"])
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(conversation.len(), 2);
    for (id, name, workflow, escaped) in [
        (&support_id, "triage", "Customer Support Conversation", None),
        (&hostile_id, hostile, "Hostile", Some(hostile)),
    ] {
        // The HTML export of the same trace, which the driver checks against serve's page.
        let exported = env.path().join(format!("{id}.html"));
        let mut args = vec!["export"];
        if escaped.is_none() {
            args.extend(conversation.iter().map(String::as_str));
        } else {
            args.push(id);
        }
        args.extend(["--format", "html", "-o", exported.to_str().unwrap()]);
        assert_exit(&env.run(&args), 0);
        let mut cmd = std::process::Command::new("node");
        cmd.arg(&driver)
            .args([
                "--base",
                &served.url(""),
                "--expect-trace",
                id,
                "--expect-name",
                name,
            ])
            .args(["--filter-workflow", workflow])
            .args(["--export-html", exported.to_str().unwrap()])
            .env("CHROMIUM", &browser)
            .env("NODE_PATH", &node_path);
        match escaped {
            Some(text) => cmd.args(["--expect-escaped", text]),
            None => cmd.args(["--screenshot", screenshot.to_str().unwrap()]),
        };
        let out = output_within(cmd, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "the UI check failed for {name}:\n{}\n{}",
            stdout(&out),
            stderr(&out)
        );
        // Every span's detail pane was compared, and the support trace's model calls show as
        // a chat in both.
        let summary: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
        let spans = env.show_json(id)["spans"].as_array().unwrap().len();
        assert_eq!(summary["export"]["compared"], spans, "{summary}");
        if escaped.is_none() {
            assert!(summary["export"]["chats"].as_u64() > Some(0), "{summary}");
            assert_eq!(summary["exportConversation"], 2, "{summary}");
        }
    }
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "a real screenshot"
    );
}

#[test]
fn a_page_on_another_origin_cannot_write_into_serve_in_headless_chromium() {
    let Some(browser) = crate::files::chromium() else {
        return;
    };
    let Some(node_path) = playwright() else {
        return;
    };
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let attack = "ffff0000ffff0000ffff0000ffff0001";
    let control = "ffff0000ffff0000ffff0000ffff0002";
    let body = |hex: &str, name: &str| {
        String::from_utf8(sdk_body(hex, name, &now_plus(-2), &now_plus(-1))).unwrap()
    };
    let report = node_driver(
        "cross_origin.mjs",
        (&browser, &node_path),
        &[
            "--serve",
            &served.url(""),
            "--attack-body",
            &body(attack, "Planted"),
            "--control-body",
            &body(control, "Own page"),
        ],
    );
    // Every attempt went out (an opaque answer or a network error, as a page sees it) ...
    assert_eq!(report["attacked"].as_object().unwrap().len(), 6, "{report}");
    // ... and none of them stored anything; serve's own page still can.
    assert_eq!(report["control"], 200, "{report}");
    let traces = env.list_json(&[]);
    let ids: Vec<&str> = traces
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [format!("trace_{control}")], "{report}");
}

/// What serve's trace page shows of `spans` of trace `id` in headless Chromium (tests/ui/spans.mjs):
/// per span id, `{"row": …, "detail": …}`, the text of its waterfall row and of its detail
/// pane. `None` (after a note) without a browser or playwright-core outside CI.
pub(crate) fn ui_spans(env: &TestEnv, id: &str, spans: &[&str]) -> Option<Value> {
    let browser = crate::files::chromium()?;
    let node_path = playwright()?;
    let served = Served::start(env, &[]);
    let base = served.url("");
    let mut args = vec!["--base", &base, "--trace", id];
    args.extend(spans.iter().flat_map(|s| ["--span", *s]));
    let report = node_driver("spans.mjs", (&browser, &node_path), &args);
    Some(report["spans"].clone())
}

/// Runs the browser driver `tests/ui/<script>` with `args` in headless Chromium (`browser`, and
/// playwright-core from `node_path`) and returns the one JSON line it prints; a driver that
/// fails fails the test with what it said.
pub(crate) fn node_driver(
    script: &str,
    (browser, node_path): (&std::path::Path, &str),
    args: &[&str],
) -> Value {
    let mut cmd = std::process::Command::new("node");
    cmd.arg(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/ui")
            .join(script),
    )
    .args(args)
    .env("CHROMIUM", browser)
    .env("NODE_PATH", node_path);
    let out = output_within(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "the browser check {script} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(stdout(&out).trim()).expect("one JSON line")
}

/// The `node_modules` directory with playwright-core (`ci/playwright.sh` installs it), or
/// `None` after a note when absent outside CI.
pub(crate) fn playwright() -> Option<String> {
    let dir = std::env::var("AGENTRACE_NODE_PATH")
        .ok()
        .filter(|d| !d.is_empty());
    if let Some(dir) = dir
        && PathBuf::from(&dir).join("playwright-core").exists()
    {
        return Some(dir);
    }
    assert!(
        !under_ci(),
        "AGENTRACE_NODE_PATH is not set under CI: .ci/run should have installed playwright-core \
         (ci/playwright.sh)"
    );
    eprintln!("note: skipped the UI check: set AGENTRACE_NODE_PATH (bash ci/playwright.sh)");
    None
}

// ---- real clients: the OpenAI Agents SDK and the OpenTelemetry SDK, from PyPI ----

/// The venv Python with openai-agents and opentelemetry (`ci/python-clients.sh`), or `None`
/// after a note when absent outside CI.
fn python_clients() -> Option<String> {
    if let Ok(python) = std::env::var("AGENTRACE_PYTHON")
        && !python.trim().is_empty()
    {
        return Some(python.trim().to_string());
    }
    assert!(
        !under_ci(),
        "AGENTRACE_PYTHON is not set under CI: .ci/run should have installed the Python clients \
         (ci/python-clients.sh install)"
    );
    eprintln!(
        "skipped: AGENTRACE_PYTHON is not set. To run with the real SDKs: \
         bash ci/python-clients.sh install && eval \"$(bash ci/python-clients.sh env)\""
    );
    None
}

fn run_python(python: &str, script: &str, envs: &[(&str, &str)]) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let mut cmd = std::process::Command::new(python);
    cmd.arg(path)
        .env_remove("OPENAI_API_KEY")
        .env("OPENAI_AGENTS_DISABLE_TRACING", "0");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = output_within(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let line = stdout(&out).lines().last().unwrap_or_default().to_string();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{script} printed {line:?}: {e}"))
}

#[test]
fn real_python_agents_sdk_traces_land_in_serve_with_their_names_nesting_and_group() {
    let Some(python) = python_clients() else {
        return;
    };
    let fake = FakeOpenAI::start();
    fake.push_all([
        Reply::tool_call("transfer_to_billing_agent", json!({})),
        Reply::text("You were refunded for the duplicate charge.", 30, 9),
        Reply::text("Duplicate charge refunded, sorry.", 20, 6),
    ]);
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let printed = run_python(
        &python,
        "agents_sdk_client.py",
        &[
            ("AGENTRACE_INGEST_URL", &served.url("/v1/traces/ingest")),
            ("MODEL_URL", &fake.base_url()),
            ("GROUP_ID", "conv_py_1"),
        ],
    );
    let id = printed["trace_id"]
        .as_str()
        .expect("a trace id")
        .to_string();
    assert_eq!(fake.request_count(), 3, "three model calls");
    served.wait_log("agents-sdk");

    let doc = env.show_json(&id);
    assert_eq!(doc["name"], "Python Support Conversation");
    assert_eq!(doc["group_id"], "conv_py_1");
    assert_eq!(doc["metadata"]["customer_id"], "cust_42");
    assert_eq!(doc["status"], "ok");
    // The SDK (0.24) wraps each Runner.run in a `task` span and each model turn in a `turn`
    // span; generation spans are named after the model (the SDK's default here).
    let lines: Vec<String> = outline(&doc)
        .into_iter()
        .map(|l| match l.split_once("generation ") {
            Some((depth, _)) => format!("{depth}generation"),
            None => l,
        })
        .collect();
    assert_eq!(
        lines,
        [
            "custom Load customer",
            "custom task",
            ".agent Triage Agent",
            "..custom turn",
            "...generation",
            "...handoff Triage Agent -> Billing Agent",
            ".agent Billing Agent",
            "..custom turn",
            "...generation",
            "custom task",
            ".agent Summary Agent",
            "..custom turn",
            "...generation",
        ]
    );
    let load = &doc["spans"][0];
    assert_eq!(
        load["attributes"]["tier"], "gold",
        "custom data becomes attributes: {load}"
    );
    assert_eq!(doc["usage"]["input_tokens"], 30 + 20 + TOOL_CALL_USAGE.0);
    let tree = stdout(&env.run(&["show", &id]));
    for name in [
        "Python Support Conversation",
        "Load customer",
        "Triage Agent",
        "Billing Agent",
    ] {
        assert!(tree.contains(name), "{name} missing from\n{tree}");
    }
    assert_eq!(env.list_json(&["--group", "conv_py_1"]).len(), 1);
}

#[test]
fn real_python_opentelemetry_spans_land_in_serve_as_agent_generation_and_function_spans() {
    let Some(python) = python_clients() else {
        return;
    };
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let printed = run_python(
        &python,
        "otel_client.py",
        &[("OTLP_URL", &served.url("")), ("GROUP_ID", "conv_py_2")],
    );
    let hex = printed["trace_id"].as_str().expect("a trace id");
    served.wait_log("otlp");
    let doc = env.show_json(&format!("trace_{hex}"));
    assert_eq!(doc["name"], "plan trip");
    assert_eq!(doc["workflow"], "trip-planner", "the service name");
    assert_eq!(doc["group_id"], "conv_py_2");
    assert_eq!(doc["status"], "error", "the tool span failed");
    assert_eq!(
        outline(&doc),
        [
            "custom plan trip",
            ".agent invoke_agent planner",
            "..generation chat gpt-4o-mini",
            "..function execute_tool get_weather",
        ]
    );
    let spans = doc["spans"].as_array().unwrap();
    assert_eq!(spans[2]["attributes"]["model"], "gpt-4o-mini");
    assert_eq!(spans[2]["events"][0]["name"], "gen_ai.choice");
    assert_eq!(spans[3]["error"]["message"], "weather service down");
    assert_eq!(doc["usage"]["input_tokens"], 12);
    assert_eq!(doc["usage"]["output_tokens"], 5);
}

#[test]
fn the_trace_list_pages_with_a_cursor_instead_of_capping_silently() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    // Twelve traces, four of them started at the very same instant (ties go by id).
    let tie = now_plus(-100);
    for i in 0..12u32 {
        let hex = format!("dddd0000dddd0000dddd0000dddd{i:04x}");
        let started = if i < 4 {
            tie.clone()
        } else {
            now_plus(-90 + i64::from(i))
        };
        let r = served.post(
            "/v1/traces/ingest",
            "application/json",
            &sdk_body(&hex, "Paged", &started, &now_plus(-1)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let all: Vec<String> = served
        .get_json("/api/traces?limit=100")
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 12);
    let r = served.get("/api/traces?limit=100");
    assert_eq!(r.header("link"), None, "one page holds them all");

    // Pages of 5: follow the Link header; every trace once, in the same order.
    let mut seen = Vec::new();
    let mut url = "/api/traces?workflow=Paged&limit=5".to_string();
    let mut pages = 0;
    loop {
        let r = served.get(&url);
        assert_eq!(r.status, 200, "{}", r.text());
        let page: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap().to_string())
            .collect();
        assert!(page.len() <= 5);
        seen.extend(page);
        pages += 1;
        match r.header("link") {
            Some(link) => {
                assert!(link.ends_with(">; rel=\"next\""), "{link}");
                assert!(
                    link.contains("workflow=Paged"),
                    "the filter is kept: {link}"
                );
                url = link[1..link.find('>').unwrap()].to_string();
                assert!(r.header("x-next-cursor").is_some());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);
    let r = served.get("/api/traces?cursor=nonsense");
    assert_eq!(r.status, 400);
    assert!(
        r.error().contains("is not a cursor this server gave"),
        "{}",
        r.error()
    );
}

#[test]
fn real_python_agents_sdk_mcp_spans_land_in_serve_as_a_tool_list_and_an_mcp_call() {
    let Some(python) = python_clients() else {
        return;
    };
    let Ok(time) = std::env::var("AGENTRACE_MCP_TIME") else {
        assert!(!under_ci(), "AGENTRACE_MCP_TIME is not set under CI");
        eprintln!("skipped: AGENTRACE_MCP_TIME is not set (bash ci/mcp-servers.sh env)");
        return;
    };
    let fake = FakeOpenAI::start();
    fake.push_all([
        Reply::tool_call("get_current_time", json!({"timezone": "UTC"})),
        Reply::text("It is noon in UTC.", 30, 9),
    ]);
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let printed = run_python(
        &python,
        "agents_sdk_mcp_client.py",
        &[
            ("AGENTRACE_INGEST_URL", &served.url("/v1/traces/ingest")),
            ("MODEL_URL", &fake.base_url()),
            ("MCP_TIME", &time),
        ],
    );
    let id = printed["trace_id"]
        .as_str()
        .expect("a trace id")
        .to_string();
    served.wait_log("agents-sdk");
    let doc = env.show_json(&id);
    let spans = doc["spans"].as_array().unwrap();
    // The SDK's MCPListToolsSpanData: an mcp_tools span named after the server, its tools.
    let listing = spans
        .iter()
        .find(|s| s["kind"] == "mcp_tools")
        .unwrap_or_else(|| panic!("no mcp_tools span: {:#?}", outline(&doc)));
    assert_eq!(listing["name"], "time");
    assert_eq!(listing["attributes"]["mcp.server"], "time");
    let tools: Vec<&str> = listing["attributes"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"get_current_time"), "{tools:?}");
    // Its call: a function span whose mcp_data named the server.
    let call = spans
        .iter()
        .find(|s| s["kind"] == "function")
        .unwrap_or_else(|| panic!("no function span: {:#?}", outline(&doc)));
    assert_eq!(call["name"], "get_current_time");
    assert_eq!(call["attributes"]["mcp.server"], "time", "{call}");
    assert!(call["attributes"].get("mcp_data").is_none(), "{call}");
    assert!(
        call["attributes"]["output"]
            .as_str()
            .unwrap()
            .contains("UTC"),
        "{call}"
    );
    let tree = stdout(&env.run(&["show", &id]));
    assert!(tree.contains("mcp_tools  time"), "{tree}");
    assert!(tree.contains("mcp time"), "{tree}");
}
