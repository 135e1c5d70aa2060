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
pub(crate) fn installed(var: &str) -> Option<String> {
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
                None,
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
                None,
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
                None,
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
            .call(
                "echo",
                args(json!({"message": "hello MCP"})),
                None,
                SECONDS_10,
            )
            .await
            .unwrap();
        assert!(echo.text.contains("hello MCP"), "{echo:?}");
        assert!(!echo.is_error);
        let image = client
            .call("get-tiny-image", Map::new(), None, SECONDS_10)
            .await
            .unwrap();
        assert!(image.text.contains("[image: image/png]"), "{image:?}");
        assert!(
            !image.text.contains("iVBOR"),
            "no base64 for the model: {image:?}"
        );
        // An unknown tool is a protocol error, said in one line with the server's name.
        let unknown = client
            .call("no-such-tool", Map::new(), None, SECONDS_10)
            .await;
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
pub(crate) struct HttpEverything(std::process::Child, pub(crate) u16);

impl HttpEverything {
    pub(crate) fn start(everything: &str) -> HttpEverything {
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
            .call("get-sum", args(json!({"a": 2, "b": 40})), None, SECONDS_10)
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

/// The fixture server (tests/support/mcp_fixture.py) run by the Python of the venv that
/// ci/mcp-servers.sh installs (`mcp` 2.x is there for mcp-server-time).
pub(crate) fn fixture_argv() -> Option<Vec<String>> {
    let time = installed("AGENTRACE_MCP_TIME")?;
    let python = std::path::Path::new(&time).with_file_name("python");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/mcp_fixture.py");
    Some(vec![
        python.to_string_lossy().into_owned(),
        script.to_string_lossy().into_owned(),
    ])
}

fn pgrep(pattern: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Waits up to 5 s for no process to match `pattern`; whether none does.
pub(crate) fn gone(pattern: &str) -> bool {
    for _ in 0..100 {
        if !pgrep(pattern) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn the_trace_context_reaches_the_server_and_a_dying_server_is_explained_by_its_stderr() {
    let Some(argv) = fixture_argv() else {
        return;
    };
    block_on(async {
        let server = StdioServer {
            name: "fixture".into(),
            command: argv,
            ..Default::default()
        };
        let client = McpClient::start(&server, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(client.protocol_version().is_some());
        let tp = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
        let seen = client
            .call("traceparent", Map::new(), Some(tp), SECONDS_10)
            .await
            .unwrap();
        assert_eq!(seen.text, tp, "{seen:?}");
        let none = client
            .call("traceparent", Map::new(), None, SECONDS_10)
            .await
            .unwrap();
        assert_eq!(none.text, "none");

        let failed = client
            .call("fail", args(json!({"reason": "no"})), None, SECONDS_10)
            .await
            .unwrap();
        assert!(failed.is_error, "{failed:?}");
        assert!(failed.text.contains("cannot do it: no"), "{failed:?}");

        let sum = client
            .call("add", args(json!({"a": 2, "b": 3})), None, SECONDS_10)
            .await
            .unwrap();
        assert_eq!(sum.structured, Some(json!({"sum": 5})), "{sum:?}");

        let hung = client
            .call("hang", Map::new(), None, Duration::from_millis(300))
            .await
            .expect_err("a call that never answers times out");
        assert!(hung.to_string().contains("did not answer within"), "{hung}");

        let died = client
            .call("die", Map::new(), None, SECONDS_10)
            .await
            .expect_err("a server that dies mid-call");
        assert!(
            died.to_string().starts_with("MCP server `fixture`:"),
            "{died}"
        );
        assert!(
            died.to_string()
                .contains("the server closed the connection"),
            "{died}"
        );
        assert!(
            died.stderr_tail
                .as_deref()
                .is_some_and(|t| t.ends_with("fixture: going down on purpose")),
            "{died:?}"
        );
        client.shutdown().await;
    });

    // Stderr before the server speaks MCP explains why it did not start.
    let mut argv = fixture_argv().unwrap();
    argv.push("--stderr-and-exit".into());
    let server = StdioServer {
        name: "fixture".into(),
        command: argv,
        ..Default::default()
    };
    let e = block_on(McpClient::start(&server, SECONDS_10))
        .err()
        .expect("exits before initialising");
    assert!(
        e.stderr_tail
            .as_deref()
            .is_some_and(|t| t.contains("missing configuration FIXTURE_CONFIG")),
        "{e:?}"
    );
}

#[test]
fn shutting_down_a_server_stops_what_it_started_too() {
    let Some(argv) = fixture_argv() else {
        return;
    };
    // A server behind a wrapper script that leaves a child of its own running.
    let script = format!("sleep 43.75 & exec {} {}", argv[0], argv[1]);
    let server = StdioServer {
        name: "wrapped".into(),
        command: vec!["sh".into(), "-c".into(), script],
        ..Default::default()
    };
    block_on(async {
        let client = McpClient::start(&server, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(pgrep("sleep 43.75"));
        client.shutdown().await;
    });
    assert!(
        gone("sleep 43.75"),
        "the server's own child was left running"
    );

    // Dropped without a shutdown (a run torn down): killed as well.
    block_on(async {
        let client = McpClient::start(&server, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(pgrep("sleep 43.75"));
        drop(client);
    });
    assert!(
        gone("sleep 43.75"),
        "a dropped server's child was left running"
    );
}
