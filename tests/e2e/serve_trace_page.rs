//! What serve's trace page shows a person, read in headless Chromium (`tests/ui/trace_page.mjs`):
//! a failed command's stderr in the error box as the lines it wrote; an order's tool calls,
//! usage and chat; and the HTML export of the same trace, opened from `file://`, showing
//! exactly the same page (one front-end, fed the API's JSON from the file).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::serve::Served;
use crate::support::*;
use crate::traces::run_json;

/// What `trace_page.mjs` read on serve's page of trace `id` (and, with `export`, checked that
/// the HTML export at that path shows the same), or `None` where no browser is installed.
fn read_trace_page(served: &Served, id: &str, export: Option<&Path>) -> Option<Value> {
    let browser = crate::files::chromium()?;
    let node_path = crate::serve::playwright()?;
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/trace_page.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&driver)
        .args(["--base", &served.url(""), "--trace", id])
        .env("CHROMIUM", &browser)
        .env("NODE_PATH", &node_path);
    if let Some(path) = export {
        cmd.arg("--export-html").arg(path);
    }
    let out = output_within(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "trace_page.mjs failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let read: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    if export.is_some() {
        assert_eq!(read["export"], "same", "{read}");
    }
    Some(read["page"].clone())
}

/// `agentrace export ID --format html` into `NAME.html` in the test's directory.
fn export_html(env: &TestEnv, id: &str) -> PathBuf {
    let page = env.path().join(format!("{id}.html"));
    let out = env.run(&[
        "export",
        id,
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    page
}

/// The span of this name that the page read.
#[track_caller]
fn span<'a>(page: &'a Value, name: &str) -> &'a Value {
    page["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} on the page: {page}"))
}

const STDERR: &str = r#"
name: Noisy failure
steps:
  - span: Outer
    steps:
      - id: boom
        run: ["sh", "-c", "echo 'first line' >&2; echo 'second line' >&2; echo third >&2; exit 3"]
"#;

