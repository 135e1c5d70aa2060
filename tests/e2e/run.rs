//! Model requests, chaining and usage: what an agent step sends to the model, how outputs
//! chain into later steps, and how usage sums over generations.

use serde_json::{Value, json};

use crate::support::*;
use crate::traces::*;

const RESEARCH: &str = r#"
name: Research and Analysis Workflow
vars:
  topic: AI in healthcare
model: gpt-4o-mini
agents:
  researcher:
    instructions: You research {{ vars.topic }} and answer in five bullet points.
    temperature: 0.2
  analyst:
    instructions: You analyse research about {{ vars.topic }}.
    model: gpt-4.1-nano
    seed: 42
steps:
  - id: research
    agent: researcher
    input: "Research {{ vars.topic }}"
  - id: analysis
    agent: analyst
    input: "Analyze: {{ steps.research.output }}"
"#;

#[test]
fn agent_requests_carry_the_templated_model_and_messages() {
    let env = TestEnv::with_fake().workflow("research.yaml", RESEARCH);
    let out = env.run(&["run", "research.yaml", "--var", "topic=quantum computing"]);
    assert_exit(&out, 0);

    let requests = env.server().requests();
    assert_eq!(
        requests.len(),
        2,
        "one model call per agent step: {requests:#?}"
    );
    let first = &requests[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.model(), "gpt-4o-mini");
    assert_eq!(
        first.messages(),
        vec![
            (
                "system".to_string(),
                "You research quantum computing and answer in five bullet points.".to_string()
            ),
            ("user".to_string(), "Research quantum computing".to_string()),
        ]
    );
    assert_eq!(first.body["temperature"].as_f64(), Some(0.2));
    assert!(first.body.get("seed").is_none(), "no seed unless asked");
    assert_eq!(
        first.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {SECRET_KEY}").as_str())
    );

    let second = &requests[1];
    assert_eq!(second.model(), "gpt-4.1-nano", "an agent's own model wins");
    assert_eq!(
        second.message("system").as_deref(),
        Some("You analyse research about quantum computing.")
    );
    assert_eq!(second.body["seed"], 42, "an agent's `seed` is sent");
    let trace = env.show_json("last");
    let generations = of_kind(&trace, "generation");
    assert_eq!(
        generations[1]["attributes"]["model_config"],
        json!({"seed": 42}),
        "and recorded"
    );
    assert_eq!(
        generations[0]["attributes"]["model_config"],
        json!({"temperature": 0.2})
    );
}

