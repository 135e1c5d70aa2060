//! Agents that act: tools, handoffs, structured output, streaming and sessions.

use std::path::Path;

use serde_json::{Value, json};

use crate::examples::examples;
use crate::failures::{AGENT_IN_SPAN, assert_model_failure};
use crate::support::*;
use crate::traces::*;

/// The `tool` messages of the messages a generation span recorded as its input.
fn tool_messages(generation: &Value) -> Vec<&Value> {
    generation["attributes"]["input"]
        .as_array()
        .unwrap_or_else(|| panic!("generation has no input messages: {generation:#}"))
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect()
}

/// A workflow in `flows/` (so that its directory is not the working directory) whose `clerk`
/// may call the tools of `flows/tools/`.
const TOOLS: &str = r#"
name: Tools
vars: { warehouse: WH-7 }
model: gpt-4o-mini
tools:
  lookup:
    description: Look up the stock of a SKU
    parameters:
      type: object
      properties: { sku: { type: string }, qty: { type: integer } }
      required: [sku]
      additionalProperties: false
    command: ["./tools/lookup.sh", "{{ vars.warehouse }}"]
  broken:
    description: A tool that fails
    command: ["./tools/broken.sh"]
  first:
    description: Meets `second`, then lingers
    command: ["./tools/meet.sh", "first", "second", "0.3"]
  second:
    description: Meets `first`
    command: ["./tools/meet.sh", "second", "first", "0"]
agents:
  clerk:
    instructions: You check stock.
    tools: [lookup, broken, first, second]
    max_turns: 3
steps:
  - span: Desk
    steps:
      - id: ask
        agent: clerk
        input: Is SKU-1 in stock?
"#;

