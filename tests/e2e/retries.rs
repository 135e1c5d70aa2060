//! Retries of model calls: which failures are retried, after what wait, and where the
//! settings come from.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;
use crate::traces::*;

/// One agent step inside a span; `RETRY` is replaced by a top-level `retry:` line (or nothing).
const FLAKY: &str = r#"
name: Flaky
model: gpt-4o-mini
RETRY
agents:
  helper: { instructions: You help. }
steps:
  - span: Ask
    steps:
      - id: ask
        agent: helper
        input: Hello
"#;

fn flaky_env(retry: &str) -> TestEnv {
    TestEnv::with_fake().workflow("flaky.yaml", &FLAKY.replace("RETRY", retry))
}

/// Runs flaky.yaml; returns the output, the trace and its one generation span.
fn run_flaky(env: &TestEnv, code: i32) -> (std::process::Output, Value, Value) {
    let out = env.run(&["run", "flaky.yaml", "--format", "json"]);
    assert_exit(&out, code);
    let trace = env.show_json("last");
    let generations = of_kind(&trace, "generation");
    assert_eq!(
        generations.len(),
        1,
        "one generation span per model call, not per attempt: {:#?}",
        outline(&trace)
    );
    let generation = generations[0].clone();
    (out, trace, generation)
}

#[test]
fn a_429_with_retry_after_is_retried_after_the_wait_it_asks_for() {
    let env = flaky_env("retry: { attempts: 3, backoff: 10ms }");
    env.server().push(Reply::rate_limited(1)).push(Reply::text(
        "Hello after the rate limit",
        10,
        5,
    ));
    let (out, trace, generation) = run_flaky(&env, 0);
    let lines = parse_json_lines(&out.stdout);
    assert_eq!(lines[0]["outputs"]["ask"], "Hello after the rate limit");
    assert_eq!(trace["status"], "ok");
    assert_eq!(generation["status"], "ok");
    assert_eq!(env.server().request_count(), 2);
    let arrivals = env.server().arrivals();
    assert!(
        arrivals[1] - arrivals[0] >= Duration::from_millis(900),
        "Retry-After: 1 is honoured over a 10 ms backoff: {:?}",
        arrivals[1] - arrivals[0]
    );
    let retries = events_named(&generation, "retry");
    assert_eq!(retries.len(), 1, "{generation:#}");
    let attrs = &retries[0]["attributes"];
    assert_eq!(attrs["attempt"], 1);
    assert_eq!(attrs["status"], 429);
    assert!(
        attrs["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{attrs:#}"
    );
    assert!(
        attrs["wait_ms"].as_f64().is_some_and(|w| w >= 900.0),
        "the wait is Retry-After's: {attrs:#}"
    );
    assert_eq!(trace["usage"], usage(10, 5));
}

#[test]
fn http_500_twice_then_success_records_two_retries_on_one_generation() {
    let env = flaky_env("retry: { attempts: 3, backoff: 10ms }");
    env.server().push_all([
        Reply::server_error(),
        Reply::server_error(),
        Reply::text("third time lucky", 10, 5),
    ]);
    let (out, _, generation) = run_flaky(&env, 0);
    assert_eq!(
        parse_json_lines(&out.stdout)[0]["outputs"]["ask"],
        "third time lucky"
    );
    assert_eq!(env.server().request_count(), 3);
    let retries = events_named(&generation, "retry");
    assert_eq!(retries.len(), 2, "{generation:#}");
    for (i, r) in retries.iter().enumerate() {
        let attrs = &r["attributes"];
        assert_eq!(attrs["attempt"], i + 1);
        assert_eq!(attrs["status"], 500);
        assert!(attrs["error"].is_string());
        assert!(
            attrs["wait_ms"].as_f64().is_some_and(|w| w >= 0.0),
            "{attrs:#}"
        );
    }
    assert_eq!(generation["status"], "ok");
    assert!(generation["error"].is_null());
}

#[test]
fn http_400_is_not_retried() {
    let env = flaky_env("retry: { attempts: 3, backoff: 10ms }");
    env.server().set_default(Reply::bad_request());
    let (_, trace, generation) = run_flaky(&env, 1);
    assert_eq!(
        env.server().request_count(),
        1,
        "a 4xx other than 429 is final"
    );
    assert!(
        events_named(&generation, "retry").is_empty(),
        "{generation:#}"
    );
    assert_eq!(generation["status"], "error");
    assert!(error_message(&generation).contains("400"));
    assert_eq!(trace["status"], "error");
}

#[test]
fn a_malformed_body_is_not_retried() {
    // Asked for a plain JSON answer, then (the default) for a stream: a 200 whose body is not
    // what was asked for is the server's answer, not a transient failure.
    for provider in ["provider: { stream: false }", ""] {
        let env = flaky_env(&format!(
            "retry: {{ attempts: 3, backoff: 10ms }}\n{provider}"
        ));
        env.server().set_default(Reply::Malformed);
        let (_, _, generation) = run_flaky(&env, 1);
        assert_eq!(
            env.server().request_count(),
            1,
            "{provider:?}: one request; {generation:#}"
        );
        assert!(
            events_named(&generation, "retry").is_empty(),
            "{generation:#}"
        );
        assert_eq!(generation["status"], "error");
    }
}

#[test]
fn exhausted_retries_fail_the_step_with_the_last_error_and_the_attempt_count() {
    let env = flaky_env("retry: { attempts: 3, backoff: 10ms }");
    env.server().set_default(Reply::server_error());
    let (out, trace, generation) = run_flaky(&env, 1);
    assert_eq!(env.server().request_count(), 3);
    let message = error_message(&generation);
    assert!(message.contains("500"), "the last error: {message}");
    assert!(message.contains("after 3 attempts"), "{message}");
    let retries = events_named(&generation, "retry");
    assert!(
        (2..=3).contains(&retries.len()),
        "an event per failed attempt: {generation:#}"
    );
    for (i, r) in retries.iter().enumerate() {
        assert_eq!(r["attributes"]["attempt"], i + 1);
    }
    assert_eq!(find(&trace, "agent", "helper")["status"], "error");
    assert_eq!(find(&trace, "custom", "Ask")["status"], "error");
    assert_eq!(trace["status"], "error");
    assert!(stderr(&out).contains("500"), "{}", stderr(&out));
}

#[test]
fn a_response_slower_than_the_attempt_timeout_is_retried() {
    let env = flaky_env("retry: { attempts: 2, backoff: 10ms, timeout: 500ms }");
    env.server().push_all([
        Reply::delayed(10_000, Reply::text("too late", 10, 5)),
        Reply::text("in time", 10, 5),
    ]);
    let (out, _, generation) = run_flaky(&env, 0);
    assert_eq!(
        parse_json_lines(&out.stdout)[0]["outputs"]["ask"],
        "in time"
    );
    assert_eq!(env.server().request_count(), 2);
    let retries = events_named(&generation, "retry");
    assert_eq!(retries.len(), 1, "{generation:#}");
    let attrs = &retries[0]["attributes"];
    assert_eq!(attrs["attempt"], 1);
    assert!(attrs["status"].is_null(), "no HTTP status: {attrs:#}");
    assert!(
        attrs["error"].as_str().unwrap().contains("timed out"),
        "{attrs:#}"
    );

    // Every attempt too slow: the step fails once the attempts are spent.
    let env = flaky_env("retry: { attempts: 2, backoff: 10ms, timeout: 300ms }");
    env.server()
        .set_default(Reply::delayed(10_000, Reply::text("too late", 10, 5)));
    let (_, trace, generation) = run_flaky(&env, 1);
    assert_eq!(env.server().request_count(), 2);
    let message = error_message(&generation);
    assert!(message.contains("timed out"), "{message}");
    assert!(message.contains("after 2 attempts"), "{message}");
    assert_eq!(trace["status"], "error");
}

#[test]
fn a_refused_connection_is_retried_then_fails() {
    let env =
        flaky_env("retry: { attempts: 2, backoff: 10ms }").env("OPENAI_BASE_URL", &refused_url());
    let (_, _, generation) = run_flaky(&env, 1);
    let retries = events_named(&generation, "retry");
    assert!(!retries.is_empty(), "{generation:#}");
    assert_eq!(retries[0]["attributes"]["attempt"], 1);
    assert!(retries[0]["attributes"]["status"].is_null());
    assert!(error_message(&generation).contains("after 2 attempts"));
}

#[test]
fn retry_settings_come_from_the_step_then_the_agent_then_the_workflow_then_the_default() {
    let env = TestEnv::with_fake().workflow(
        "layers.yaml",
        r#"
name: Layers
model: gpt-4o-mini
retry: { attempts: 4, backoff: 10ms }
agents:
  strict: { instructions: You are strict., retry: { attempts: 1 } }
  plain: { instructions: You are plain. }
steps:
  - { id: by_workflow, agent: plain, input: by-workflow, continue_on_error: true }
  - { id: by_agent, agent: strict, input: by-agent, continue_on_error: true }
  - { id: by_step, agent: strict, input: by-step, continue_on_error: true, retry: { attempts: 2 } }
"#,
    );
    env.server().set_default(Reply::server_error());
    let out = env.run(&["run", "layers.yaml"]);
    assert_exit(&out, 0);
    let count = |input: &str| {
        env.server()
            .requests()
            .iter()
            .filter(|r| r.message("user").as_deref() == Some(input))
            .count()
    };
    assert_eq!(count("by-workflow"), 4);
    assert_eq!(count("by-agent"), 1);
    assert_eq!(count("by-step"), 2);
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "ok");
    assert!(
        of_kind(&trace, "agent")
            .iter()
            .all(|a| a["status"] == "error")
    );

    // Nothing set: 3 attempts in all.
    let env = flaky_env("");
    env.server().set_default(Reply::server_error());
    let (_, _, generation) = run_flaky(&env, 1);
    assert_eq!(env.server().request_count(), 3);
    assert!(error_message(&generation).contains("after 3 attempts"));
}
