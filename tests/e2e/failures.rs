//! Failures: a failing command or model call fails its ancestors and the trace, keeps what
//! was recorded, and stops the run.

use serde_json::Value;

use crate::support::*;
use crate::traces::*;

#[test]
fn a_failing_command_fails_its_ancestors_and_the_trace_and_stops_the_run() {
    let env = TestEnv::new().workflow(
        "failing.yaml",
        r#"
name: Failing
steps:
  - id: before
    run: ["echo", "fine"]
  - span: Outer
    steps:
      - span: Inner
        steps:
          - id: boom
            run: "echo partial; echo 'disk full' >&2; exit 3"
          - id: after_in_inner
            run: ["echo", "never"]
      - event: Never emitted
        attributes: { x: 1 }
  - id: after
    run: ["echo", "never either"]
"#,
    );
    let (out, lines) = run_json(&env, "failing.yaml", &["--offline"]);
    assert_exit(&out, 1);
    let run = &lines[0];
    assert_eq!(run["status"], "error");
    assert!(
        run["error"]["message"].is_string(),
        "the run line carries the error: {run:#}"
    );
    assert!(run["outputs"].get("after").is_none());

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(
        outline(&trace),
        vec![
            "command ok",
            "custom Outer error",
            "  custom Inner error",
            "    command error"
        ],
        "later steps do not run and leave no span"
    );
    let inner = find(&trace, "custom", "Inner");
    let boom = children(&trace, inner)[0];
    assert_eq!(boom["attributes"]["exit_code"], 3);
    assert!(
        boom["attributes"]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{boom:#}"
    );
    let message = boom["error"]["message"]
        .as_str()
        .expect("error message on the failed span");
    assert!(
        message.contains('3'),
        "the message names the exit status: {message}"
    );
    assert!(
        find(&trace, "custom", "Outer")["error"]["message"].is_string(),
        "ancestors carry the error too"
    );
    assert!(event_names(find(&trace, "custom", "Outer")).is_empty());
}

/// What every model failure must leave behind: exit 1, the error on the generation span and its
/// ancestors, the trace stored as `error`, and the key nowhere in the store.
#[track_caller]
pub(crate) fn assert_model_failure(env: &TestEnv, message_must_contain: &str) -> Value {
    let out = env.run(&["run", "agent.yaml"]);
    assert_exit(&out, 1);
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let agent = find(&trace, "agent", "helper");
    assert_eq!(agent["status"], "error");
    assert_eq!(find(&trace, "custom", "Ask")["status"], "error");
    let generation = children(&trace, agent)
        .into_iter()
        .find(|s| s["kind"] == "generation")
        .unwrap_or_else(|| panic!("the failed model call has a generation span: {trace:#}"));
    assert_eq!(generation["status"], "error");
    let message = generation["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {generation:#}"));
    assert!(
        message
            .to_lowercase()
            .contains(&message_must_contain.to_lowercase()),
        "generation error {message:?} should mention {message_must_contain:?}"
    );
    assert!(
        spans(&trace).iter().all(|s| s["name"] != "After"),
        "later steps do not run"
    );
    assert_key_absent(env);
    trace
}

pub(crate) const AGENT_IN_SPAN: &str = r#"
name: Ask
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - span: Ask
    steps:
      - id: ask
        agent: helper
        input: Hello
  - span: After
    steps: [{ id: later, run: ["echo", "never"] }]
"#;

#[track_caller]
pub(crate) fn assert_key_absent(env: &TestEnv) {
    let bytes = env.store_bytes();
    assert!(!bytes.is_empty(), "the store exists");
    assert!(
        !bytes
            .windows(SECRET_KEY.len())
            .any(|w| w == SECRET_KEY.as_bytes()),
        "the API key reached the store file"
    );
}

#[test]
fn http_401_fails_the_generation_with_the_status_and_keeps_the_trace() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::unauthorized());
    let trace = assert_model_failure(&env, "401");
    let generation = of_kind(&trace, "generation")[0];
    assert!(
        generation["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key"),
        "the server's message is kept: {generation:#}"
    );
}

#[test]
fn http_500_fails_the_generation() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::server_error());
    assert_model_failure(&env, "500");
}

#[test]
fn a_malformed_response_body_fails_the_generation() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::Malformed);
    assert_model_failure(&env, "");
}

#[test]
fn a_refused_connection_fails_the_generation() {
    let env = TestEnv::with_fake()
        .workflow("agent.yaml", AGENT_IN_SPAN)
        .env("OPENAI_BASE_URL", &refused_url());
    assert_model_failure(&env, "");
    assert!(env.server().requests().is_empty());
}