/// `lookup` answers `ARGV|CWD|STDIN` and logs each run; `broken` fails with exit 3; `meet.sh ME
/// OTHER LINGER` says whether it saw OTHER running at the same time (waiting up to 10 s for it).
fn tools_env() -> TestEnv {
    TestEnv::with_fake()
        .workflow("flows/tools.yaml", TOOLS)
        .script(
            "flows/tools/lookup.sh",
            "#!/bin/sh\nargs=$(cat)\necho run >> calls.log\nprintf '%s|%s|%s\\n' \"$1\" \"$(pwd)\" \"$args\"\n",
        )
        .script(
            "flows/tools/broken.sh",
            "#!/bin/sh\ncat >/dev/null\necho 'database unavailable' >&2\nexit 3\n",
        )
        .script(
            "flows/tools/meet.sh",
            r#"#!/bin/sh
cat >/dev/null
mkdir -p marks
touch "marks/$1"
i=0
while [ ! -e "marks/$2" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sleep "$3"
if [ -e "marks/$2" ]; then echo "$1 saw $2 running"; else echo "$1 ran alone"; fi
"#,
        )
}

#[test]
fn a_tool_call_loop_runs_the_tool_and_sends_its_result_back_to_the_model() {
    let env = tools_env();
    env.server().push_all([
        Reply::tool_call("lookup", json!({"sku": "SKU-1", "qty": 2})),
        Reply::text("SKU-1 is in stock.", 20, 6),
    ]);
    let (out, lines) = run_json(&env, "flows/tools.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["ask"], "SKU-1 is in stock.");

    // The model was offered the tool with its schema, and got the result back.
    let requests = env.server().requests();
    assert_eq!(requests.len(), 2, "tool call, then the answer");
    let offered = requests[0].tool("lookup").expect("lookup is offered");
    assert_eq!(offered["type"], "function");
    assert_eq!(
        offered["function"]["description"],
        "Look up the stock of a SKU"
    );
    assert_eq!(
        offered["function"]["parameters"],
        json!({"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
               "required": ["sku"], "additionalProperties": false})
    );
    let sent = requests[1].raw_messages();
    let roles: Vec<&str> = sent.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    let call = &sent[2]["tool_calls"][0];
    let call_id = call["id"].as_str().unwrap();
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(sent[3]["tool_call_id"], call_id);

    // The tool ran in the workflow's directory with the templated argv and the JSON on stdin.
    let result = sent[3]["content"].as_str().unwrap();
    let parts: Vec<&str> = result.splitn(3, '|').collect();
    assert_eq!(parts[0], "WH-7", "argv is templated: {result}");
    assert_eq!(
        Path::new(parts[1]).canonicalize().unwrap(),
        env.path().join("flows").canonicalize().unwrap(),
        "tools run in the workflow file's directory"
    );
    assert_eq!(
        serde_json::from_str::<Value>(parts[2]).unwrap(),
        json!({"sku": "SKU-1", "qty": 2}),
        "the arguments arrive as JSON on stdin, and one trailing newline is removed"
    );

    // agent → generation (tool_calls), function, generation (answer)
    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "clerk");
    assert_eq!(parent(&trace, agent).unwrap()["name"], "Desk");
    assert_eq!(
        child_outline(&trace, agent),
        [
            "generation gpt-4o-mini ok",
            "function lookup ok",
            "generation gpt-4o-mini ok"
        ]
    );
    assert_eq!(agent["attributes"]["step_id"], "ask");
    assert_eq!(agent["attributes"]["agent"], "clerk");
    assert_eq!(agent["attributes"]["model"], "gpt-4o-mini");
    assert_eq!(
        agent["attributes"]["tools"],
        json!(["lookup", "broken", "first", "second"])
    );
    let (p, c) = TOOL_CALL_USAGE;
    assert_eq!(
        agent["attributes"]["usage"],
        usage(p + 20, c + 6),
        "the sum of its generations"
    );
    assert_eq!(trace["usage"], usage(p + 20, c + 6));

    let kids = children(&trace, agent);
    let (calling, function, answering) = (kids[0], kids[1], kids[2]);
    assert_eq!(
        calling["attributes"]["tool_calls"],
        json!([{"id": call_id, "name": "lookup", "arguments": call["function"]["arguments"]}])
    );
    assert_eq!(calling["attributes"]["usage"], usage(p, c));
    assert_eq!(function["attributes"]["tool"], "lookup");
    assert_eq!(function["attributes"]["call_id"], call_id);
    assert_eq!(
        function["attributes"]["input"],
        call["function"]["arguments"]
    );
    assert_eq!(function["attributes"]["output"], result);
    assert_eq!(function["attributes"]["exit_code"], 0);
    assert_eq!(answering["attributes"]["output"], "SKU-1 is in stock.");
    // The second request is recorded in the wire shape: tool calls and tool call ids.
    let recorded = answering["attributes"]["input"].as_array().unwrap();
    assert_eq!(recorded[2]["tool_calls"][0]["id"], call_id);
    assert_eq!(recorded[2]["tool_calls"][0]["function"]["name"], "lookup");
    assert_eq!(recorded[3]["tool_call_id"], call_id);
    assert_eq!(recorded[3]["content"], result);
}

#[test]
fn two_tool_calls_in_one_turn_run_concurrently_and_answer_in_call_order() {
    let env = tools_env();
    env.server().push_all([
        Reply::tool_calls(&[("first", json!({})), ("second", json!({}))]),
        Reply::text("Both done.", 5, 2),
    ]);
    let out = env.run(&["run", "flows/tools.yaml"]);
    assert_exit(&out, 0);

    let requests = env.server().requests();
    let calls = requests[1].raw_messages()[2]["tool_calls"].clone();
    let ids = [
        calls[0]["id"].as_str().unwrap(),
        calls[1]["id"].as_str().unwrap(),
    ];
    // `first` lingers after meeting `second`, so it ends last, yet its result comes first.
    assert_eq!(
        requests[1].tool_results(),
        [
            (ids[0].to_string(), "first saw second running".to_string()),
            (ids[1].to_string(), "second saw first running".to_string()),
        ],
        "each tool saw the other running (they overlapped), results in call order"
    );
    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "clerk");
    assert_eq!(
        child_outline(&trace, agent),
        [
            "generation gpt-4o-mini ok",
            "function first ok",
            "function second ok",
            "generation gpt-4o-mini ok"
        ]
    );
}

#[test]
fn a_failing_tool_is_an_error_result_for_the_model_and_the_step_goes_on() {
    let env = tools_env();
    env.server().push_all([
        Reply::tool_call("broken", json!({})),
        Reply::text("Sorry, the stock system is down.", 5, 2),
    ]);
    let (out, lines) = run_json(&env, "flows/tools.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(
        lines[0]["outputs"]["ask"],
        "Sorry, the stock system is down."
    );

    let results = env.server().requests()[1].tool_results();
    assert_eq!(results.len(), 1);
    assert!(results[0].1.starts_with("Error:"), "{results:?}");

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "ok", "the model decided; the step went on");
    assert_eq!(find(&trace, "agent", "clerk")["status"], "ok");
    let function = find(&trace, "function", "broken");
    assert_eq!(function["status"], "error");
    assert_eq!(function["attributes"]["exit_code"], 3);
    let message = function["error"]["message"].as_str().unwrap();
    assert!(
        message.contains('3'),
        "the message names the exit status: {message}"
    );
    assert_eq!(function["attributes"]["output"], results[0].1.as_str());
}

