//! MCP tool servers (issue 18, first part): the stdio client against real servers
//! (`mcp-server-time` from PyPI, `@modelcontextprotocol/server-everything` from npm; `.ci/run`
//! installs both with ci/mcp-servers.sh and exports AGENTRACE_MCP_TIME and
//! AGENTRACE_MCP_EVERYTHING), and the faults a server can have: no such program, a server that
//! exits at once, one that never answers.

use std::time::Duration;

use agentrace::llm::mcp::{McpClient, StdioServer};
use serde_json::{Map, Value, json};

use crate::support::*;

/// The path a `real_mcp_*` test needs, or `None` (a note) on a developer's machine without it;
/// under CI its absence fails the test, since .ci/run installs the servers.
fn installed(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            assert!(
                !under_ci(),
                "{var} is not set under CI: .ci/run should have run ci/mcp-servers.sh"
            );
            eprintln!(
                "skipped: {var} is not set. Run `bash ci/mcp-servers.sh install` and \
                 `eval \"$(bash ci/mcp-servers.sh env)\"` first."
            );
            None
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

const SECONDS_10: Duration = Duration::from_secs(10);

#[test]
fn real_mcp_time_server_lists_its_tools_and_answers_a_call() {
    let Some(time) = installed("AGENTRACE_MCP_TIME") else {
        return;
    };
    let server = StdioServer {
        name: "time".into(),
        command: vec![time, "--local-timezone".into(), "UTC".into()],
        ..Default::default()
    };
    block_on(async {
        let client = McpClient::start(&server, Duration::from_secs(30))
            .await
            .unwrap();
        let names: Vec<&str> = client.tools().iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"get_current_time"), "{names:?}");
        assert!(names.contains(&"convert_time"), "{names:?}");
        let tool = &client.tools()[names.iter().position(|n| *n == "get_current_time").unwrap()];
        assert_eq!(tool.input_schema["required"], json!(["timezone"]));
        assert!(!tool.description.is_empty());

        let answer = client
            .call(
                "get_current_time",
                args(json!({"timezone": "Asia/Kolkata"})),
                SECONDS_10,
            )
            .await
            .unwrap();
        assert!(!answer.is_error, "{answer:?}");
        let structured = answer.structured.clone().expect("structured content");
        assert_eq!(structured["timezone"], "Asia/Kolkata", "{answer:?}");
        assert!(
            structured["datetime"]
                .as_str()
                .unwrap_or_default()
                .ends_with("+05:30"),
            "{answer:?}"
        );
        assert!(answer.text.contains("Asia/Kolkata"), "{answer:?}");

        // A bad argument is the tool's error, for the model to read; the session goes on.
        let bad = client
            .call(
                "get_current_time",
                args(json!({"timezone": "Mars/Olympus"})),
                SECONDS_10,
            )
            .await
            .unwrap();
        assert!(bad.is_error, "{bad:?}");
        assert!(bad.text.contains("Mars/Olympus"), "{bad:?}");
        let again = client
            .call(
                "get_current_time",
                args(json!({"timezone": "UTC"})),
                SECONDS_10,
            )
            .await
            .unwrap();
        assert!(!again.is_error, "{again:?}");
        client.shutdown().await;
    });
}

#[test]
fn real_mcp_everything_server_over_stdio_gives_text_and_a_placeholder_for_an_image() {
    let Some(everything) = installed("AGENTRACE_MCP_EVERYTHING") else {
        return;
    };
    let server = StdioServer {
        name: "everything".into(),
        command: vec!["node".into(), everything, "stdio".into()],
        ..Default::default()
    };
    block_on(async {
        let client = McpClient::start(&server, Duration::from_secs(30))
            .await
            .unwrap();
        let names: Vec<&str> = client.tools().iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"echo"), "{names:?}");
        let echo = client
            .call("echo", args(json!({"message": "hello MCP"})), SECONDS_10)
            .await
            .unwrap();
        assert!(echo.text.contains("hello MCP"), "{echo:?}");
        assert!(!echo.is_error);
        let image = client
            .call("get-tiny-image", Map::new(), SECONDS_10)
            .await
            .unwrap();
        assert!(image.text.contains("[image: image/png]"), "{image:?}");
        assert!(
            !image.text.contains("iVBOR"),
            "no base64 for the model: {image:?}"
        );
        // An unknown tool is a protocol error, said in one line with the server's name.
        let unknown = client.call("no-such-tool", Map::new(), SECONDS_10).await;
        match unknown {
            Err(e) => assert!(e.to_string().starts_with("MCP server `everything`:"), "{e}"),
            Ok(r) => assert!(r.is_error, "{r:?}"),
        }
        client.shutdown().await;
    });
}

