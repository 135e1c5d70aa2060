//! MCP tools in the agent loop: a workflow's `mcp_servers:` started or connected to at first
//! use, their tools offered beside the workflow's own, calls traced as `function` spans under
//! an `mcp_tools` listing, failures sent back to the model, and no server outliving the run.
//! The model is the fake server's scripted turns; the MCP servers are real: mcp-server-time,
//! server-everything and the Python SDK fixture (tests/support/mcp_fixture.py).

use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp::{HttpEverything, fixture_argv, gone, installed};
use crate::support::*;
use crate::traces::*;

/// The kind of a server's tool listing span.
const LIST: &str = "mcp_tools";

/// `argv` as a YAML flow list.
fn yaml_list(argv: &[String]) -> String {
    serde_json::to_string(argv).unwrap()
}

fn fixture_workflow(server_extra: &str, agent_extra: &str, steps: &str) -> Option<String> {
    let argv = fixture_argv()?;
    Some(format!(
        r#"
name: MCP fixture
model: gpt-4o-mini
mcp_servers:
  fixture:
    command: {command}
{server_extra}
agents:
  helper:
    instructions: You use tools.
    mcp: [fixture]
{agent_extra}
steps:
{steps}
"#,
        command = yaml_list(&argv)
    ))
}

const ONE_STEP: &str = "  - { id: ask, agent: helper, input: Go. }";

#[test]
fn an_agent_answers_with_the_time_servers_tools_over_stdio() {
    let Some(time) = installed("AGENTRACE_MCP_TIME") else {
        return;
    };
    let yaml = format!(
        r#"
name: Clock
model: gpt-4o-mini
mcp_servers:
  time:
    command: {command}
agents:
  clock:
    instructions: You tell the time.
    mcp: [time]
steps:
  - {{ id: ask, agent: clock, input: What time is it in Kolkata? }}
"#,
        command = yaml_list(&[time, "--local-timezone".into(), "UTC".into()])
    );
    let env = TestEnv::with_fake().workflow("clock.yaml", &yaml);
    env.server().push_all([
        Reply::tool_call("get_current_time", json!({"timezone": "Asia/Kolkata"})),
        Reply::text("It is late afternoon in Kolkata.", 20, 6),
    ]);
    let (out, lines) = run_json(&env, "clock.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(
        lines[0]["outputs"]["ask"],
        "It is late afternoon in Kolkata."
    );

    // The model was offered the server's tools with their JSON Schemas.
    let requests = env.server().requests();
    let offered = requests[0].tool("get_current_time").expect("offered");
    assert_eq!(
        offered["function"]["parameters"]["required"],
        json!(["timezone"])
    );
    assert!(requests[0].tool("convert_time").is_some());
    // The result went back to the model.
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1);
    let sent: Value = serde_json::from_str(&results[0].1).expect("the tool's JSON text");
    assert_eq!(sent["timezone"], "Asia/Kolkata", "{sent}");

    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "clock");
    assert_eq!(
        child_outline(&trace, agent),
        [
            format!("{LIST} time ok"),
            "generation gpt-4o-mini ok".into(),
            "function get_current_time ok".into(),
            "generation gpt-4o-mini ok".into(),
        ]
    );
    let tools = agent["attributes"]["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("get_current_time")), "{tools:?}");
    let listing = find(&trace, LIST, "time");
    assert_eq!(listing["attributes"]["mcp.server"], "time");
    assert_eq!(listing["attributes"]["mcp.transport"], "stdio");
    assert_eq!(listing["attributes"]["cached"], false);
    assert!(listing["attributes"]["mcp.protocol_version"].is_string());
    let listed = listing["attributes"]["tools"].as_array().unwrap();
    assert!(listed.contains(&json!("convert_time")), "{listed:?}");
    let call = find(&trace, "function", "get_current_time");
    assert_eq!(call["attributes"]["mcp.server"], "time");
    assert_eq!(call["attributes"]["mcp.transport"], "stdio");
    assert_eq!(call["attributes"]["mcp.is_error"], false);
    assert_eq!(
        call["attributes"]["structured_output"]["timezone"],
        "Asia/Kolkata"
    );
    assert_eq!(
        serde_json::from_str::<Value>(call["attributes"]["input"].as_str().unwrap()).unwrap(),
        json!({"timezone": "Asia/Kolkata"})
    );
}