#[test]
fn arguments_that_do_not_match_the_schema_are_rejected_without_running_the_tool() {
    let env = tools_env();
    env.server().push_all([
        Reply::tool_call("lookup", json!({"qty": "two"})),
        Reply::ToolCalls(vec![("lookup".to_string(), "{not json".to_string())]),
        Reply::text("I could not look it up.", 5, 2),
    ]);
    let out = env.run(&["run", "flows/tools.yaml"]);
    assert_exit(&out, 0);

    assert!(
        !env.path().join("flows/calls.log").exists(),
        "the tool never ran"
    );
    let requests = env.server().requests();
    for (request, n) in [(&requests[1], 1), (&requests[2], 2)] {
        let results = request.tool_results();
        assert_eq!(results.len(), n);
        let content = &results[n - 1].1;
        assert!(
            content.starts_with("Error: invalid arguments for tool"),
            "the model is told: {content}"
        );
    }
    let trace = env.show_json("last");
    let functions = of_kind(&trace, "function");
    assert_eq!(functions.len(), 2);
    for function in functions {
        assert_eq!(function["status"], "error");
        let message = function["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid arguments for tool"),
            "{message}"
        );
        assert!(
            function["attributes"].get("exit_code").is_none(),
            "{function:#}"
        );
    }
}

#[test]
fn an_unknown_tool_is_an_error_result_too() {
    let env = tools_env();
    env.server().push_all([
        Reply::tool_call("teleport", json!({"to": "Mars"})),
        Reply::text("I cannot do that.", 5, 2),
    ]);
    let out = env.run(&["run", "flows/tools.yaml"]);
    assert_exit(&out, 0);
    let results = env.server().requests()[1].tool_results();
    assert!(
        results[0].1.starts_with("Error:") && results[0].1.contains("teleport"),
        "{results:?}"
    );
    let trace = env.show_json("last");
    let function = find(&trace, "function", "teleport");
    assert_eq!(function["status"], "error");
    let message = function["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown tool `teleport`"), "{message}");
}

#[test]
fn more_model_calls_than_max_turns_fail_the_step() {
    let env = tools_env();
    env.server()
        .set_default(Reply::tool_call("lookup", json!({"sku": "SKU-1"})));
    let (out, lines) = run_json(&env, "flows/tools.yaml", &[]);
    assert_exit(&out, 1);
    assert_eq!(lines[0]["status"], "error");
    assert_eq!(
        env.server().requests().len(),
        3,
        "max_turns: 3 model calls, no more"
    );

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let agent = find(&trace, "agent", "clerk");
    assert_eq!(agent["status"], "error");
    assert_eq!(find(&trace, "custom", "Desk")["status"], "error");
    let message = agent["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_turns"), "{message}");
    assert_eq!(of_kind(&trace, "generation").len(), 3);
}

const HANDOFF: &str = r#"
name: Handoff
model: gpt-4o-mini
tools:
  refund:
    description: Refund a charge
    command: ["echo", "refunded"]
agents:
  triage:
    instructions: TRIAGE routes customers.
    handoffs: [billing]
  billing:
    instructions: BILLING handles charges.
    handoff_description: Charges, refunds and invoices
    tools: [refund]
steps:
  - span: Conversation
    steps:
      - id: help
        agent: triage
        input: I was charged twice.
  - id: after
    run: ["echo", "answer: {{ steps.help.output }}"]
"#;

#[test]
fn a_handoff_continues_the_conversation_with_the_target_agent() {
    let env = TestEnv::with_fake().workflow("handoff.yaml", HANDOFF);
    env.server().push_all([
        Reply::tool_call("transfer_to_billing", json!({})),
        Reply::text("Refund issued.", 8, 3),
    ]);
    let (out, lines) = run_json(&env, "handoff.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(
        lines[0]["outputs"]["help"], "Refund issued.",
        "the last agent's answer"
    );
    assert_eq!(lines[0]["outputs"]["after"], "answer: Refund issued.");

    let requests = env.server().requests();
    assert_eq!(requests.len(), 2);
    let transfer = requests[0]
        .tool("transfer_to_billing")
        .expect("the handoff is offered as a tool");
    assert!(
        transfer["function"]["description"]
            .as_str()
            .unwrap_or_default()
            .contains("Charges, refunds and invoices"),
        "the handoff description is told to the model: {transfer:#}"
    );
    assert!(!requests[0].tool_names().contains(&"refund".to_string()));
    // billing's request: its own instructions and tools, the conversation so far.
    assert_eq!(requests[1].tool_names(), ["refund"]);
    let sent = requests[1].raw_messages();
    let roles: Vec<&str> = sent.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool"]);
    assert_eq!(sent[0]["content"], "BILLING handles charges.");
    assert_eq!(sent[1]["content"], "I was charged twice.");
    assert_eq!(
        sent[2]["tool_calls"][0]["function"]["name"],
        "transfer_to_billing"
    );
    assert_eq!(sent[3]["tool_call_id"], sent[2]["tool_calls"][0]["id"]);

    let trace = env.show_json("last");
    let conversation = find(&trace, "custom", "Conversation");
    assert_eq!(
        child_outline(&trace, conversation),
        ["agent triage ok", "agent billing ok"],
        "the target agent's span is a sibling of the first"
    );
    let triage = find(&trace, "agent", "triage");
    assert_eq!(
        triage["attributes"]["tools"],
        json!(["transfer_to_billing"])
    );
    assert_eq!(
        child_outline(&trace, triage),
        ["generation gpt-4o-mini ok", "handoff triage -> billing ok"]
    );
    let handoff = find(&trace, "handoff", "triage -> billing");
    assert_eq!(handoff["attributes"]["from_agent"], "triage");
    assert_eq!(handoff["attributes"]["to_agent"], "billing");
    let billing = find(&trace, "agent", "billing");
    assert_eq!(
        child_outline(&trace, billing),
        ["generation gpt-4o-mini ok"]
    );
    assert_eq!(billing["attributes"]["output"], "Refund issued.");
}

