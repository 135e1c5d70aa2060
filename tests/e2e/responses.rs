//! `api: responses`: agent steps on the OpenAI Responses API (`POST /v1/responses`, stateless,
//! `store: false`), against the fake server speaking its wire format: the agent loop with tools,
//! handoffs and structured output, streaming, reasoning summaries and usage on the generation
//! span, retries, replay and sessions; and the validation of `api:` and `reasoning:`.

use serde_json::{Value, json};

use crate::replay::generations;
use crate::support::*;
use crate::traces::{error_message, events_named, find, run_json, usage};
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

/// A clerk that may call `lookup` (a real process) and hand off to `billing`, on the Responses
/// API; `PROVIDER` is replaced by extra provider keys.
const SHOP: &str = r#"
name: Responses shop
model: gpt-5-mini
provider: { api: responses PROVIDER }
tools:
  lookup:
    description: Look up the stock of a SKU
    parameters:
      type: object
      properties: { sku: { type: string } }
      required: [sku]
    command: ["./lookup.sh"]
agents:
  clerk:
    instructions: You check stock.
    tools: [lookup]
    handoffs: [billing]
    reasoning: { effort: low, summary: auto }
  billing:
    instructions: You handle invoices.
    handoff_description: Invoices and refunds.
steps:
  - id: ask
    agent: clerk
    input: Is SKU-1 in stock?
"#;

fn shop(provider: &str) -> TestEnv {
    TestEnv::with_fake()
        .workflow("shop.yaml", &SHOP.replace(" PROVIDER", provider))
        .script(
            "lookup.sh",
            "#!/bin/sh\nargs=$(cat)\nprintf 'stock of %s: 4\\n' \"$args\"\n",
        )
}

#[test]
fn the_agent_loop_calls_a_tool_over_the_responses_api_statelessly() {
    for streamed in [true, false] {
        let env = shop(if streamed { "" } else { ", stream: false" });
        env.server().push_all([
            Reply::tool_call("lookup", json!({"sku": "SKU-1"})),
            Reply::text("SKU-1: 4 in stock.", 20, 6),
        ]);
        let (out, lines) = run_json(&env, "shop.yaml", &[]);
        assert_exit(&out, 0);
        assert_eq!(lines[0]["outputs"]["ask"], "SKU-1: 4 in stock.");

        let requests = env.server().requests();
        assert_eq!(requests.len(), 2);
        let first = &requests[0];
        assert_eq!(first.path, "/v1/responses");
        assert_eq!(first.body["store"], false, "stateless");
        assert!(first.body.get("previous_response_id").is_none());
        assert!(first.body.get("messages").is_none());
        assert_eq!(first.body["instructions"], "You check stock.");
        assert_eq!(
            first.body["input"],
            json!([{"type": "message", "role": "user", "content": "Is SKU-1 in stock?"}])
        );
        assert_eq!(
            first.body["tools"],
            json!([
                {"type": "function", "name": "lookup", "description": "Look up the stock of a SKU",
                 "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
                 "strict": false},
                {"type": "function", "name": "transfer_to_billing",
                 "description": "Handoff to the billing agent to handle the request. Invoices and refunds.",
                 "parameters": {"type": "object", "properties": {}, "additionalProperties": false},
                 "strict": false}
            ])
        );
        assert_eq!(
            first.body["reasoning"],
            json!({"effort": "low", "summary": "auto"})
        );
        assert_eq!(first.is_stream(), streamed);
        // The second call carries the whole conversation again: the call and its result.
        let call_id = "call_1";
        assert_eq!(
            requests[1].input(),
            [
                json!({"type": "message", "role": "user", "content": "Is SKU-1 in stock?"}),
                json!({"type": "function_call", "call_id": call_id, "name": "lookup", "arguments": "{\"sku\":\"SKU-1\"}"}),
                json!({"type": "function_call_output", "call_id": call_id, "output": "stock of {\"sku\":\"SKU-1\"}: 4"}),
            ]
        );

        let trace = env.show_json("last");
        let g = generations(&trace);
        assert_eq!(g.len(), 2);
        for span in &g {
            assert_eq!(span["attributes"]["api"], "responses", "{span:#}");
            assert_eq!(span["attributes"]["stream"], streamed);
            assert_eq!(span["attributes"]["response_id"], "resp_fake0001");
            assert_eq!(span["attributes"]["cached_input_tokens"], 2);
        }
        let calls = &g[0]["attributes"];
        assert_eq!(calls["tool_calls"][0]["id"], call_id);
        assert_eq!(calls["tool_calls"][0]["name"], "lookup");
        assert_eq!(calls["finish_reason"], "tool_calls");
        assert_eq!(calls["usage"], usage(TOOL_CALL_USAGE.0, TOOL_CALL_USAGE.1));
        let answer = &g[1]["attributes"];
        assert_eq!(answer["output"], "SKU-1: 4 in stock.");
        assert_eq!(answer["finish_reason"], "stop");
        assert_eq!(answer["usage"], usage(20, 6));
        assert_eq!(answer["reasoning_tokens"], 4);
        assert_eq!(
            answer["reasoning_summary"],
            "Thinking about: Is SKU-1 in stock?"
        );
        assert_eq!(
            answer["model_config"]["reasoning"],
            json!({"effort": "low", "summary": "auto"})
        );
        assert_eq!(
            answer["time_to_first_token_ms"].is_number(),
            streamed,
            "time to first token only when streamed: {answer:#}"
        );
        assert_eq!(
            function_span_output(&trace),
            "stock of {\"sku\":\"SKU-1\"}: 4"
        );
        assert_eq!(
            trace["usage"],
            usage(TOOL_CALL_USAGE.0 + 20, TOOL_CALL_USAGE.1 + 6)
        );
    }
}