#[test]
fn a_server_that_cannot_start_exits_at_once_or_never_answers_is_a_clear_error() {
    block_on(async {
        let missing = StdioServer {
            name: "missing".into(),
            command: vec!["/nonexistent/mcp-server".into()],
            ..Default::default()
        };
        let e = McpClient::start(&missing, SECONDS_10)
            .await
            .err()
            .expect("no such program");
        let e = e.to_string();
        assert!(
            e.starts_with("MCP server `missing`: cannot start `/nonexistent/mcp-server`"),
            "{e}"
        );

        let exits = StdioServer {
            name: "exits".into(),
            command: vec!["sh".into(), "-c".into(), "exit 3".into()],
            ..Default::default()
        };
        let e = McpClient::start(&exits, SECONDS_10)
            .await
            .err()
            .expect("a server that exits");
        assert!(e.to_string().starts_with("MCP server `exits`:"), "{e}");

        let hangs = StdioServer {
            name: "hangs".into(),
            command: vec!["sleep".into(), "37.25".into()],
            ..Default::default()
        };
        let e = McpClient::start(&hangs, Duration::from_millis(500))
            .await
            .err()
            .expect("a server that never answers");
        assert!(
            e.to_string()
                .starts_with("MCP server `hangs`: did not initialise within"),
            "{e}"
        );
    });
    // The server that never answered was killed, not left behind.
    let alive = || {
        std::process::Command::new("pgrep")
            .args(["-f", "sleep 37.25"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    for _ in 0..100 {
        if !alive() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "the hung server was left running");
}

/// server-everything over streamable HTTP, started by the test on a free port of 127.0.0.1 and
/// killed by its PID when the test ends.
struct HttpEverything(std::process::Child, u16);

impl HttpEverything {
    fn start(everything: &str) -> HttpEverything {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let preload =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/listen-local.cjs");
        let child = std::process::Command::new("node")
            .arg("--require")
            .arg(&preload)
            .args([everything, "streamableHttp"])
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let server = HttpEverything(child, port);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server-everything did not listen on 127.0.0.1:{port}");
    }
}

impl Drop for HttpEverything {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn real_mcp_everything_server_over_streamable_http_lists_and_calls_its_tools() {
    let Some(everything) = installed("AGENTRACE_MCP_EVERYTHING") else {
        return;
    };
    let server = HttpEverything::start(&everything);
    let url = format!("http://127.0.0.1:{}/mcp", server.1);
    block_on(async {
        let headers = [("X-Agentrace-Test".to_string(), "1".to_string())];
        let client = McpClient::connect("everything-http", &url, &headers, Duration::from_secs(30))
            .await
            .unwrap();
        let names: Vec<&str> = client.tools().iter().map(|t| t.name.as_str()).collect();
        assert!(names.contains(&"get-sum"), "{names:?}");
        let sum = client
            .call("get-sum", args(json!({"a": 2, "b": 40})), SECONDS_10)
            .await
            .unwrap();
        assert!(sum.text.contains("42"), "{sum:?}");
        client.shutdown().await;

        // Nothing listening: a clear error naming the server.
        let e = McpClient::connect(
            "gone",
            "http://127.0.0.1:9/mcp",
            &[],
            Duration::from_secs(5),
        )
        .await
        .err()
        .expect("nothing listens on port 9");
        assert!(e.to_string().starts_with("MCP server `gone`:"), "{e}");
        // A header that HTTP cannot carry is refused before any request.
        let bad = [("X-Bad".to_string(), "line\nbreak".to_string())];
        let e = McpClient::connect("bad", &url, &bad, Duration::from_secs(5))
            .await
            .err()
            .expect("a bad header value");
        assert!(e.to_string().contains("header `X-Bad`"), "{e}");
    });
}