#[test]
fn a_failed_commands_stderr_reads_as_lines_in_the_error_box_in_headless_chromium() {
    let env = TestEnv::new().workflow("noisy.yaml", STDERR);
    let (out, lines) = run_json(&env, "noisy.yaml", &["--offline"]);
    assert_exit(&out, 1);
    let id = lines[0]["trace_id"].as_str().unwrap().to_string();
    let export = export_html(&env, &id);
    let served = Served::start(&env, &[]);
    let Some(page) = read_trace_page(&served, &id, Some(&export)) else {
        return;
    };
    // The failing step's box: its message, then each field; the stderr as the lines it wrote.
    let error = span(&page, "boom")["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("command `sh` exited with status 3"),
        "{error}"
    );
    assert!(error.contains("exit code\t3"), "{error}");
    assert!(
        error.contains("first line\nsecond line\nthird"),
        "the stderr is not shown as its lines: {error:?}"
    );
    // No box on the page, for the trace or any span, shows text as a JSON string.
    let boxes = std::iter::once(&page["error"])
        .chain(
            page["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| &s["error"]),
        )
        .filter_map(Value::as_str)
        .collect::<Vec<_>>();
    assert!(!boxes.is_empty());
    for text in boxes {
        assert!(
            !text.contains("\\n") && !text.contains("\"stderr"),
            "an error box shows JSON: {text:?}"
        );
    }
}

/// The time an axis label stands for, in ms: `0`, `250 µs`, `10.0 ms`, `1.50 s`.
fn tick_ms(label: &str) -> f64 {
    let (number, unit) = label.split_once(' ').unwrap_or((label, "ms"));
    let n: f64 = number.parse().unwrap_or_else(|_| panic!("tick {label:?}"));
    n * match unit {
        "µs" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        _ => panic!("tick {label:?}"),
    }
}

/// Usage as the page writes it (counts under 1,000): `525 (443 in · 82 out)`.
fn tokens(usage: &Value) -> String {
    let n = |k: &str| usage[k].as_u64().unwrap();
    format!(
        "{} ({} in · {} out)",
        n("total_tokens"),
        n("input_tokens"),
        n("output_tokens")
    )
}

/// The trace documents embedded in an HTML export.
fn embedded_traces(html: &str) -> Value {
    let start = html
        .find("<script type=\"application/json\" id=\"trace-data\">")
        .unwrap();
    let data = &html[html[start..].find('>').unwrap() + start + 1..];
    let data = &data[..data.find("</script>").unwrap()];
    serde_json::from_str::<Value>(data).unwrap()["traces"].clone()
}

#[test]
fn an_exported_order_shows_its_tool_calls_usage_and_chat_as_serve_does_in_headless_chromium() {
    let env = crate::examples().env("OPENAI_API_KEY", SECRET_KEY);
    let (out, lines) = run_json(&env, "workflows/order.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let id = lines[0]["trace_id"].as_str().unwrap().to_string();
    let export = export_html(&env, &id);
    let html = std::fs::read_to_string(&export).unwrap();
    // One self-contained file of a reasonable size, with the trace as serve's API answers it.
    assert!(html.len() < 200_000, "the export is {} bytes", html.len());
    assert!(!html.contains(SECRET_KEY));
    let served = Served::start(&env, &[]);
    let api = served.get_json(&format!("/api/traces/{id}"));
    assert_eq!(embedded_traces(&html), Value::Array(vec![api.clone()]));

    let Some(page) = read_trace_page(&served, &id, Some(&export)) else {
        return;
    };
    let spans = api["spans"].as_array().unwrap();
    // The header's usage, the legend of the kinds this trace has, an axis of even steps.
    let usage = &api["usage"];
    assert_eq!(page["facts"]["tokens"], tokens(usage));
    // An offline run: marked where its price would be (issue 17, point 15).
    assert_eq!(page["facts"]["cost"], "offline (not priced)");
    let legend: Vec<&str> = page["legend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        legend,
        ["custom", "agent", "generation", "function", "command"]
    );
    let ticks: Vec<f64> = page["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| tick_ms(t.as_str().unwrap()))
        .collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    for (k, t) in ticks.iter().enumerate() {
        assert!(
            (t - k as f64 * ticks[1]).abs() < 1e-9,
            "uneven ticks {ticks:?}"
        );
    }

    // Every model call: its tokens, its input and output as a chat, the tool calls it made with
    // their arguments as JSON, not a string of escaped JSON.
    let mut calls = Vec::new();
    for s in spans.iter().filter(|s| s["kind"] == "generation") {
        let shown = page["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == s["span_id"])
            .unwrap();
        let a = &s["attributes"];
        assert_eq!(shown["tokens"], tokens(&a["usage"]));
        let mut roles: Vec<&str> = a["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        roles.push("assistant");
        assert_eq!(shown["chat"], serde_json::json!(roles), "{shown}");
        // The calls in the input's history, then the ones this call made.
        let made: Vec<Value> = a["input"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["tool_calls"].as_array().cloned().unwrap_or_default())
            .map(|c| c["function"].clone())
            .chain(a["tool_calls"].as_array().cloned().unwrap_or_default())
            .collect();
        let on_page = shown["calls"].as_array().unwrap();
        assert_eq!(on_page.len(), made.len(), "{shown}");
        for (call, on_page) in made.iter().zip(on_page) {
            let fn_line = on_page["fn"].as_str().unwrap();
            let name = call["name"].as_str().unwrap();
            assert!(fn_line.starts_with(&format!("call {name}")), "{fn_line}");
            let args = on_page["args"].as_str().unwrap();
            assert!(!args.contains('\\') && args.contains('\n'), "{args:?}");
            let parsed: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(serde_json::from_str::<Value>(args).unwrap(), parsed);
        }
        calls.extend(
            a["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["name"].as_str().unwrap().to_string()),
        );
    }
    assert_eq!(calls, ["check_inventory", "authorize_payment"]);
    // A tool's result in the chat is indented JSON too.
    let last = span(&page, "confirmer")["detail"].as_str().unwrap();
    assert!(last.contains("Thank you for your order"), "{last}");
    let answer = page["spans"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|p| p["kind"] == "generation")
        .unwrap()["detail"]
        .as_str()
        .unwrap();
    assert!(
        answer.contains("TOOL\nfor call_1\n{\n  \"sku\": \"SKU-4417\",\n  \"available\": 42,"),
        "{answer}"
    );
    // The tools' own spans show their arguments and result as JSON too.
    let tool = span(&page, "check_inventory")["detail"].as_str().unwrap();
    assert!(
        tool.contains("ARGUMENTS\n{\n  \"sku\": \"SKU-4417\",\n  \"quantity\": 2\n}"),
        "{tool}"
    );
    assert!(!tool.contains("\\\""), "{tool}");
}

/// An Agents SDK body of an agent that listed one MCP server's tools and called two of them,
/// the second with an `isError` result: the spans the SDK's own `MCPServer` records.
pub(crate) fn mcp_sdk_body(trace_hex: &str) -> Vec<u8> {
    let trace_id = format!("trace_{trace_hex}");
    let id = |n: u8| format!("span_{}{n:02}", &trace_hex[..22]);
    let at = |ms: i64| {
        (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5)
            + jiff::SignedDuration::from_millis(ms))
        .to_string()
    };
    let span = |n: u8, parent: Option<u8>, from: i64, to: i64, data: Value| {
        serde_json::json!({"object": "trace.span", "id": id(n), "trace_id": trace_id,
            "parent_id": parent.map(id), "started_at": at(from), "ended_at": at(to),
            "span_data": data, "error": null})
    };
    let mut failed = span(
        4,
        Some(1),
        400,
        450,
        serde_json::json!({"type": "function", "name": "echo", "input": "{}",
            "output": "Error: message is required",
            "mcp_data": {"server": "everything", "is_error": true}}),
    );
    failed["error"] = serde_json::json!({"message": "Error: message is required", "data": null});
    serde_json::to_vec(&serde_json::json!({"data": [
        {"object": "trace", "id": trace_id, "workflow_name": "MCP agent"},
        span(2, Some(1), 10, 60, serde_json::json!({"type": "mcp_tools", "server": "everything",
            "result": ["echo", "add", "get_tiny_image"]})),
        span(3, Some(1), 300, 350, serde_json::json!({"type": "function", "name": "add",
            "input": "{\"a\":1,\"b\":2}", "output": "3",
            "mcp_data": {"server": "everything", "transport": "stdio",
                         "structured_output": {"sum": 3}}})),
        failed,
        span(1, None, 0, 500, serde_json::json!({"type": "agent", "name": "helper",
            "handoffs": [], "tools": ["echo", "add", "get_tiny_image"], "output_type": "str"})),
    ]}))
    .unwrap()
}

#[test]
fn mcp_servers_and_calls_read_on_the_page_and_in_the_html_export_in_headless_chromium() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let hex = "dddd0000dddd0000dddd0000dddd0001";
    let r = served.post("/v1/traces/ingest", "application/json", &mcp_sdk_body(hex));
    assert_eq!(r.status, 200, "{}", r.text());
    let id = format!("trace_{hex}");
    // Stored as the kinds and attributes the engine records.
    let api = served.get_json(&format!("/api/traces/{id}"));
    let kinds: Vec<&str> = api["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["agent", "mcp_tools", "function", "function"],
        "{api}"
    );
    assert_eq!(api["spans"][1]["attributes"]["mcp.server"], "everything");
    assert_eq!(api["spans"][3]["attributes"]["mcp.is_error"], true);
    let export = export_html(&env, &id);
    let Some(page) = read_trace_page(&served, &id, Some(&export)) else {
        return;
    };
    let legend: Vec<&str> = page["legend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(legend, ["agent", "function", "MCP tools"]);
    // The tool list: its server and the tools it listed.
    let listing = span(&page, "everything")["detail"].as_str().unwrap();
    assert!(listing.contains("MCP server\teverything"), "{listing}");
    assert!(
        listing.to_lowercase().contains("tools listed") && listing.contains("3 tools"),
        "{listing}"
    );
    assert!(listing.contains("get_tiny_image"), "{listing}");
    // A call: its server, arguments, result and structured result; a failed one its isError.
    let call = span(&page, "add")["detail"].as_str().unwrap();
    assert!(call.contains("MCP server\teverything"), "{call}");
    assert!(call.to_lowercase().contains("structured result"), "{call}");
    assert!(call.contains("\"sum\": 3"), "{call}");
    let failed = span(&page, "echo");
    assert!(
        failed["detail"].as_str().unwrap().contains("isError\ttrue"),
        "{failed}"
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("Error: message is required"),
        "{failed}"
    );
}
