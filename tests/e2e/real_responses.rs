//! `api: responses` against a real implementation of the Responses API: the LiteLLM proxy
//! (PyPI) in front of the llama.cpp server of real_server.rs, answering `POST /v1/responses`
//! with its own validation, response objects and stream events. `ci/litellm.sh install` and
//! `start` set it up, and `.ci/run` exports AGENTRACE_RESPONSES_URL and AGENTRACE_RESPONSES_KEY.
//! (llama-cpp-python's server itself has no /v1/responses: see
//! responses.rs' `a_server_without_the_responses_api_is_a_clear_error_not_retried`.) As in
//! real_server.rs, the model's wording is not asserted, only the structure of what came back.

use serde_json::json;

use crate::real_server::{real_run_json, real_usage};
use crate::support::*;
use crate::traces::*;

/// The proxy's base URL and key, or `None` after a note on stderr when none was started; under
/// CI a missing proxy fails the test.
fn responses_server() -> Option<(String, String)> {
    if let (Ok(url), Ok(key)) = (
        std::env::var("AGENTRACE_RESPONSES_URL"),
        std::env::var("AGENTRACE_RESPONSES_KEY"),
    ) && !url.trim().is_empty()
    {
        return Some((url.trim().trim_end_matches('/').to_string(), key));
    }
    assert!(
        !under_ci(),
        "AGENTRACE_RESPONSES_URL is not set under CI: .ci/run should have started the LiteLLM \
         proxy (ci/litellm.sh install && ci/litellm.sh start) and exported it"
    );
    eprintln!(
        "skipped: AGENTRACE_RESPONSES_URL is not set. With the llama.cpp server running: \
         ci/litellm.sh install && eval \"$(ci/litellm.sh start)\""
    );
    None
}

/// A TestEnv whose model calls go to the proxy with `key`.
fn responses_env(url: &str, key: &str) -> TestEnv {
    TestEnv::new()
        .env("OPENAI_BASE_URL", url)
        .env("OPENAI_API_KEY", key)
}

fn short_workflow(provider_extra: &str, step_extra: &str) -> String {
    format!(
        r#"
name: Real Responses API
model: smollm2
provider: {{ api: responses{provider_extra} }}
vars: {{ q: Write one sentence about the ocean. }}
agents:
  poet:
    instructions: You are a concise assistant.
    max_tokens: 24
    temperature: 0
steps:
  - id: line
    agent: poet
    input: "{{{{ vars.q }}}}"
{step_extra}
"#
    )
}

#[test]
fn real_responses_call_plain_and_streamed_records_usage_and_the_response() {
    let Some((url, key)) = responses_server() else {
        return;
    };
    for streamed in [false, true] {
        let extra = if streamed {
            ", stream: true"
        } else {
            ", stream: false"
        };
        let env = responses_env(&url, &key).workflow("short.yaml", &short_workflow(extra, ""));
        let (out, lines) = real_run_json(&env, "short.yaml", &[]);
        assert_exit(&out, 0);
        let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
        assert_eq!(trace["status"], "ok");
        let g = of_kind(&trace, "generation")[0];
        let a = &g["attributes"];
        assert_eq!(a["api"], "responses", "{g:#}");
        assert_eq!(a["stream"], streamed);
        assert!(
            a["response_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("resp_")),
            "the server's response id: {g:#}"
        );
        let (input, output) = real_usage(&a["usage"], "generation");
        assert!(output <= 24, "max_output_tokens caps the reply: {output}");
        assert_ne!(
            a["usage_estimated"],
            json!(true),
            "the Responses API reports usage, streamed or not: {g:#}"
        );
        assert_eq!(trace["usage"], usage(input, output));
        assert!(
            !a["output"].as_str().unwrap_or_default().trim().is_empty(),
            "{g:#}"
        );
        if streamed {
            let ttft = a["time_to_first_token_ms"].as_f64().unwrap_or(0.0);
            assert!(ttft > 0.0, "time to first token: {g:#}");
            assert!(ttft <= g["duration_ms"].as_f64().unwrap());
        } else {
            assert!(a.get("time_to_first_token_ms").is_none(), "{g:#}");
        }
    }
}

#[test]
fn real_responses_session_sends_the_history_as_input_items_the_server_accepts() {
    let Some((url, key)) = responses_server() else {
        return;
    };
    let env = responses_env(&url, &key).workflow(
        "chat.yaml",
        &short_workflow(", stream: false", "    session: s1"),
    );
    let mut ids = Vec::new();
    for q in ["Name a sea.", "Name another one."] {
        let (out, lines) = real_run_json(&env, "chat.yaml", &["--var", &format!("q={q}")]);
        assert_exit(&out, 0);
        ids.push(lines[0]["trace_id"].as_str().unwrap().to_string());
    }
    let trace = env.show_json(&ids[1]);
    assert_eq!(trace["status"], "ok");
    let g = of_kind(&trace, "generation")[0];
    let roles: Vec<&str> = g["attributes"]["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "user"],
        "the second run sent the first exchange again, statelessly: {g:#}"
    );
    let (input, _) = real_usage(&g["attributes"]["usage"], "generation");
    let first = env.show_json(&ids[0]);
    let (first_input, _) = real_usage(
        &of_kind(&first, "generation")[0]["attributes"]["usage"],
        "first generation",
    );
    assert!(
        input > first_input,
        "the server read the longer conversation: {input} <= {first_input}"
    );
}