#[test]
fn offline_mock_turns_play_tool_calls_and_handoffs_in_order() {
    let yaml = HANDOFF.replace(
        "        input: I was charged twice.\n",
        "        input: I was charged twice.\n        mock:\n          - handoff: billing\n          - tool_calls: [{ name: refund, arguments: {} }]\n",
    );
    let env = TestEnv::with_fake().workflow("handoff.yaml", &yaml);
    let (out, lines) = run_json(&env, "handoff.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert!(env.server().requests().is_empty());
    let answer = lines[0]["outputs"]["help"].as_str().unwrap();
    assert!(!answer.is_empty(), "after the script, the default text");
    let trace = env.show_json("last");
    assert_eq!(
        outline(&trace),
        [
            "custom Conversation ok",
            "  agent triage ok",
            "    generation gpt-4o-mini ok",
            "    handoff triage -> billing ok",
            "  agent billing ok",
            "    generation gpt-4o-mini ok",
            "    function refund ok",
            "    generation gpt-4o-mini ok",
            "command ok",
        ]
    );
    assert_eq!(
        find(&trace, "function", "refund")["attributes"]["output"],
        "refunded"
    );
}

const STRUCTURED: &str = r#"
name: Structured
model: gpt-4o-mini
agents:
  summarizer:
    instructions: Summarize.
    output_schema:
      type: object
      properties:
        title: { type: string }
        key_points: { type: array, items: { type: string } }
        confidence: { type: number }
      required: [title, key_points, confidence]
      additionalProperties: false
steps:
  - id: summary
    agent: summarizer
    input: Summarize the findings.
  - id: use
    run: ["echo", "{{ steps.summary.output.title }}|{{ steps.summary.output.key_points | length }}"]
"#;

#[test]
fn an_output_schema_is_requested_strictly_and_its_fields_are_data() {
    let env = TestEnv::with_fake().workflow("structured.yaml", STRUCTURED);
    env.server().push(Reply::text(
        r#"{"title": "Findings", "key_points": ["a", "b"], "confidence": 0.8}"#,
        9,
        9,
    ));
    let (out, lines) = run_json(&env, "structured.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["use"], "Findings|2");

    let format = &env.server().requests()[0].body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    assert!(
        format["json_schema"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{format:#}"
    );
    assert_eq!(
        format["json_schema"]["schema"],
        json!({"type": "object",
               "properties": {"title": {"type": "string"},
                              "key_points": {"type": "array", "items": {"type": "string"}},
                              "confidence": {"type": "number"}},
               "required": ["title", "key_points", "confidence"],
               "additionalProperties": false})
    );

    // Offline, with no mock, the answer is a minimal instance of the schema.
    let (out, lines) = run_json(&env, "structured.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert!(
        lines[0]["outputs"]["use"].as_str().unwrap().ends_with("|0"),
        "{:#}",
        lines[0]
    );
}

#[test]
fn an_answer_that_does_not_match_the_output_schema_fails_the_step() {
    let env = TestEnv::with_fake().workflow("structured.yaml", STRUCTURED);
    env.server()
        .set_default(Reply::text(r#"{"title": 5, "key_points": []}"#, 9, 9));
    let (out, lines) = run_json(&env, "structured.yaml", &[]);
    assert_exit(&out, 1);
    assert!(lines[0]["outputs"].get("use").is_none());
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let agent = find(&trace, "agent", "summarizer");
    assert_eq!(agent["status"], "error");
    let message = agent["error"]["message"].as_str().unwrap();
    assert!(message.contains("output_schema"), "{message}");
    assert!(ran(&trace, "command").is_empty(), "later steps do not run");
}

#[test]
fn raw_line_breaks_inside_json_strings_are_escaped_and_the_repair_is_an_event() {
    // llama-cpp-python's grammar for `response_format` allows raw control characters in strings;
    // small models then put a line break in a title. The data is kept, the repair is on record.
    let env = TestEnv::with_fake().workflow("structured.yaml", STRUCTURED);
    let raw = "{\"title\": \"Two\nlines\\t\\\"q\\\"\", \"key_points\": [\"a\\\\\", \"b\\u0001\tc\"], \"confidence\": 0.5}";
    env.server().push(Reply::text(raw, 9, 9));
    let (out, lines) = run_json(&env, "structured.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["use"], "Two\nlines\t\"q\"|2");

    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "summarizer");
    let output: Value = serde_json::from_str(agent["attributes"]["output"].as_str().unwrap())
        .expect("the agent's recorded output is strict JSON");
    assert_eq!(
        output,
        json!({"title": "Two\nlines\t\"q\"", "key_points": ["a\\", "b\u{1}\tc"], "confidence": 0.5})
    );
    let events: Vec<&str> = agent["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["output_repaired"], "{agent:#}");
    // The generation keeps what the model really said.
    let generation = &of_kind(&trace, "generation")[0];
    assert_eq!(generation["attributes"]["output"], raw);

    // Anything else that is not JSON still fails the step.
    env.server()
        .set_default(Reply::text("{\"title\": \"cut\noff", 9, 9));
    let (out, _) = run_json(&env, "structured.yaml", &[]);
    assert_exit(&out, 1);
    let agent = find(&env.show_json("last"), "agent", "summarizer").clone();
    let message = agent["error"]["message"].as_str().unwrap();
    assert!(message.contains("is not JSON"), "{message}");
}

const CHAT: &str = r#"
name: Chat
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - id: ask
    agent: helper
    input: Tell me something.
"#;

#[test]
fn model_calls_stream_by_default_with_usage_and_time_to_first_token() {
    let env = TestEnv::with_fake().workflow("chat.yaml", CHAT);
    let (out, lines) = run_json(&env, "chat.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["ask"], "echo: Tell me something.");
    let request = &env.server().requests()[0];
    assert!(
        request.is_stream() && request.wants_stream_usage(),
        "{:#}",
        request.body
    );

    let trace = env.show_json("last");
    let generation = of_kind(&trace, "generation")[0];
    let attrs = &generation["attributes"];
    assert_eq!(attrs["stream"], true);
    assert_eq!(attrs["usage"], usage(10, 5), "the usage chunk's numbers");
    assert!(
        attrs.get("usage_estimated").is_none_or(|v| v == false),
        "{attrs:#}"
    );
    assert_eq!(attrs["output"], "echo: Tell me something.");
    let ttft = attrs["time_to_first_token_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("time_to_first_token_ms: {attrs:#}"));
    assert!(
        ttft > 0.0 && ttft <= generation["duration_ms"].as_f64().unwrap(),
        "{generation:#}"
    );
    assert_eq!(trace["usage"], usage(10, 5));
}

#[test]
fn a_stream_without_usage_gets_estimated_usage() {
    let env = TestEnv::with_fake().workflow("chat.yaml", CHAT);
    env.server().push(Reply::NoUsageStream);
    let out = env.run(&["run", "chat.yaml"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let attrs = &of_kind(&trace, "generation")[0]["attributes"];
    assert_eq!(attrs["stream"], true);
    assert_eq!(attrs["usage_estimated"], true, "{attrs:#}");
    let estimated = &attrs["usage"];
    let (input, output) = (
        estimated["input_tokens"].as_u64().unwrap(),
        estimated["output_tokens"].as_u64().unwrap(),
    );
    assert!(input > 0 && output > 0, "{estimated}");
    assert_eq!(estimated["total_tokens"], input + output);
    assert_eq!(trace["usage"], *estimated);
}

/// A streamed call that breaks off fails its generation (the message says the stream ended
/// early), and the run leaves the trace behind like any model failure.
#[track_caller]
fn assert_stream_cut_fails(cut: Reply) {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(cut.clone());
    let trace = assert_model_failure(&env, "stream");
    let generation = of_kind(&trace, "generation")[0];
    let message = generation["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("ended"),
        "{cut:?}: the message says the stream ended early: {message}"
    );
    assert_eq!(generation["attributes"]["stream"], true, "{generation:#}");
}

#[test]
fn a_cut_stream_fails_the_generation_and_keeps_the_trace() {
    assert_stream_cut_fails(Reply::CutStream);
}

#[test]
fn a_stream_that_ends_before_its_finish_reason_fails_the_generation() {
    assert_stream_cut_fails(Reply::EndStreamEarly);
}

#[test]
fn a_stream_whose_body_stays_open_after_done_answers_all_the_same() {
    // The body is read past `[DONE]` to its end, so that its connection can be used again;
    // a server that never ends it is left after a moment, the answer kept.
    let yaml = "name: Two\nmodel: gpt-4o-mini\nagents: { a: { instructions: Be brief. } }\n\
                steps:\n  - { id: one, agent: a, input: First }\n  - { id: two, agent: a, input: Second }\n";
    let env = TestEnv::with_fake().workflow("two.yaml", yaml);
    env.server().set_default(Reply::LingerAfterDone);
    let (out, lines) = run_json(&env, "two.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["one"], "echo: First");
    assert_eq!(lines[0]["outputs"]["two"], "echo: Second");
    let trace = env.show_json("last");
    let generations = of_kind(&trace, "generation");
    assert!(generations.iter().all(|g| g["status"] == "ok"
        && g["attributes"]["stream"] == true
        && g["attributes"]["usage"]["total_tokens"] == 15));
}

#[test]
fn stream_false_sends_plain_requests_per_workflow_or_per_agent() {
    let yaml = r#"
name: Mixed
model: gpt-4o-mini
agents:
  streamer: { instructions: You stream. }
  plain: { instructions: You do not., provider: { stream: false } }
steps:
  - { id: one, agent: streamer, input: First }
  - { id: two, agent: plain, input: Second }
"#;
    let env = TestEnv::with_fake().workflow("mixed.yaml", yaml);
    let (out, lines) = run_json(&env, "mixed.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["one"], "echo: First");
    assert_eq!(
        lines[0]["outputs"]["two"], "echo: Second",
        "the same text either way"
    );
    let requests = env.server().requests();
    assert!(requests[0].is_stream());
    assert!(!requests[1].is_stream(), "{:#}", requests[1].body);
    let trace = env.show_json("last");
    let plain = children(&trace, find(&trace, "agent", "plain"))[0];
    assert_eq!(plain["attributes"]["stream"], false);
    assert!(
        plain["attributes"].get("time_to_first_token_ms").is_none(),
        "{plain:#}"
    );
    assert_eq!(plain["attributes"]["usage"], usage(10, 5));

    let env = TestEnv::with_fake().workflow(
        "plain.yaml",
        &CHAT.replace(
            "model: gpt-4o-mini",
            "model: gpt-4o-mini\nprovider: { stream: false }",
        ),
    );
    assert_exit(&env.run(&["run", "plain.yaml"]), 0);
    assert!(!env.server().requests()[0].is_stream());
}

#[test]
fn run_stream_shows_agent_text_on_stderr_and_leaves_stdout_alone() {
    let env = TestEnv::with_fake().workflow("chat.yaml", CHAT);
    let reply = "STREAMED-SENTINEL arrives in pieces";
    env.server().push(Reply::text(reply, 4, 6));
    env.server().push(Reply::text(reply, 4, 6));
    let plain = env.run(&["run", "chat.yaml", "--format", "json"]);
    let streamed = env.run(&["run", "chat.yaml", "--format", "json", "--stream"]);
    assert_exit(&plain, 0);
    assert_exit(&streamed, 0);
    assert!(
        stderr(&streamed).contains(reply),
        "stderr: {}",
        stderr(&streamed)
    );
    assert!(!stderr(&plain).contains(reply), "only with --stream");
    let strip = |out: &std::process::Output| {
        let mut line = parse_json_lines(&out.stdout).remove(0);
        line["trace_id"] = json!(null);
        line["duration_ms"] = json!(null);
        line
    };
    assert_eq!(strip(&streamed), strip(&plain), "stdout is the same result");
}

const SESSION: &str = r#"
name: Chat
vars: { conversation_id: c0, question: Hello }
model: gpt-4o-mini
agents:
  support: { instructions: You support. }
steps:
  - id: answer
    agent: support
    session: "{{ vars.conversation_id }}"
    input: "{{ vars.question }}"
"#;

#[test]
fn a_session_continues_the_conversation_in_a_later_process() {
    let env = TestEnv::with_fake().workflow("chat.yaml", SESSION);
    env.server().push_all([
        Reply::text("It ships tomorrow.", 5, 4),
        Reply::text("Done, it is expedited.", 5, 4),
    ]);
    let ask = |conversation: &str, question: &str| {
        let (out, lines) = run_json(
            &env,
            "chat.yaml",
            &[
                "--var",
                &format!("conversation_id={conversation}"),
                "--var",
                &format!("question={question}"),
            ],
        );
        assert_exit(&out, 0);
        lines.into_iter().next().unwrap()
    };
    let first = ask("c1", "Where is my order?");
    let second = ask("c1", "Can you expedite it?");
    let other = ask("c2", "Hi there");

    let sent = |i: usize| -> Vec<(String, String)> { env.server().requests()[i].messages() };
    let pair = |r: &str, c: &str| (r.to_string(), c.to_string());
    assert_eq!(
        sent(0),
        [
            pair("system", "You support."),
            pair("user", "Where is my order?")
        ]
    );
    assert_eq!(
        sent(1),
        [
            pair("system", "You support."),
            pair("user", "Where is my order?"),
            pair("assistant", "It ships tomorrow."),
            pair("user", "Can you expedite it?"),
        ],
        "the second process continues the conversation"
    );
    assert_eq!(
        sent(2),
        [pair("system", "You support."), pair("user", "Hi there")],
        "c2 is another one"
    );

    assert_eq!(
        first["group_id"], "c1",
        "the group id defaults to the session key"
    );
    assert_eq!(second["group_id"], "c1");
    assert_eq!(other["group_id"], "c2");
    let listed: Vec<Value> = env
        .list_json(&["--group", "c1"])
        .iter()
        .map(|t| t["trace_id"].clone())
        .collect();
    assert_eq!(
        listed,
        [second["trace_id"].clone(), first["trace_id"].clone()],
        "newest first"
    );
    let trace = env.show_json(second["trace_id"].as_str().unwrap());
    assert_eq!(
        find(&trace, "agent", "support")["attributes"]["session"],
        "c1"
    );

    let (out, lines) = run_json(
        &env,
        "chat.yaml",
        &["--var", "conversation_id=c1", "--group", "mine"],
    );
    assert_exit(&out, 0);
    assert_eq!(lines[0]["group_id"], "mine", "--group still wins");
}

#[test]
fn a_session_cannot_be_kept_with_no_content() {
    let env = TestEnv::with_fake().workflow("chat.yaml", SESSION);
    let out = env.run(&["run", "chat.yaml", "--no-content"]);
    assert_exit(&out, 2);
    assert!(env.server().requests().is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("session") && err.contains("--no-content"),
        "{err}"
    );
}

#[test]
fn no_content_keeps_tool_arguments_and_results_out_of_the_store() {
    let env = tools_env();
    env.server().push_all([
        Reply::tool_call("lookup", json!({"sku": "ARG-SENTINEL-5e1f"})),
        Reply::text("REPLY-SENTINEL-77aa", 5, 2),
    ]);
    let out = env.run(&["run", "flows/tools.yaml", "--no-content"]);
    assert_exit(&out, 0);
    let result = &env.server().requests()[1].tool_results()[0].1;
    assert!(
        result.contains("ARG-SENTINEL-5e1f"),
        "the tool ran: {result}"
    );

    let trace = env.show_json("last");
    let function = find(&trace, "function", "lookup");
    assert_eq!(function["attributes"]["exit_code"], 0);
    for span in spans(&trace) {
        let attrs = span["attributes"].as_object().unwrap();
        for key in ["input", "output", "argv"] {
            assert!(
                !attrs.contains_key(key),
                "{key} kept with --no-content: {span:#}"
            );
        }
    }
    let bytes = env.store_bytes();
    for sentinel in ["ARG-SENTINEL-5e1f", "REPLY-SENTINEL-77aa", "WH-7"] {
        assert!(
            !bytes
                .windows(sentinel.len())
                .any(|w| w == sentinel.as_bytes()),
            "{sentinel} reached the store"
        );
    }
}

#[test]
fn example_order_agent_calls_both_tools_offline() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/order.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    let agent = find(&trace, "agent", "confirmer");
    assert_eq!(
        child_outline(&trace, agent),
        [
            "generation gpt-4o-mini ok",
            "function check_inventory ok",
            "generation gpt-4o-mini ok",
            "function authorize_payment ok",
            "generation gpt-4o-mini ok",
        ]
    );
    let inventory: Value = serde_json::from_str(
        find(&trace, "function", "check_inventory")["attributes"]["output"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(inventory["reserved"], 2);
    let payment: Value = serde_json::from_str(
        find(&trace, "function", "authorize_payment")["attributes"]["output"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payment["authorization"], "AUTH-ORD-1001");
    // The last model call saw both results.
    let last = children(&trace, agent)[4];
    let results: Vec<&str> = tool_messages(last)
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 2);
    assert!(results[1].contains("AUTH-ORD-1001"), "{results:?}");
}

#[test]
fn example_order_tools_run_against_the_server_too() {
    let env = examples().fake(FakeOpenAI::start());
    env.server().push_all([
        Reply::tool_calls(&[
            ("check_inventory", json!({"sku": "SKU-4417", "quantity": 2})),
            (
                "authorize_payment",
                json!({"order_id": "ORD-1001", "amount": 129.9, "currency": "USD"}),
            ),
        ]),
        Reply::text("Order ORD-1001 is confirmed.", 30, 8),
    ]);
    let (out, lines) = run_json(&env, "workflows/order.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(
        lines[0]["outputs"]["confirmation"],
        "Order ORD-1001 is confirmed."
    );
    let requests = env.server().requests();
    assert_eq!(
        requests[0].tool_names(),
        ["check_inventory", "authorize_payment"]
    );
    let results = requests[1].tool_results();
    assert!(results[0].1.contains(r#""in_stock": true"#), "{results:?}");
    assert!(results[1].1.contains("AUTH-ORD-1001"), "{results:?}");

    // Too many units: the tool fails, the model is told, and decides.
    env.server().push_all([
        Reply::tool_call(
            "check_inventory",
            json!({"sku": "SKU-4417", "quantity": 500}),
        ),
        Reply::text("Sorry, we only have 42.", 30, 8),
    ]);
    let (out, _) = run_json(&env, "workflows/order.yaml", &[]);
    assert_exit(&out, 0);
    let results = env.server().requests()[3].tool_results();
    assert!(
        results[0].1.starts_with("Error:") && results[0].1.contains("only 42"),
        "{results:?}"
    );
}

#[test]
fn example_support_keeps_a_session_and_hands_billing_to_billing() {
    let env = examples();
    let run = |conversation: &str| {
        let (out, lines) = run_json(
            &env,
            "workflows/support.yaml",
            &[
                "--offline",
                "--var",
                &format!("conversation_id={conversation}"),
            ],
        );
        assert_exit(&out, 0);
        assert_eq!(lines.len(), 2);
        lines
    };
    let first = run("c1");
    let follow = env.show_json(first[1]["trace_id"].as_str().unwrap());
    assert_eq!(
        outline(&follow),
        [
            "agent triage ok",
            "  generation gpt-4o-mini ok",
            "  handoff triage -> billing ok",
            "agent billing ok",
            "  generation gpt-4o-mini ok",
        ]
    );
    // The follow-up's first model call carries the inquiry from the other trace (the session).
    let inquiry = first[0]["outputs"]["inquiry"].as_str().unwrap();
    let generation = children(&follow, find(&follow, "agent", "triage"))[0];
    let messages = sent_messages(generation);
    assert!(
        messages.contains(&("assistant".to_string(), inquiry.to_string())),
        "{messages:#?}"
    );
    assert!(
        first[1]["outputs"]["follow_up"]
            .as_str()
            .unwrap()
            .contains("refunded")
    );

    // Run again: the same conversation goes on, and the group holds all four traces.
    let second = run("c1");
    let again = env.show_json(second[0]["trace_id"].as_str().unwrap());
    let generation = of_kind(&again, "generation")[0];
    let roles: Vec<String> = sent_messages(generation)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert!(roles.len() > 2, "earlier messages come first: {roles:?}");
    let listed = env.list_json(&["--group", "c1"]);
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0]["trace_id"], second[1]["trace_id"], "newest first");
}

#[test]
fn example_research_summary_is_structured_data() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/research.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let summary = &lines[0]["outputs"]["summary"];
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    let span = find(&trace, "custom", "Executive Summary");
    let ready = event(span, "Summary ready");
    assert_eq!(ready["attributes"]["title"], summary["title"]);
    assert_eq!(
        ready["attributes"]["key_points"],
        summary["key_points"].as_array().unwrap().len()
    );
    assert_eq!(
        find(&trace, "agent", "writer")["attributes"]["output_type"],
        "json_schema"
    );

    // Against a server: the writer is asked for the schema, and a valid answer is data too.
    let env = examples().fake(FakeOpenAI::start());
    env.server().push_all([
        Reply::text("- finding", 5, 5),
        Reply::text("trend", 5, 5),
        Reply::text(
            r#"{"title": "T", "key_points": ["k"], "confidence": "high"}"#,
            5,
            5,
        ),
    ]);
    let (out, lines) = run_json(&env, "workflows/research.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["summary"]["title"], "T");
    let format = &env.server().requests()[2].body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(
        format["json_schema"]["schema"]["required"],
        json!(["title", "key_points", "confidence"])
    );
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    assert_eq!(
        event(find(&trace, "custom", "Executive Summary"), "Summary ready")["attributes"]["title"],
        "T"
    );
}
