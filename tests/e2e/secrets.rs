//! Secrets, content capture and offline runs: the key never reaches the store,
//! `--no-content` keeps prompts and replies out, `--offline` needs no network.

use crate::failures::{AGENT_IN_SPAN, assert_key_absent};
use crate::support::*;
use crate::traces::*;

#[test]
fn the_api_key_and_untemplated_environment_never_reach_the_store() {
    let env = TestEnv::with_fake()
        .workflow(
            "secrets.yaml",
            r#"
name: Secrets
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - id: ask
    agent: helper
    input: Hello
  - id: env_user
    run: "test -n \"$PRIVATE_TOKEN\" && echo token-present"
"#,
        )
        .env("PRIVATE_TOKEN", "tok-hidden-456");
    let out = env.run(&["run", "secrets.yaml"]);
    assert_exit(&out, 0);
    assert_eq!(
        env.server().requests()[0]
            .headers
            .get("authorization")
            .map(String::as_str),
        Some("Bearer sk-test-SECRET-123"),
        "the key was used"
    );
    assert_key_absent(&env);
    let bytes = env.store_bytes();
    assert!(
        !bytes.windows(14).any(|w| w == b"tok-hidden-456"),
        "an environment value reached the store"
    );
    assert!(!stdout(&out).contains(SECRET_KEY));
    assert!(!stderr(&out).contains(SECRET_KEY));
}

#[test]
fn no_content_keeps_prompts_and_replies_out_of_spans_and_the_store() {
    let env = TestEnv::with_fake().workflow(
        "private.yaml",
        r#"
name: Private
model: gpt-4o-mini
agents:
  helper: { instructions: "INSTRUCTIONS-SENTINEL-7f3a be brief" }
steps:
  - id: ask
    agent: helper
    input: "PROMPT-SENTINEL-91bc what is up?"
"#,
    );
    env.server()
        .push(Reply::text("REPLY-SENTINEL-c0de all good", 3, 4));
    let out = env.run(&["run", "private.yaml", "--no-content"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    for span in spans(&trace) {
        let attrs = span["attributes"].as_object().unwrap();
        assert!(
            !attrs.contains_key("input"),
            "input kept with --no-content: {span:#}"
        );
        assert!(
            !attrs.contains_key("output"),
            "output kept with --no-content: {span:#}"
        );
    }
    assert_eq!(
        of_kind(&trace, "generation")[0]["attributes"]["usage"],
        usage(3, 4)
    );
    assert_eq!(trace["usage"], usage(3, 4));
    let bytes = env.store_bytes();
    for sentinel in [
        "INSTRUCTIONS-SENTINEL-7f3a",
        "PROMPT-SENTINEL-91bc",
        "REPLY-SENTINEL-c0de",
    ] {
        assert!(
            !bytes
                .windows(sentinel.len())
                .any(|w| w == sentinel.as_bytes()),
            "{sentinel} reached the store"
        );
    }
}

#[test]
fn an_offline_mock_text_is_a_template_and_a_real_model_never_renders_it() {
    let workflow = |mock: &str| {
        format!(
            "name: Templated mock\nmodel: gpt-4o-mini\nvars: {{ city: Paris }}\nagents:\n  helper: \
             {{ instructions: You help. }}\nsteps:\n  - id: answer\n    agent: helper\n    input: \
             Weather?\n    mock: \"{mock}\"\n"
        )
    };
    let env = TestEnv::with_fake()
        .workflow("templated.yaml", &workflow("Sunny in {{ vars.city }}"))
        .workflow("broken.yaml", &workflow("{{ nothing.here }}"));
    let (out, lines) = run_json(&env, "templated.yaml", &["--offline", "--var", "city=Oslo"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["answer"], "Sunny in Oslo");
    // Offline, a mock is rendered like any template: an unknown name is an error there.
    let (out, _) = run_json(&env, "broken.yaml", &["--offline"]);
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("template error in `mock`"),
        "{}",
        stdout(&out)
    );
    // With a real model the mock is not read, so not rendered either.
    env.server().push(Reply::text("Rain.", 3, 1));
    let (out, lines) = run_json(&env, "broken.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["answer"], "Rain.");
}

#[test]
fn offline_answers_with_mock_text_without_network_and_says_so() {
    let env = TestEnv::with_fake().workflow(
        "offline.yaml",
        r#"
name: Offline
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - id: mocked
    agent: helper
    input: Hello
    mock: A canned answer.
  - id: derived
    agent: helper
    input: "Continue from {{ steps.mocked.output }}"
"#,
    );
    let (out, lines) = run_json(&env, "offline.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert!(
        env.server().requests().is_empty(),
        "--offline never calls the server"
    );
    assert_eq!(lines[0]["outputs"]["mocked"], "A canned answer.");
    let derived = lines[0]["outputs"]["derived"].as_str().unwrap().to_string();
    assert!(!derived.is_empty());
    assert!(
        lines[0]["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "usage is computed from the text"
    );

    let trace = env.show_json("last");
    for generation in of_kind(&trace, "generation") {
        assert_eq!(generation["attributes"]["offline"], true, "{generation:#}");
        assert!(
            generation["attributes"]["usage"]["total_tokens"]
                .as_u64()
                .unwrap()
                > 0
        );
    }

    let (_, again) = run_json(&env, "offline.yaml", &["--offline"]);
    assert_eq!(
        again[0]["outputs"]["derived"],
        derived.as_str(),
        "the offline model is deterministic"
    );
    assert_eq!(again[0]["usage"], lines[0]["usage"]);
}

#[test]
fn without_key_or_base_url_run_exits_2_naming_both_and_offline_and_writes_nothing() {
    let env = TestEnv::new().workflow("agent.yaml", AGENT_IN_SPAN);
    let out = env.run(&["run", "agent.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    for needle in ["OPENAI_API_KEY", "OPENAI_BASE_URL", "--offline"] {
        assert!(err.contains(needle), "stderr should name {needle}:\n{err}");
    }
    assert_eq!(stdout(&out), "");
    assert!(!env.store_exists(), "nothing is written");
}