#[test]
fn mcp_tools_work_the_same_over_the_responses_api() {
    let Some(yaml) = fixture_workflow("", "", ONE_STEP) else {
        return;
    };
    let yaml = yaml.replace(
        "model: gpt-4o-mini\n",
        "model: gpt-4o-mini\nprovider: { api: responses }\n",
    );
    let env = TestEnv::with_fake().workflow("fx.yaml", &yaml);
    env.server().push_all([
        Reply::tool_calls(&[
            ("add", json!({"a": 2, "b": 3})),
            ("fail", json!({"reason": "no stock"})),
        ]),
        Reply::text("Five, and the other failed.", 20, 6),
    ]);
    let (out, lines) = run_json(&env, "fx.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["ask"], "Five, and the other failed.");

    let requests = env.server().requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.path == "/v1/responses"));
    // Offered in the Responses API's flat function-tool shape, with the server's schema.
    let add = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "add")
        .cloned()
        .expect("add offered");
    assert_eq!(add["type"], "function");
    assert_eq!(add["description"], "Adds two numbers.");
    assert_eq!(add["parameters"]["required"], json!(["a", "b"]));
    // Both results went back as function_call_output items of the stateless input.
    let outputs: Vec<Value> = requests[1]
        .input()
        .into_iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| i["output"].clone())
        .collect();
    assert_eq!(outputs.len(), 2, "{:#}", requests[1].body);
    let sum: Value = serde_json::from_str(outputs[0].as_str().unwrap()).unwrap();
    assert_eq!(sum, json!({"sum": 5}));
    assert!(
        outputs[1]
            .as_str()
            .is_some_and(|t| t.starts_with("Error: ") && t.contains("no stock")),
        "{outputs:?}"
    );

    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "helper");
    assert_eq!(
        child_outline(&trace, agent),
        [
            format!("{LIST} fixture ok"),
            "generation gpt-4o-mini ok".into(),
            "function add ok".into(),
            "function fail error".into(),
            "generation gpt-4o-mini ok".into(),
        ]
    );
    for g in children(&trace, agent)
        .iter()
        .filter(|s| s["kind"] == "generation")
    {
        assert_eq!(g["attributes"]["api"], "responses");
    }
    let add = find(&trace, "function", "add");
    assert_eq!(add["attributes"]["mcp.server"], "fixture");
    assert_eq!(add["attributes"]["structured_output"], json!({"sum": 5}));
    assert_eq!(
        find(&trace, "function", "fail")["attributes"]["mcp.is_error"],
        true
    );
}

