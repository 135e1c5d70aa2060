//! `api: responses`: agent steps on the OpenAI Responses API (`POST /v1/responses`, stateless,
//! `store: false`), against the fake server speaking its wire format: the agent loop with tools,
//! handoffs and structured output, streaming, reasoning summaries and usage on the generation
//! span, retries, replay and sessions; and the validation of `api:` and `reasoning:`.

use crate::support::*;
use crate::validation::{assert_diagnostic, pos};

#[test]
fn an_unknown_api_or_reasoning_value_is_a_validation_error_at_its_place() {
    let yaml = "name: Bad\nmodel: m\nprovider: { api: respons }\nagents:\n  a:\n    reasoning: { effort: extreme, summary: auto }\nsteps:\n  - { agent: a, input: hi }\n";
    let env = TestEnv::new().workflow("bad.yaml", yaml);
    let out = env.run(&["validate", "bad.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    let (line, col) = pos(yaml, "respons", 0);
    assert_diagnostic(
        &err,
        "bad.yaml",
        line,
        &[col],
        &[
            "`api` must be one of `chat`, `responses`",
            "did you mean `responses`",
        ],
    );
    let (line, col) = pos(yaml, "extreme", 0);
    assert_diagnostic(
        &err,
        "bad.yaml",
        line,
        &[col],
        &["reasoning.effort", "`low`, `medium`, `high`"],
    );
    let out = env.run(&["run", "bad.yaml", "--offline"]);
    assert_exit(&out, 2);
    assert!(!env.store_exists(), "run on an invalid file writes nothing");
}

#[test]
fn a_reasoning_summary_on_chat_completions_is_a_validation_error() {
    let yaml = "name: Bad\nmodel: m\nagents:\n  a:\n    reasoning: { effort: low, summary: concise }\nsteps:\n  - { agent: a, input: hi }\n";
    let env = TestEnv::new().workflow("bad.yaml", yaml);
    let out = env.run(&["validate", "bad.yaml"]);
    assert_exit(&out, 2);
    let (line, col) = pos(yaml, "concise", 0);
    assert_diagnostic(
        &stderr(&out),
        "bad.yaml",
        line,
        &[col],
        &["reasoning summary", "only the responses api", "api: chat"],
    );
    let fixed = yaml.replace("model: m\n", "model: m\nprovider: { api: responses }\n");
    let env = TestEnv::new().workflow("ok.yaml", &fixed);
    assert_exit(&env.run(&["validate", "ok.yaml"]), 0);
}