fn function_span_output(trace: &Value) -> String {
    find(trace, "function", "lookup")["attributes"]["output"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_streamed_answer_reaches_the_terminal_as_it_arrives_and_times_the_first_token() {
    let env = shop("");
    env.server()
        .push(Reply::text("SKU-1 is in stock, four units.", 9, 8));
    let out = env.run(&["run", "shop.yaml", "--stream"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("SKU-1 is in stock, four units."),
        "{}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    let g = &generations(&trace)[0]["attributes"];
    let ttft = g["time_to_first_token_ms"]
        .as_f64()
        .expect("time to first token");
    // The fake sends the created, in-progress, reasoning and message-opening events 15 ms
    // apart before the first text delta.
    assert!(ttft >= 15.0, "{ttft}");
    assert_eq!(g["output"], "SKU-1 is in stock, four units.");
    assert_eq!(g["reasoning_summary"], "Thinking about: Is SKU-1 in stock?");
    assert_eq!(env.server().requests()[0].path, "/v1/responses");
    assert_eq!(g["usage"], usage(9, 8));
    let shown = stdout(&env.run(&["show", "last", "--content"]));
    assert!(
        shown.contains("reason Thinking about: Is SKU-1 in stock?"),
        "show --content shows the summary: {shown}"
    );
    assert!(g.get("usage_estimated").is_none());
}

#[test]
fn no_content_leaves_the_reasoning_summary_out() {
    let env = shop("");
    env.server().push(Reply::text("Yes.", 9, 8));
    assert_exit(&env.run(&["run", "shop.yaml", "--no-content"]), 0);
    let trace = env.show_json("last");
    let g = &generations(&trace)[0]["attributes"];
    assert!(g.get("reasoning_summary").is_none(), "{g:#}");
    assert!(g.get("output").is_none());
    assert_eq!(g["api"], "responses");
    assert_eq!(g["reasoning_tokens"], 4, "counts are not content");
}

#[test]
fn a_handoff_continues_the_conversation_on_the_responses_api() {
    let env = shop("");
    env.server().push_all([
        Reply::tool_call("transfer_to_billing", json!({})),
        Reply::text("Your refund is on its way.", 30, 7),
    ]);
    let (out, lines) = run_json(&env, "shop.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["ask"], "Your refund is on its way.");
    let requests = env.server().requests();
    assert_eq!(requests.len(), 2);
    let billing = &requests[1];
    assert_eq!(billing.path, "/v1/responses");
    assert_eq!(billing.body["instructions"], "You handle invoices.");
    assert_eq!(
        billing.input(),
        [
            json!({"type": "message", "role": "user", "content": "Is SKU-1 in stock?"}),
            json!({"type": "function_call", "call_id": "call_1", "name": "transfer_to_billing", "arguments": "{}"}),
            json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"assistant\":\"billing\"}"}),
        ]
    );
    // billing has no `reasoning:`: none is sent for it.
    assert!(billing.body.get("reasoning").is_none());
    let trace = env.show_json("last");
    assert_eq!(find(&trace, "handoff", "clerk -> billing")["status"], "ok");
    let agent = find(&trace, "agent", "billing");
    assert_eq!(agent["attributes"]["handoff_from"], "clerk");
}

const STRUCTURED: &str = r#"
name: Structured
model: gpt-5-mini
provider: { api: responses }
agents:
  grader:
    instructions: Grade the answer.
    output_schema:
      type: object
      properties: { grade: { type: integer } }
      required: [grade]
      additionalProperties: false
steps:
  - id: grade
    agent: grader
    input: "2 + 2 = 4"
"#;

#[test]
fn structured_output_goes_as_text_format_json_schema_and_comes_back_as_data() {
    let env = TestEnv::with_fake().workflow("grade.yaml", STRUCTURED);
    env.server().push(Reply::text("{\"grade\": 5}", 12, 4));
    let (out, lines) = run_json(&env, "grade.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["grade"], json!({"grade": 5}));
    let request = &env.server().requests()[0];
    assert_eq!(
        request.body["text"],
        json!({"format": {"type": "json_schema", "name": "grader_output", "strict": true, "schema": {
            "type": "object", "properties": {"grade": {"type": "integer"}},
            "required": ["grade"], "additionalProperties": false
        }}})
    );
    assert!(request.body.get("response_format").is_none());
    // No `reasoning:` on the agent: no summary asked, none recorded.
    let trace = env.show_json("last");
    assert!(
        generations(&trace)[0]["attributes"]
            .get("reasoning_summary")
            .is_none()
    );
}

#[test]
fn a_429_is_retried_and_a_400_is_not_on_the_responses_api() {
    let flaky = |reply: Reply| {
        let env = TestEnv::with_fake().workflow(
            "grade.yaml",
            &STRUCTURED.replace(
                "grader:\n",
                "grader:\n    retry: { attempts: 3, backoff: 10ms }\n",
            ),
        );
        env.server()
            .push(reply)
            .push(Reply::text("{\"grade\": 3}", 12, 4));
        env
    };
    let env = flaky(Reply::rate_limited(0));
    let (out, lines) = run_json(&env, "grade.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["grade"], json!({"grade": 3}));
    assert_eq!(env.server().request_count(), 2);
    assert!(
        env.server()
            .requests()
            .iter()
            .all(|r| r.path == "/v1/responses"),
        "both attempts go to the Responses API"
    );
    let trace = env.show_json("last");
    let g = generations(&trace)[0];
    assert_eq!(events_named(g, "retry")[0]["attributes"]["status"], 429);

    let env = flaky(Reply::bad_request());
    let out = env.run(&["run", "grade.yaml"]);
    assert_exit(&out, 1);
    assert_eq!(env.server().request_count(), 1, "a 400 is final");
    let trace = env.show_json("last");
    let g = generations(&trace)[0];
    assert_eq!(g["status"], "error");
    assert!(error_message(g).contains("HTTP 400"), "{g:#}");
}

#[test]
fn a_stream_that_breaks_off_is_retried() {
    let env = TestEnv::with_fake().workflow(
        "grade.yaml",
        &STRUCTURED.replace(
            "grader:\n",
            "grader:\n    retry: { attempts: 2, backoff: 10ms }\n",
        ),
    );
    env.server()
        .push(Reply::CutStream)
        .push(Reply::text("{\"grade\": 1}", 12, 4));
    let (out, lines) = run_json(&env, "grade.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["grade"], json!({"grade": 1}));
    let paths: Vec<String> = env
        .server()
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/responses", "/v1/responses"]);
    let trace = env.show_json("last");
    let retry = &events_named(generations(&trace)[0], "retry")[0]["attributes"];
    assert!(
        retry["error"]
            .as_str()
            .is_some_and(|e| e.contains("stream ended")),
        "{retry:#}"
    );
}

#[test]
fn a_responses_trace_replays_without_a_server() {
    let env = shop("");
    env.server().push_all([
        Reply::tool_call("lookup", json!({"sku": "SKU-1"})),
        Reply::text("SKU-1: 4 in stock.", 20, 6),
    ]);
    let (out, recorded) = run_json(&env, "shop.yaml", &[]);
    assert_exit(&out, 0);
    let id = recorded[0]["trace_id"].as_str().unwrap().to_string();
    let refused = refused_url();
    let out = env.run_with(
        &["run", "shop.yaml", "--replay", &id, "--format", "json"],
        |c| {
            c.env("OPENAI_BASE_URL", &refused)
                .env_remove("OPENAI_API_KEY");
        },
    );
    assert_exit(&out, 0);
    assert_eq!(
        env.server().request_count(),
        2,
        "no request reached the fake"
    );
    let replayed = &parse_json_lines(&out.stdout)[0];
    assert_eq!(replayed["outputs"], recorded[0]["outputs"]);
    assert_eq!(replayed["usage"], recorded[0]["usage"]);
    let (original, again) = (env.show_json(&id), env.show_json("last"));
    let (a, b) = (generations(&original), generations(&again));
    assert_eq!(b.len(), 2);
    assert_eq!(
        a[1]["attributes"]["reasoning_summary"], "Thinking about: Is SKU-1 in stock?",
        "recorded from the Responses API"
    );
    for (a, b) in a.iter().zip(&b) {
        for key in [
            "api",
            "input",
            "output",
            "tool_calls",
            "reasoning_summary",
            "reasoning_tokens",
            "cached_input_tokens",
            "response_id",
        ] {
            assert_eq!(a["attributes"][key], b["attributes"][key], "{key}");
        }
        assert_eq!(b["attributes"]["replayed"], true);
    }
    assert_eq!(b[1]["attributes"]["api"], "responses");
}

#[test]
fn a_session_continues_over_the_responses_api() {
    let yaml = "name: Chat\nvars: { q: Hello }\nmodel: gpt-5-mini\nprovider: { api: responses }\nagents:\n  support: { instructions: You support. }\nsteps:\n  - id: answer\n    agent: support\n    session: s1\n    input: \"{{ vars.q }}\"\n";
    let env = TestEnv::with_fake().workflow("chat.yaml", yaml);
    env.server().push_all([
        Reply::text("It ships tomorrow.", 5, 4),
        Reply::text("Done, it is expedited.", 5, 4),
    ]);
    for q in ["Where is my order?", "Can you expedite it?"] {
        let out = env.run(&["run", "chat.yaml", "--var", &format!("q={q}")]);
        assert_exit(&out, 0);
    }
    let second = &env.server().requests()[1];
    assert_eq!(second.body["instructions"], "You support.");
    assert_eq!(
        second.input(),
        [
            json!({"type": "message", "role": "user", "content": "Where is my order?"}),
            json!({"type": "message", "role": "assistant", "content": "It ships tomorrow."}),
            json!({"type": "message", "role": "user", "content": "Can you expedite it?"}),
        ],
        "the second process sends the session's history as input items"
    );
    assert_eq!(second.body["store"], false);
}

#[test]
fn chat_stays_the_default_and_every_generation_says_its_api() {
    let env = TestEnv::with_fake().workflow(
        "chat.yaml",
        "name: Chat\nmodel: m\nagents:\n  a: { reasoning: { effort: high } }\nsteps:\n  - { agent: a, input: hi }\n",
    );
    assert_exit(&env.run(&["run", "chat.yaml"]), 0);
    let request = &env.server().requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.body["reasoning_effort"], "high");
    let trace = env.show_json("last");
    assert_eq!(generations(&trace)[0]["attributes"]["api"], "chat");
    // Offline, nothing is sent anywhere; the span still says which API the agent is set for.
    let out = env.run(&["run", "chat.yaml", "--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let g = &generations(&trace)[0]["attributes"];
    assert_eq!(
        (g["api"].as_str(), g["offline"].as_bool()),
        (Some("chat"), Some(true))
    );
    assert_eq!(env.server().request_count(), 1);
}

#[test]
fn a_server_without_the_responses_api_is_a_clear_error_not_retried() {
    // What llama-cpp-python's server (ci/llama-server.sh) answers to POST /v1/responses.
    let env = TestEnv::with_fake().workflow(
        "grade.yaml",
        &STRUCTURED.replace(
            "grader:\n",
            "grader:\n    retry: { attempts: 3, backoff: 10ms }\n",
        ),
    );
    env.server()
        .set_default(Reply::Status(404, r#"{"detail":"Not Found"}"#.into()));
    let out = env.run(&["run", "grade.yaml"]);
    assert_exit(&out, 1);
    assert_eq!(env.server().request_count(), 1, "a 404 is final");
    let trace = env.show_json("last");
    let message = error_message(generations(&trace)[0]);
    assert!(
        message.contains("HTTP 404")
            && message.contains("Not Found")
            && message.contains("may not implement the Responses API")
            && message.contains("`api: chat`"),
        "{message}"
    );
}