#[test]
fn an_agent_calls_an_http_servers_tools_with_headers_from_the_environment_kept_out_of_the_store() {
    let Some(argv) = fixture_argv() else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(&argv[0])
        .args([&argv[1], "--http", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "the fixture did not listen on {port}");
    let yaml = format!(
        r#"
name: Remote
model: gpt-4o-mini
mcp_servers:
  remote:
    url: http://127.0.0.1:{port}/mcp
    headers:
      Authorization: "Bearer ${{FIXTURE_TOKEN}}"
agents:
  helper:
    instructions: You use tools.
    mcp: [remote]
steps:
  - {{ id: ask, agent: helper, input: Go. }}
"#
    );
    let token = "tok-7f3a9c2e5b1d4a68";
    let env = TestEnv::with_fake()
        .workflow("remote.yaml", &yaml)
        .env("FIXTURE_TOKEN", token);
    env.server().push_all([
        Reply::tool_calls(&[
            ("header", json!({"name": "Authorization"})),
            ("add", json!({"a": 20, "b": 22})),
        ]),
        Reply::text("Done.", 20, 6),
    ]);
    let (out, _) = run_json(&env, "remote.yaml", &[]);
    let _ = server.kill();
    let _ = server.wait();
    assert_exit(&out, 0);
    let results = env.server().requests()[1].tool_results();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(
        results[0].1,
        format!("Bearer {token}"),
        "the header reached the server"
    );
    assert!(results[1].1.contains("42"), "{results:?}");

    let trace = env.show_json("last");
    let listing = find(&trace, LIST, "remote");
    assert_eq!(listing["attributes"]["mcp.transport"], "streamable_http");
    assert_eq!(
        listing["attributes"]["mcp.url"],
        format!("http://127.0.0.1:{port}/mcp")
    );
    let add = find(&trace, "function", "add");
    assert_eq!(add["attributes"]["mcp.transport"], "streamable_http");
    assert_eq!(add["attributes"]["structured_output"], json!({"sum": 42}));
    // The token, which the server echoed into a tool result, is not in the store.
    let bytes = env.store_bytes();
    assert!(
        !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
        "the header's secret reached the store"
    );
}

#[test]
fn the_server_gets_the_calls_trace_context_and_failed_calls_go_back_to_the_model() {
    let Some(yaml) = fixture_workflow("", "", ONE_STEP) else {
        return;
    };
    let env = TestEnv::with_fake().workflow("fx.yaml", &yaml);
    env.server().push_all([
        Reply::tool_calls(&[
            ("traceparent", json!({})),
            ("fail", json!({"reason": "no stock"})),
            ("add", json!("not an object")),
        ]),
        Reply::tool_call("broken", json!({})),
        Reply::tool_call("die", json!({})),
        Reply::tool_call("pid", json!({})),
        Reply::text("I could not finish.", 20, 6),
    ]);
    let (out, lines) = run_json(&env, "fx.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["ask"], "I could not finish.");
    let requests = env.server().requests();
    assert_eq!(requests.len(), 5);

    let trace = env.show_json("last");
    let tp = find(&trace, "function", "traceparent");
    let trace_hex = trace["trace_id"]
        .as_str()
        .unwrap()
        .trim_start_matches("trace_");
    let span_hex = tp["span_id"].as_str().unwrap().trim_start_matches("span_");
    let first = requests[1].tool_results();
    assert_eq!(
        first[0].1,
        format!("00-{trace_hex}-{span_hex}-01"),
        "the server saw the function span as the parent in params._meta"
    );
    // isError: an error result the model reads, and an error on the span.
    assert!(first[1].1.starts_with("Error: "), "{first:?}");
    assert!(first[1].1.contains("cannot do it: no stock"), "{first:?}");
    let fail = find(&trace, "function", "fail");
    assert_eq!(fail["status"], "error");
    assert_eq!(fail["attributes"]["mcp.is_error"], true);
    assert!(
        error_message(fail).contains("answered with an error"),
        "{fail:#}"
    );
    // Arguments that are not an object never reach the server.
    assert!(first[2].1.contains("a JSON object is needed"), "{first:?}");
    assert_eq!(find(&trace, "function", "add")["status"], "error");

    // A protocol error (a JSON-RPC error answer): the server's message, on the span and for
    // the model. (Each request carries every tool result so far: the new one is the last.)
    let protocol = requests[2].tool_results();
    assert!(
        protocol[3].1.contains("backend index is corrupt"),
        "{protocol:?}"
    );
    let broken = find(&trace, "function", "broken");
    assert_eq!(broken["status"], "error");
    assert!(
        error_message(broken).starts_with("MCP server `fixture`: `broken` failed:")
            && error_message(broken).contains("backend index is corrupt"),
        "{broken:#}"
    );

    // The server died mid-call: its stderr explains, and later calls fail clearly.
    let died = requests[3].tool_results();
    assert!(
        died[4].1.contains("the server closed the connection"),
        "{died:?}"
    );
    let die = find(&trace, "function", "die");
    assert_eq!(die["status"], "error");
    assert!(
        die["attributes"]["stderr_tail"]
            .as_str()
            .is_some_and(|t| t.contains("going down on purpose")),
        "{die:#}"
    );
    let after = requests[4].tool_results();
    assert!(
        after[5].1.starts_with("Error: MCP server `fixture`"),
        "{after:?}"
    );
    assert_eq!(
        trace["status"], "ok",
        "tool errors go to the model; the step answered"
    );
}

#[test]
fn a_server_is_started_once_per_run_and_filters_narrow_what_an_agent_is_offered() {
    let Some(yaml) = fixture_workflow(
        "    allowed_tools: [pid, add, traceparent]",
        "  narrow:\n    instructions: Fewer tools.\n    mcp:\n      - { server: fixture, blocked_tools: [add] }",
        "  - { id: one, agent: helper, input: Go. }\n  - { id: two, agent: narrow, input: Again. }",
    ) else {
        return;
    };
    let env = TestEnv::with_fake().workflow("fx.yaml", &yaml);
    env.server().push_all([
        Reply::tool_call("pid", json!({})),
        Reply::text("one", 20, 6),
        Reply::tool_call("pid", json!({})),
        Reply::text("two", 20, 6),
    ]);
    let (out, _) = run_json(&env, "fx.yaml", &[]);
    assert_exit(&out, 0);
    let requests = env.server().requests();
    let mut first = requests[0].tool_names();
    first.sort();
    assert_eq!(
        first,
        ["add", "pid", "traceparent"],
        "the server's allowed_tools"
    );
    let mut second = requests[2].tool_names();
    second.sort();
    assert_eq!(second, ["pid", "traceparent"], "the agent blocks `add`");
    let (a, b) = (
        &requests[1].tool_results()[0].1,
        &requests[3].tool_results()[0].1,
    );
    assert_eq!(a, b, "one server process for the whole run");

    let trace = env.show_json("last");
    let listings = of_kind(&trace, LIST);
    assert_eq!(listings.len(), 2, "one listing per agent run");
    assert_eq!(listings[0]["attributes"]["cached"], false);
    assert_eq!(listings[1]["attributes"]["cached"], true);
    assert_eq!(
        listings[1]["attributes"]["tools"],
        json!(["traceparent", "pid"])
    );
}

#[test]
fn a_server_that_cannot_start_fails_the_step_with_its_stderr_and_a_clash_is_refused() {
    let Some(argv) = fixture_argv() else {
        return;
    };
    let mut broken = argv.clone();
    broken.push("--stderr-and-exit".into());
    let yaml = format!(
        r#"
name: Broken
model: gpt-4o-mini
mcp_servers:
  broken:
    command: {broken}
agents:
  helper:
    instructions: You use tools.
    mcp: [broken]
steps:
  - {{ id: ask, agent: helper, input: Go. }}
"#,
        broken = yaml_list(&broken)
    );
    let env = TestEnv::with_fake().workflow("broken.yaml", &yaml);
    let out = env.run(&["run", "broken.yaml"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("MCP server `broken`"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        env.server().request_count(),
        0,
        "no model call without the tools"
    );
    let trace = env.show_json("last");
    let listing = find(&trace, LIST, "broken");
    assert_eq!(listing["status"], "error");
    assert!(
        listing["attributes"]["stderr_tail"]
            .as_str()
            .is_some_and(|t| t.contains("missing configuration FIXTURE_CONFIG")),
        "{listing:#}"
    );

    // A server tool with the name of a workflow tool the agent has: refused at the listing.
    let mut clashing = argv;
    clashing.extend(["--tool".into(), "lookup".into()]);
    let yaml = format!(
        r#"
name: Clash
model: gpt-4o-mini
tools:
  lookup:
    command: [echo, found]
mcp_servers:
  fixture:
    command: {clashing}
agents:
  helper:
    instructions: You use tools.
    tools: [lookup]
    mcp: [fixture]
steps:
  - {{ id: ask, agent: helper, input: Go. }}
"#,
        clashing = yaml_list(&clashing)
    );
    let env = TestEnv::with_fake().workflow("clash.yaml", &yaml);
    let out = env.run(&["run", "clash.yaml"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("MCP server `fixture` offers a tool `lookup`"),
        "{}",
        stderr(&out)
    );
}

/// A run whose agent is stuck in a call of a server that never answers, started behind a
/// wrapper that leaves a child of its own: `stop` ends the run, and nothing is left behind.
fn stuck_run(
    marker: &str,
    workflow_extra: &str,
    slow_start: bool,
) -> (TestEnv, std::process::Child) {
    let argv = fixture_argv().unwrap();
    let pause = if slow_start { "sleep 5; " } else { "" };
    let wrapper = vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("sleep {marker} & {pause}exec \"$0\" \"$1\""),
        argv[0].clone(),
        argv[1].clone(),
    ];
    let yaml = format!(
        r#"
name: Stuck
model: gpt-4o-mini
{workflow_extra}
mcp_servers:
  fixture:
    command: {command}
agents:
  helper:
    instructions: You use tools.
    mcp: [fixture]
steps:
  - {{ id: ask, agent: helper, input: Go. }}
"#,
        command = yaml_list(&wrapper)
    );
    let env = TestEnv::with_fake().workflow("stuck.yaml", &yaml);
    env.server().push_all([
        Reply::tool_call("hang", json!({})),
        Reply::text("never", 1, 1),
    ]);
    let child = env.spawn(&["run", "stuck.yaml"]);
    (env, child)
}

#[test]
fn ctrl_c_or_the_runs_timeout_during_a_hung_call_leaves_no_server_behind() {
    if fixture_argv().is_none() {
        return;
    }
    let (env, child) = stuck_run("51.25", "", false);
    env.wait_for_trace("the hung call", |t| {
        spans(t)
            .iter()
            .any(|s| s["kind"] == "function" && s["name"] == "hang")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = wait_within(child, Duration::from_secs(20));
    assert_exit(&out, 130);
    assert!(
        gone("sleep 51.25"),
        "Ctrl-C left the server's process group running"
    );
    assert!(gone("mcp_fixture.py"), "Ctrl-C left the server running");
    let trace = env.show_json("last");
    assert_eq!(find(&trace, "function", "hang")["status"], "cancelled");

    let (env, child) = stuck_run("52.75", "timeout: 8s", false);
    let out = wait_within(child, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(
        gone("sleep 52.75"),
        "a timeout left the server's process group running"
    );
    let trace = env.show_json("last");
    assert_ne!(find(&trace, "function", "hang")["status"], "ok");

    // The timeout comes while the server is still starting.
    let (env, child) = stuck_run("53.25", "timeout: 1s", true);
    let out = wait_within(child, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(
        gone("sleep 53.25"),
        "a server given up while starting was left running"
    );
    assert_eq!(env.server().request_count(), 0);
}

#[test]
fn no_content_keeps_mcp_arguments_and_results_out_of_the_trace() {
    let Some(yaml) = fixture_workflow("", "", ONE_STEP) else {
        return;
    };
    let env = TestEnv::with_fake().workflow("fx.yaml", &yaml);
    env.server().push_all([
        Reply::tool_call("add", json!({"a": 1234567, "b": 1})),
        Reply::text("ok", 20, 6),
    ]);
    let (out, _) = run_json(&env, "fx.yaml", &["--no-content"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let add = find(&trace, "function", "add");
    for key in ["input", "output", "structured_output"] {
        assert!(add["attributes"].get(key).is_none(), "{key}: {add:#}");
    }
    assert_eq!(add["attributes"]["mcp.is_error"], false);
    let shown = trace.to_string();
    assert!(
        !shown.contains("1234568") && !shown.contains("1234567"),
        "{shown}"
    );
}

#[test]
fn the_everything_server_works_over_both_transports_in_one_agent() {
    let Some(everything) = installed("AGENTRACE_MCP_EVERYTHING") else {
        return;
    };
    let http = HttpEverything::start(&everything);
    let yaml = format!(
        r#"
name: Everything
model: gpt-4o-mini
mcp_servers:
  local:
    command: {command}
    allowed_tools: [echo]
  remote:
    url: http://127.0.0.1:{port}/mcp
    allowed_tools: [get-sum, get-tiny-image]
agents:
  helper:
    instructions: You use tools.
    mcp: [local, remote]
steps:
  - {{ id: ask, agent: helper, input: Go. }}
"#,
        command = yaml_list(&["node".into(), everything.clone(), "stdio".into()]),
        port = http.1
    );
    let env = TestEnv::with_fake().workflow("every.yaml", &yaml);
    env.server().push_all([
        Reply::tool_calls(&[
            ("echo", json!({"message": "over stdio"})),
            ("get-sum", json!({"a": 2, "b": 40})),
            ("get-tiny-image", json!({})),
        ]),
        Reply::text("done", 20, 6),
    ]);
    let (out, _) = run_json(&env, "every.yaml", &[]);
    assert_exit(&out, 0);
    let results = env.server().requests()[1].tool_results();
    assert!(results[0].1.contains("over stdio"), "{results:?}");
    assert!(results[1].1.contains("42"), "{results:?}");
    assert!(results[2].1.contains("[image: image/png]"), "{results:?}");
    let trace = env.show_json("last");
    assert_eq!(
        find(&trace, "function", "echo")["attributes"]["mcp.server"],
        "local"
    );
    assert_eq!(
        find(&trace, "function", "get-sum")["attributes"]["mcp.server"],
        "remote"
    );
}

#[test]
fn an_evaluation_starts_each_server_once_for_all_its_cases_and_stops_it_at_the_end() {
    let Some(argv) = fixture_argv() else {
        return;
    };
    let yaml = format!(
        r#"
name: Eval with MCP
model: gpt-4o-mini
vars: {{ word: hi }}
dataset:
  - {{ id: a, word: one }}
  - {{ id: b, word: two }}
  - {{ id: c, word: three }}
mcp_servers:
  fixture:
    command: {command}
agents:
  helper:
    instructions: You use tools.
    mcp: [fixture]
steps:
  - id: ask
    agent: helper
    input: "{{{{ vars.word }}}}"
    mock:
      - tool_calls: [{{ name: pid, arguments: {{}} }}]
      - done
    scores:
      - {{ name: used_pid, tools_called: [pid] }}
"#,
        command = yaml_list(&argv)
    );
    let env = TestEnv::new().workflow("eval.yaml", &yaml);
    let out = env.run(&["eval", "eval.yaml", "--offline", "-j", "3"]);
    assert_exit(&out, 0);
    let traces = env.list_json(&[]);
    assert_eq!(traces.len(), 3);
    let pids: std::collections::BTreeSet<String> = traces
        .iter()
        .map(|t| {
            let trace = env.show_json(t["trace_id"].as_str().unwrap());
            find(&trace, "function", "pid")["attributes"]["output"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pids.len(), 1, "one server for every case: {pids:?}");
    let pid = pids.into_iter().next().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the server outlived the evaluation"
    );
}

#[test]
fn a_stdio_server_gets_a_safe_environment_its_own_env_and_its_working_directory() {
    let Some(yaml) = fixture_workflow(
        "    env: { FIXTURE_CONFIG: \"${FIXTURE_SRC}-x\" }\n    cwd: data",
        "",
        ONE_STEP,
    ) else {
        return;
    };
    let env = TestEnv::with_fake()
        .workflow("flows/fx.yaml", &yaml)
        .env("OPENAI_API_KEY", "sk-never-for-mcp-servers")
        .env("FIXTURE_SRC", "from-env");
    std::fs::create_dir_all(env.path().join("flows/data")).unwrap();
    env.server().push_all([
        Reply::tool_calls(&[
            ("env", json!({"name": "OPENAI_API_KEY"})),
            ("env", json!({"name": "FIXTURE_CONFIG"})),
            ("env", json!({"name": "PATH"})),
            ("cwd", json!({})),
        ]),
        Reply::text("ok", 20, 6),
    ]);
    let (out, _) = run_json(&env, "flows/fx.yaml", &[]);
    assert_exit(&out, 0);
    let results = env.server().requests()[1].tool_results();
    assert_eq!(results[0].1, "unset", "agentrace's own secrets stay out");
    assert_eq!(results[1].1, "from-env-x");
    assert_ne!(results[2].1, "unset", "PATH is passed on");
    assert_eq!(
        std::path::Path::new(&results[3].1).canonicalize().unwrap(),
        env.path().join("flows/data").canonicalize().unwrap(),
        "cwd is relative to the workflow file"
    );

    // A `${VAR}` that is not set: exit 2 at the value's place, before anything runs.
    let env = TestEnv::with_fake().workflow("flows/fx.yaml", &yaml);
    let out = env.run(&["run", "flows/fx.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("flows/fx.yaml:")
            && stderr(&out).contains("`FIXTURE_SRC` is not set"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.server().request_count(), 0);
}

#[test]
fn a_call_that_hangs_past_its_call_timeout_goes_back_to_the_model_as_an_error() {
    let Some(yaml) = fixture_workflow("    call_timeout: 1s", "", ONE_STEP) else {
        return;
    };
    let env = TestEnv::with_fake().workflow("fx.yaml", &yaml);
    env.server().push_all([
        Reply::tool_call("hang", json!({})),
        Reply::text("The tool timed out.", 20, 6),
    ]);
    let (out, lines) = run_json(&env, "fx.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["ask"], "The tool timed out.");
    let results = env.server().requests()[1].tool_results();
    assert!(
        results[0].1.contains("did not answer within 1s"),
        "{results:?}"
    );
    let trace = env.show_json("last");
    let hang = find(&trace, "function", "hang");
    assert_eq!(hang["status"], "error");
    assert!(
        error_message(hang).contains("`hang` did not answer within 1s"),
        "{hang:#}"
    );
}

#[test]
fn a_budget_stop_during_a_hung_call_leaves_no_server_behind() {
    let Some(argv) = fixture_argv() else {
        return;
    };
    let wrapper = vec![
        "sh".to_string(),
        "-c".to_string(),
        "sleep 54.5 & exec \"$0\" \"$1\"".to_string(),
        argv[0].clone(),
        argv[1].clone(),
    ];
    // One branch waits on a call that never returns; the other's model call spends the budget.
    let yaml = format!(
        r#"
name: Budget
model: gpt-4o-mini
budget: {{ max_tokens: 500 }}
mcp_servers:
  fixture:
    command: {command}
agents:
  helper:
    instructions: You use tools.
    mcp: [fixture]
  writer:
    instructions: You write.
steps:
  - parallel:
      - {{ id: stuck, agent: helper, input: Go. }}
      - span: Later
        steps:
          - {{ run: [sh, -c, "while [ ! -e hang.started ]; do sleep 0.1; done"] }}
          - {{ id: spend, agent: writer, input: Write. }}
"#,
        command = yaml_list(&wrapper)
    );
    let env = TestEnv::with_fake().workflow("budget.yaml", &yaml);
    env.server().push_all([
        Reply::tool_call("hang", json!({})),
        Reply::text("a long text", 400, 400),
    ]);
    let child = env.spawn(&["run", "budget.yaml"]);
    env.wait_for_trace("the hung call", |t| {
        spans(t)
            .iter()
            .any(|s| s["kind"] == "function" && s["name"] == "hang")
    });
    std::fs::write(env.path().join("hang.started"), "").unwrap();
    let out = wait_within(child, Duration::from_secs(30));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("budget"), "{}", stderr(&out));
    assert!(
        gone("sleep 54.5"),
        "a budget stop left the server's process group running"
    );
    let trace = env.show_json("last");
    assert_ne!(find(&trace, "function", "hang")["status"], "ok");
}