#[test]
fn outputs_chain_into_later_steps_and_usage_sums_over_generations() {
    let env = TestEnv::with_fake().workflow("research.yaml", RESEARCH);
    env.server()
        .push(Reply::text("- finding one\n- finding two", 100, 20));
    // The second call gets the default reply: "echo: <user message>" with usage 10 + 5.

    let (out, lines) = run_json(&env, "research.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines.len(), 1, "one JSON line per trace");
    let run = &lines[0];

    let requests = env.server().requests();
    assert_eq!(
        requests[1].message("user").as_deref(),
        Some("Analyze: - finding one\n- finding two")
    );
    assert_eq!(run["outputs"]["research"], "- finding one\n- finding two");
    assert_eq!(
        run["outputs"]["analysis"],
        "echo: Analyze: - finding one\n- finding two"
    );
    assert_eq!(run["usage"], usage(110, 25));

    let trace = env.show_json(run["trace_id"].as_str().unwrap());
    assert_eq!(trace["usage"], usage(110, 25));
    let research = find(&trace, "agent", "researcher");
    assert_eq!(research["attributes"]["usage"], usage(100, 20));
    let gens = children(&trace, research);
    assert_eq!(gens.len(), 1);
    assert_eq!(gens[0]["kind"], "generation");
    assert_eq!(gens[0]["attributes"]["usage"], usage(100, 20));
    let analysis_gen = children(&trace, find(&trace, "agent", "analyst"))[0];
    assert_eq!(analysis_gen["attributes"]["usage"], usage(10, 5));
}

#[test]
fn agent_and_generation_spans_record_model_messages_and_reply() {
    let env = TestEnv::with_fake().workflow("research.yaml", RESEARCH);
    env.server().push(Reply::text("five bullets", 12, 34));
    let out = env.run(&["run", "research.yaml", "--format", "none"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "", "--format none prints nothing on stdout");

    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "researcher");
    assert!(agent["parent_id"].is_null());
    assert_eq!(agent["status"], "ok");
    assert_eq!(agent["attributes"]["step_id"], "research");
    assert_eq!(agent["attributes"]["model"], "gpt-4o-mini");
    assert_eq!(agent["attributes"]["usage"], usage(12, 34));
    assert_eq!(agent["attributes"]["input"], "Research AI in healthcare");
    assert_eq!(agent["attributes"]["output"], "five bullets");

    let generation = children(&trace, agent)[0];
    assert_eq!(generation["kind"], "generation");
    assert_eq!(generation["status"], "ok");
    assert_eq!(generation["attributes"]["model"], "gpt-4o-mini");
    assert_eq!(
        generation["attributes"]["input"],
        json!([
            {"role": "system", "content": "You research AI in healthcare and answer in five bullet points."},
            {"role": "user", "content": "Research AI in healthcare"}
        ])
    );
    assert_eq!(generation["attributes"]["output"], "five bullets");
    assert_ne!(
        generation["attributes"]["offline"],
        json!(true),
        "a real model call is not marked offline"
    );
}

/// Issue 17 (point 4): what a step produced as data reaches `.outputs` as that data, so that a
/// script can read `.outputs.summary.title` without decoding a string; text stays a string.
#[test]
fn run_json_outputs_carry_structured_data_as_values_and_text_as_strings() {
    let env = TestEnv::new().workflow(
        "typed.yaml",
        r#"
name: Typed outputs
model: gpt-4o-mini
agents:
  writer:
    instructions: Summarise.
    output_schema:
      type: object
      properties:
        title: { type: string }
        points: { type: array, items: { type: string } }
      required: [title, points]
      additionalProperties: false
  talker:
    instructions: Talk.
steps:
  - id: summary
    agent: writer
    input: Summarise this.
  - id: said
    agent: talker
    input: Say something.
  - id: stats
    run: ["printf", '{"title": "Stats", "count": 3, "ok": true}']
  - id: plain
    run: ["echo", "just text"]
  - id: numbers
    run: ["echo", "42"]
  - id: each
    foreach: ["a", "b"]
    steps:
      - run: ["echo", "{{ item }}"]
  - id: chained
    run: ["echo", "{{ steps.summary.output.title }}|{{ steps.stats.output.count }}|{{ steps.each.output | join(',') }}"]
"#,
    );
    let (out, lines) = run_json(&env, "typed.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let outputs = &lines[0]["outputs"];
    // The structured output: an object, its fields reachable by path.
    assert!(outputs["summary"].is_object(), "{}", outputs["summary"]);
    assert!(outputs["summary"]["title"].is_string());
    assert!(outputs["summary"]["points"].is_array());
    // A command's JSON stdout: the value, numbers and booleans typed.
    assert_eq!(outputs["stats"]["title"], "Stats");
    assert_eq!(outputs["stats"]["count"], 3);
    assert_eq!(outputs["stats"]["ok"], true);
    // A foreach: the list of each item's last output.
    assert_eq!(outputs["each"], json!(["a", "b"]));
    // Text stays a string, even text that looks like a number.
    assert!(outputs["said"].is_string());
    assert_eq!(outputs["plain"], "just text");
    assert_eq!(outputs["numbers"], "42");
    let title = outputs["summary"]["title"].as_str().unwrap();
    assert_eq!(outputs["chained"], format!("{title}|3|a,b"));

    // The stored trace keeps what the model said and the command printed, as text: the record
    // of the bytes (replay, exports) rather than their reading.
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    let writer = find(&trace, "agent", "writer");
    let said: Value = serde_json::from_str(writer["attributes"]["output"].as_str().unwrap())
        .expect("the agent span's output is the JSON text the model answered");
    assert_eq!(said, outputs["summary"]);
}
