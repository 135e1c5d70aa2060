//! The parser's specification: every message, its place and its help, and what a good file
//! parses into.

use super::agents::AGENT_KEYS;
use super::steps::STEP_KEYS;
use super::*;
use crate::workflow::schema::{Api, Command, MockToolCall, MockTurn, Step, StepKind};
use serde_json::json;

/// Every problem parse and validation find, as `FILE:LINE:COL: message`, in file order.
fn problems(src: &str) -> Vec<String> {
    let (_, diags) = crate::workflow::check_str("w.yaml", PathBuf::from("w.yaml"), src);
    diags.iter().map(Diagnostic::headline).collect()
}

fn helps(src: &str) -> Vec<Option<String>> {
    let (_, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
    diags.into_iter().map(|d| d.help).collect()
}

fn parsed(src: &str) -> Workflow {
    let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
    assert_eq!(diags, [], "unexpected problems");
    wf.expect("a workflow")
}

/// A workflow that parses and validates without a problem.
fn valid(src: &str) -> Workflow {
    let (wf, diags) = crate::workflow::check_str("w.yaml", PathBuf::from("w.yaml"), src);
    assert_eq!(diags, [], "unexpected problems");
    wf.expect("a workflow")
}

const HEAD: &str = "name: t\nmodel: m\nagents: { a: {} }\n";

#[test]
fn a_yaml_syntax_error_is_one_problem_at_its_place() {
    assert_eq!(
        problems("name: t\nsteps:\n  - id: a\n   run: [echo\n"),
        [
            "w.yaml:4:4: invalid YAML: while parsing a block collection, did not find expected '-' indicator"
        ]
    );
}

#[test]
fn an_empty_file_is_reported_at_the_start() {
    assert_eq!(problems(""), ["w.yaml:1:1: the workflow file is empty"]);
    assert_eq!(
        problems("# only a comment\n"),
        ["w.yaml:1:1: the workflow file is empty"]
    );
    assert_eq!(
        problems("- a\n- b\n"),
        ["w.yaml:1:1: a workflow must be a mapping with `name:` and `steps:`, found a list"]
    );
}

#[test]
fn unknown_keys_point_at_the_key_with_a_suggestion() {
    let src = "name: t\nmodle: m\nagents:\n  a: { model: m, temprature: 1 }\n\
                   steps:\n  - id: s\n    agent: a\n    inptu: hi\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:2:1: unknown key `modle` at top level; did you mean `model`?",
            "w.yaml:4:18: unknown key `temprature` in agent `a`; did you mean `temperature`?",
            "w.yaml:6:5: an `agent:` step needs `input:`",
            "w.yaml:8:5: unknown key `inptu` in a step; did you mean `input`?",
        ]
    );
    assert_eq!(
        helps(src),
        [
            None,
            None,
            Some("add `input: ...`, the message the agent answers".to_string()),
            None,
        ]
    );
}

#[test]
fn unknown_keys_without_a_close_match_list_the_allowed_keys() {
    let src = "name: t\nprovider: { base_url: x, zzzzzz: 1 }\nsteps:\n  - span: S\n    events:\n      - { name: e, wxyz: 1 }\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:2:26: unknown key `zzzzzz` in provider",
            "w.yaml:6:20: unknown key `wxyz` in an event",
        ]
    );
    assert_eq!(
        helps(src),
        [
            Some(
                "allowed keys: `base_url`, `api_key_env`, `headers`, `stream`, `api`, \
                 `max_connections`"
                    .to_string()
            ),
            Some("allowed keys: `name`, `attributes`".to_string()),
        ]
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    let src = "name: t\nmodel: m\nagents:\n  a: { temperature: hot, max_tokens: -3, seed: x }\n\
                   steps:\n  - run: { a: 1 }\n  - id: x\n    run: [echo, [nested]]\n    env: { A: 1, B: [2] }\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:4:21: `temperature` must be a number, found a string",
            "w.yaml:4:38: `max_tokens` must be a positive whole number, found a number",
            "w.yaml:4:48: `seed` must be a whole number, found a string",
            "w.yaml:6:10: `run` must be a command list `[prog, arg]` or a script string, found a mapping",
            "w.yaml:8:17: each `run:` argument must be a string, found a list",
            "w.yaml:9:21: `env.B` must be a string, found a list",
        ]
    );
    assert_eq!(
        problems("name: t\nsteps: go\n"),
        ["w.yaml:2:8: `steps` must be a list of steps, found a string"]
    );
    assert_eq!(
        problems("name: t\nsteps:\n  - run: echo\n    name:\n"),
        ["w.yaml:4:9: `name:` needs a value (a string)"]
    );
}

#[test]
fn required_keys_are_reported() {
    assert_eq!(
        problems("description: d\nsteps:\n  - run: echo\n"),
        ["w.yaml:1:1: a workflow needs `name:`"]
    );
    assert_eq!(
        problems("name: t\n"),
        ["w.yaml:1:1: a workflow needs `steps:` (or `traces:`)"]
    );
    assert_eq!(
        problems("name: t\nsteps: [{run: a}]\ntraces: []\n"),
        ["w.yaml:3:1: a workflow has either `steps:` or `traces:`, not both"]
    );
    assert_eq!(
        problems("name: t\ntraces:\n  - metadata: {}\n  - name: b\n"),
        [
            "w.yaml:3:5: a trace needs `name:`",
            "w.yaml:3:5: a trace needs `steps:`",
            "w.yaml:4:5: a trace needs `steps:`",
        ]
    );
}

#[test]
fn a_step_has_exactly_one_form() {
    let src = format!(
        "{HEAD}steps:\n  - id: x\n    name: nothing\n  - id: y\n    agent: a\n    input: hi\n    run: echo\n"
    );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:5:5: a step needs exactly one of `agent:`, `run:`, `span:`, `event:`, `parallel:` or `foreach:`",
            "w.yaml:10:5: a step cannot have both `agent:` and `run:`",
        ]
    );
}

#[test]
fn keys_of_another_form_are_errors() {
    let src = format!(
        "{HEAD}steps:\n  - agent: a\n    input: hi\n    env: {{ A: b }}\n  - run: echo\n    input: x\n    attributes: {{}}\n  - span: S\n    mock: m\n"
    );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:7:5: `env:` only applies to `run:` steps",
            "w.yaml:9:5: `input:` only applies to `agent:` steps",
            "w.yaml:10:5: `attributes:` only applies to `event:` steps",
            "w.yaml:12:5: `mock:` only applies to `agent:` steps",
        ]
    );
}

#[test]
fn step_ids_must_be_identifiers() {
    let src = "name: t\nsteps:\n  - id: my-step\n    run: echo\n  - id: 2nd\n    run: echo\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:9: step id `my-step` must be letters, digits and `_`, not starting with a digit",
            "w.yaml:5:9: step id `2nd` must be letters, digits and `_`, not starting with a digit",
        ]
    );
    assert_eq!(
        helps(src),
        [
            Some("ids are used as `steps.<id>` in templates; try `my_step`".to_string()),
            Some("ids are used as `steps.<id>` in templates; try `_2nd`".to_string()),
        ]
    );
    assert_eq!(
        problems("name: t\nsteps:\n  - id: \"\"\n    run: echo\n"),
        ["w.yaml:3:9: `id:` is empty"]
    );
}

#[test]
fn a_step_with_a_bad_key_is_kept_so_references_still_resolve() {
    let src = format!(
        "{HEAD}steps:\n  - id: first\n    agent: a\n    input: hi\n    mokc: x\n  - id: second\n    agent: a\n    input: \"{{{{ steps.first.output }}}}\"\n"
    );
    assert_eq!(
        problems(&src),
        ["w.yaml:8:5: unknown key `mokc` in a step; did you mean `mock`?"]
    );
}

#[test]
fn run_is_argv_or_a_script() {
    let wf = parsed("name: t\nsteps:\n  - run: [sleep, 0.50, 3, true]\n  - run: echo hi\n");
    let steps = &wf.traces[0].steps;
    let StepKind::Run {
        command: Command::Argv(argv),
        ..
    } = &steps[0].kind
    else {
        panic!("argv expected: {:?}", steps[0].kind)
    };
    let argv: Vec<&str> = argv.iter().map(|a| a.as_str()).collect();
    assert_eq!(argv, ["sleep", "0.50", "3", "true"]);
    let StepKind::Run {
        command: Command::Script(script),
        ..
    } = &steps[1].kind
    else {
        panic!("script expected: {:?}", steps[1].kind)
    };
    assert_eq!(script.as_str(), "echo hi");
    assert_eq!(
        problems("name: t\nsteps:\n  - run: []\n"),
        ["w.yaml:3:10: `run:` list is empty"]
    );
}

/// The workflow of the format's documentation, every key in use; `load` reads it too.
pub(crate) const EXAMPLE: &str = r#"name: Research and Analysis Workflow      # required; the trace name
description: An example
group_id: "{{ vars.conversation_id }}"
metadata: { customer_id: cust_789, priority: high }
vars: { topic: AI in healthcare, conversation_id: conv_1, sku: A-1, order_id: 7, ratio: 0.5 }
model: gpt-4o-mini
provider: { base_url: http://127.0.0.1:11434/v1, api_key_env: OLLAMA_KEY }
agents:
  researcher:
    instructions: You research {{ vars.topic }} and answer in five bullet points.
    model: gpt-4o-mini
    temperature: 0.2
    max_tokens: 500
steps:
  - id: research
    agent: researcher
    input: "Research {{ vars.topic }}"
  - span: Analysis Phase
    events:
      - { name: Phase started, attributes: { inputs: 1 } }
    steps:
      - id: analysis
        agent: researcher
        input: "Analyze: {{ steps.research.output }}"
        mock: a mocked answer
      - event: Analysis done
        attributes: { output_length: "{{ steps.analysis.output | length }}", ratio: 0.25, nested: { ok: true } }
  - id: inventory
    run: ["./scripts/check-stock.sh", "--sku", "{{ vars.sku }}"]
    env: { ORDER_ID: "{{ vars.order_id }}" }
"#;

#[test]
fn the_spec_example_parses_into_the_expected_structure() {
    let wf = valid(EXAMPLE);
    assert_eq!(wf.name.as_str(), "Research and Analysis Workflow");
    assert_eq!(wf.name.loc, Loc { line: 1, col: 7 });
    assert_eq!(wf.description.as_deref(), Some("An example"));
    assert_eq!(
        wf.group_id.as_ref().map(|g| g.as_str()),
        Some("{{ vars.conversation_id }}")
    );
    assert_eq!(wf.metadata["customer_id"].value, json!("cust_789"));
    assert_eq!(
        wf.vars.keys().collect::<Vec<_>>(),
        ["topic", "conversation_id", "sku", "order_id", "ratio"]
    );
    assert_eq!(wf.vars["order_id"].value, json!(7));
    assert_eq!(wf.vars["ratio"].value, json!(0.5));
    assert_eq!(wf.model.as_ref().map(|m| m.as_str()), Some("gpt-4o-mini"));
    let provider = wf.provider.as_ref().expect("provider");
    assert_eq!(
        provider.api_key_env.as_ref().map(|k| k.as_str()),
        Some("OLLAMA_KEY")
    );
    let agent = &wf.agents["researcher"];
    assert_eq!(agent.temperature, Some(0.2));
    assert_eq!(agent.max_tokens, Some(500));
    assert_eq!(agent.seed, None);
    assert_eq!(agent.loc, Loc { line: 9, col: 3 });
    let seeded = parsed(&EXAMPLE.replace("max_tokens: 500", "max_tokens: 500\n    seed: -12"));
    assert_eq!(seeded.agents["researcher"].seed, Some(-12));

    assert_eq!(wf.traces.len(), 1);
    let trace = &wf.traces[0];
    assert_eq!(trace.name, wf.name);
    let forms: Vec<&str> = trace.steps.iter().map(Step::form).collect();
    assert_eq!(forms, ["agent", "span", "run"]);
    let all: Vec<(Option<&str>, &str)> = wf
        .all_steps()
        .iter()
        .map(|s| (s.id.as_ref().map(|i| i.as_str()), s.form()))
        .collect();
    assert_eq!(
        all,
        [
            (Some("research"), "agent"),
            (None, "span"),
            (Some("analysis"), "agent"),
            (None, "event"),
            (Some("inventory"), "run"),
        ]
    );

    let StepKind::Agent {
        agent, input, mock, ..
    } = &trace.steps[0].kind
    else {
        panic!("agent step expected")
    };
    assert_eq!(
        (agent.as_str(), input.as_str()),
        ("researcher", "Research {{ vars.topic }}")
    );
    assert_eq!(input.loc, Loc { line: 17, col: 12 });
    assert_eq!(mock, &None);
    assert_eq!(trace.steps[0].loc, Loc { line: 15, col: 5 });

    let StepKind::Span {
        name,
        events,
        steps,
    } = &trace.steps[1].kind
    else {
        panic!("span step expected")
    };
    assert_eq!(name.as_str(), "Analysis Phase");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name.as_str(), "Phase started");
    assert_eq!(events[0].attributes["inputs"].value, json!(1));
    let StepKind::Agent { mock, .. } = &steps[0].kind else {
        panic!("agent step expected")
    };
    match mock.as_deref() {
        Some([super::super::schema::MockTurn::Text(t)]) => {
            assert_eq!(t.value, "a mocked answer")
        }
        other => panic!("expected one text turn, got {other:?}"),
    }
    let StepKind::Event(event) = &steps[1].kind else {
        panic!("event step expected")
    };
    assert_eq!(event.name.as_str(), "Analysis done");
    assert_eq!(
        event.attributes["output_length"].value,
        json!("{{ steps.analysis.output | length }}")
    );
    assert_eq!(event.attributes["ratio"].value, json!(0.25));
    assert_eq!(event.attributes["nested"].value, json!({ "ok": true }));

    let StepKind::Run {
        command: Command::Argv(argv),
        env,
    } = &trace.steps[2].kind
    else {
        panic!("argv run step expected")
    };
    let argv: Vec<&str> = argv.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        argv,
        ["./scripts/check-stock.sh", "--sku", "{{ vars.sku }}"]
    );
    assert_eq!(env["ORDER_ID"].as_str(), "{{ vars.order_id }}");
}

#[test]
fn traces_share_the_file_and_keep_their_metadata() {
    let src = "name: chat\nmodel: m\nagents: { a: {} }\ntraces:\n  - name: turn 1\n    metadata: { turn: 1 }\n    steps:\n      - { id: q1, agent: a, input: hi }\n  - name: turn 2\n    steps:\n      - { id: q2, agent: a, input: \"{{ steps.q1.output }}\" }\n";
    let wf = valid(src);
    let names: Vec<&str> = wf.traces.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["turn 1", "turn 2"]);
    assert_eq!(wf.traces[0].metadata["turn"].value, json!(1));
    assert_eq!(wf.traces[1].steps[0].loc, Loc { line: 11, col: 9 });
}

const ACTING: &str = r#"name: Support
vars: { conversation_id: c1, region: eu }
model: m
provider: { base_url: "http://127.0.0.1:8080/v1", stream: false, max_connections: 64 }
tools:
  check_inventory:
    description: Stock level of one SKU
    parameters:
      type: object
      properties: { sku: { type: string } }
      required: [sku]
      additionalProperties: false
    command: [./scripts/check.sh, --region, "{{ vars.region }}", "{{ trace.id }}"]
  ping-2:
    command: [true]
agents:
  triage:
    instructions: Route the customer.
    tools: [check_inventory, ping-2]
    handoffs: [billing]
    max_turns: 4
    provider: { base_url: "http://localhost:9/v1", stream: true }
  billing:
    instructions: Handle payments.
    handoff_description: Refunds and invoices
    output_schema:
      type: object
      properties: { refund: { type: boolean } }
      required: [refund]
steps:
  - id: answer
    agent: triage
    input: I want a refund
    session: "support-{{ vars.conversation_id }}"
    mock:
      - tool_calls:
          - { name: check_inventory, arguments: { sku: A-1 } }
          - { name: ping-2 }
      - handoff: billing
      - '{"refund": true}'
  - id: short
    agent: billing
    input: hi
    mock: 42
"#;

#[test]
fn the_keys_of_agents_that_act_parse_into_the_expected_structure() {
    let wf = valid(ACTING);
    assert_eq!(wf.provider.as_ref().map(|p| p.stream), Some(Some(false)));
    assert_eq!(
        wf.provider
            .as_ref()
            .and_then(|p| p.max_connections.as_ref())
            .map(|m| (m.value, m.loc)),
        Some((64, Loc { line: 4, col: 83 }))
    );

    assert_eq!(
        wf.tools.keys().collect::<Vec<_>>(),
        ["check_inventory", "ping-2"]
    );
    let tool = &wf.tools["check_inventory"];
    assert_eq!(tool.name.as_str(), "check_inventory");
    assert_eq!(tool.loc, Loc { line: 6, col: 3 });
    assert_eq!(tool.description.as_deref(), Some("Stock level of one SKU"));
    let parameters = tool.parameters.as_ref().expect("parameters");
    assert_eq!(
        parameters.value,
        json!({
            "type": "object",
            "properties": { "sku": { "type": "string" } },
            "required": ["sku"],
            "additionalProperties": false
        })
    );
    assert_eq!(parameters.loc, Loc { line: 9, col: 7 });
    let argv: Vec<&str> = tool.command.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        argv,
        [
            "./scripts/check.sh",
            "--region",
            "{{ vars.region }}",
            "{{ trace.id }}"
        ]
    );
    assert_eq!(tool.command[2].loc, Loc { line: 13, col: 45 });
    let ping = &wf.tools["ping-2"];
    assert_eq!(
        (ping.description.as_ref(), ping.parameters.as_ref()),
        (None, None)
    );
    assert_eq!(
        ping.command.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        ["true"]
    );

    let triage = &wf.agents["triage"];
    let names = |v: &[Located<String>]| v.iter().map(|n| n.value.clone()).collect::<Vec<_>>();
    assert_eq!(names(&triage.tools), ["check_inventory", "ping-2"]);
    assert_eq!(triage.tools[1].loc, Loc { line: 19, col: 30 });
    assert_eq!(names(&triage.handoffs), ["billing"]);
    assert_eq!(
        triage.max_turns,
        Some(Located::new(4, Loc { line: 21, col: 16 }))
    );
    assert_eq!(triage.provider.as_ref().map(|p| p.stream), Some(Some(true)));
    assert_eq!(triage.handoff_description, None);
    assert!(triage.output_schema.is_none());
    let billing = &wf.agents["billing"];
    assert_eq!(
        billing.handoff_description.as_deref(),
        Some("Refunds and invoices")
    );
    assert_eq!(
        billing.output_schema.as_ref().map(|s| &s.value),
        Some(&json!({
            "type": "object",
            "properties": { "refund": { "type": "boolean" } },
            "required": ["refund"]
        }))
    );
    assert_eq!(billing.max_turns, None);
    assert!(billing.tools.is_empty() && billing.handoffs.is_empty());

    let StepKind::Agent { session, mock, .. } = &wf.traces[0].steps[0].kind else {
        panic!("agent step expected")
    };
    assert_eq!(
        session,
        &Some(Located::new(
            "support-{{ vars.conversation_id }}".to_string(),
            Loc { line: 34, col: 14 }
        ))
    );
    let at = |line, col| Loc { line, col };
    let expected = vec![
        MockTurn::ToolCalls(vec![
            MockToolCall {
                name: Located::new("check_inventory".into(), at(37, 21)),
                arguments: json!({ "sku": "A-1" }),
            },
            MockToolCall {
                name: Located::new("ping-2".into(), at(38, 21)),
                arguments: json!({}),
            },
        ]),
        MockTurn::Handoff(Located::new("billing".into(), at(39, 18))),
        MockTurn::Text(Located::new(r#"{"refund": true}"#.into(), at(40, 9))),
    ];
    assert_eq!(mock.as_ref(), Some(&expected));
    let StepKind::Agent { session, mock, .. } = &wf.traces[0].steps[1].kind else {
        panic!("agent step expected")
    };
    assert_eq!(session, &None);
    assert_eq!(
        mock.as_ref(),
        Some(&vec![MockTurn::Text(Located::new("42".into(), at(44, 11)))])
    );
}

#[test]
fn tool_definitions_are_checked() {
    let src = r#"name: t
tools:
  "has space": { command: [a] }
  transfer_to_billing: { command: [a] }
  no_command: { description: d }
  bare:
  shell: { command: "echo hi", parameters: [a] }
  empty: { command: [], descripton: d }
  nested: { command: [a, [b]], parameters: { type: object } }
  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: { command: [a] }
steps:
  - run: echo
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:3: tool name `has space` must be 1 to 64 letters, digits, `_` or `-`",
            "w.yaml:4:3: tool name `transfer_to_billing` starts with `transfer_to_`, which is reserved for handoffs",
            "w.yaml:5:3: tool `no_command` needs `command:`",
            "w.yaml:6:3: tool `bare` needs `command:`",
            "w.yaml:7:21: `command` must be a command list `[prog, arg]`, found a string",
            "w.yaml:7:44: `parameters` must be a mapping (a JSON Schema), found a list",
            "w.yaml:8:21: `command:` list is empty",
            "w.yaml:8:25: unknown key `descripton` in tool `empty`; did you mean `description`?",
            "w.yaml:9:26: each `command:` argument must be a string, found a list",
            "w.yaml:10:3: tool name `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` must be 1 to 64 letters, digits, `_` or `-`",
        ]
    );
    assert_eq!(
        problems("name: t\ntools: [a]\nsteps: [{ run: echo }]\n"),
        ["w.yaml:2:8: `tools` must be a mapping of tool names to tools, found a list"]
    );
    assert_eq!(
        problems("name: t\nagents: 5\ntools: ~\nsteps: [{ run: echo }]\n"),
        ["w.yaml:2:9: `agents` must be a mapping of agent names to agents, found a number"]
    );
    assert_eq!(
        helps("name: t\ntools: { a: { command: echo } }\nsteps: [{ run: echo }]\n"),
        [Some(
            "tools run without a shell; write `command: [prog, arg]`".to_string()
        )]
    );
}

#[test]
fn agent_and_provider_keys_for_acting_are_checked() {
    let src = r#"name: t
model: m
provider: { stream: "yes" }
agents:
  a:
    tools: check
    handoffs: [b, [c], ""]
    max_turns: 0
    output_schema: "{}"
    handoff_description: [x]
    provider: { stream: 1 }
  b: { max_turns: 2.5, handof: [a] }
  c: { max_turns: 99999999999 }
steps:
  - { agent: a, input: hi }
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:21: `stream` must be `true` or `false`, found a string",
            "w.yaml:6:12: `tools` must be a list of tool names, found a string",
            "w.yaml:7:19: each `handoffs:` item must be an agent name, found a list",
            "w.yaml:7:24: each `handoffs:` item must be an agent name, found an empty string",
            "w.yaml:8:16: `max_turns` must be at least 1",
            "w.yaml:9:20: `output_schema` must be a mapping (a JSON Schema), found a string",
            "w.yaml:10:26: `handoff_description` must be a string, found a list",
            "w.yaml:11:25: `stream` must be `true` or `false`, found a number",
            "w.yaml:12:19: `max_turns` must be a whole number, found a number",
            "w.yaml:12:24: unknown key `handof` in agent `b`; did you mean `handoffs`?",
            "w.yaml:13:19: `max_turns` is too large",
        ]
    );
}

#[test]
fn mock_turns_are_checked() {
    let src = format!(
            "{HEAD}steps:
  - agent: a
    input: hi
    mock:
      - {{ tool_calls: [{{ name: t, arguments: [1] }}, {{ arguments: {{}} }}, {{ name: t, argz: 1 }}] }}
      - {{ handoff: a, tool_calls: [] }}
      - {{ handof: a }}
      - {{}}
      - [nested]
      - {{ tool_calls: [] }}
      - {{ tool_calls: x }}
      - {{ handoff: \"\" }}
  - {{ agent: a, input: hi, mock: [] }}
  - {{ agent: a, input: hi, mock: {{ handoff: a }} }}
  - {{ agent: a, input: hi, mock: }}
"
        );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:8:46: `arguments` must be a mapping, found a list",
            "w.yaml:8:53: a tool call needs `name:`",
            "w.yaml:8:80: unknown tool `t`",
            "w.yaml:8:83: unknown key `argz` in a tool call",
            "w.yaml:9:23: a mock turn cannot have both `tool_calls:` and `handoff:`",
            "w.yaml:10:11: unknown key `handof` in a mock turn; did you mean `handoff`?",
            "w.yaml:11:9: a mock turn needs `tool_calls:` or `handoff:` (or is a string)",
            "w.yaml:12:9: a mock turn must be a string, `{ tool_calls: [...] }` or `{ handoff: AGENT }`, found a list",
            "w.yaml:13:23: `tool_calls:` has no calls",
            "w.yaml:14:23: `tool_calls` must be a list of `{ name, arguments }`, found a string",
            "w.yaml:15:20: `handoff:` needs the name of an agent",
            "w.yaml:16:34: `mock:` has no turns",
            "w.yaml:17:34: `mock` must be a string or a list of turns, found a mapping",
            "w.yaml:18:32: `mock:` needs a value (a string or a list of turns)",
        ]
    );
}

#[test]
fn session_only_applies_to_agent_steps() {
    let src = format!(
        "{HEAD}steps:\n  - run: echo\n    session: s\n  - {{ agent: a, input: hi, session: [s] }}\n"
    );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:6:5: `session:` only applies to `agent:` steps",
            "w.yaml:7:37: `session` must be a string, found a list",
        ]
    );
}

const CONTROL: &str = r#"name: Batch
model: m
vars: { topics: [a, b], order: o1 }
timeout: 1h30m
retry: { attempts: 3, backoff: 500ms, timeout: 30 }
max_concurrency: 8
budget: { max_tokens: 100000, max_cost_usd: 2.5, max_duration: 10m }
prices:
  gpt-4o-mini: { input: 0.15, output: 0.6 }
  local: { input: 0, output: 0 }
agents:
  stock: { retry: { attempts: 5 } }
  payments: {}
steps:
  - id: checks
    name: Checks
    parallel:
      - { id: inventory, agent: stock, input: "{{ vars.order }}", retry: { backoff: 2s } }
      - id: payment
        agent: payments
        input: pay
        timeout: 45s
        continue_on_error: true
      - span: Audit
        steps:
          - { id: audit, run: [echo, audit] }
      - event: Checks started
    fail_fast: true
  - id: summaries
    if: "{{ steps.checks.status == 'ok' }}"
    foreach: "{{ vars.topics }}"
    as: topic
    concurrency: 4
    steps:
      - event: Item started
      - id: summary
        agent: stock
        input: "Summarise {{ topic }} after {{ steps.payment.output }}"
        if: topic != 'skip' and steps.inventory.status == 'ok'
  - id: literal
    foreach: [x, { name: why }]
    steps:
      - { id: echo_item, run: [echo, "{{ item }}", "{{ item.name }}"] }
  - id: after
    if: steps.literal.status != 'error'
    run: [echo, "{{ steps.summaries.output }} {{ steps.audit.output }}"]
"#;

#[test]
fn the_control_flow_keys_parse_into_the_expected_structure() {
    use std::time::Duration;
    let wf = valid(CONTROL);
    let at = |line, col| Loc { line, col };
    assert_eq!(
        wf.timeout,
        Some(Located::new(Duration::from_secs(5400), at(4, 10)))
    );
    assert_eq!(
        wf.retry,
        Some(RetryDef {
            attempts: Some(3),
            backoff: Some(Duration::from_millis(500)),
            timeout: Some(Duration::from_secs(30)),
            loc: at(5, 8),
        })
    );
    assert_eq!(wf.max_concurrency, Some(Located::new(8, at(6, 18))));
    assert_eq!(
        wf.budget,
        Some(BudgetDef {
            max_tokens: Some(100_000),
            max_cost_usd: Some(2.5),
            max_duration: Some(Duration::from_secs(600)),
            loc: at(7, 9),
        })
    );
    assert_eq!(
        wf.prices.clone().into_iter().collect::<Vec<_>>(),
        [
            (
                "gpt-4o-mini".to_string(),
                PriceDef {
                    input: 0.15,
                    output: 0.6,
                    loc: at(9, 3)
                }
            ),
            (
                "local".to_string(),
                PriceDef {
                    input: 0.0,
                    output: 0.0,
                    loc: at(10, 3)
                }
            ),
        ]
    );
    assert_eq!(
        wf.agents["stock"].retry,
        Some(RetryDef {
            attempts: Some(5),
            loc: at(12, 19),
            ..RetryDef::default()
        })
    );
    assert_eq!(wf.agents["payments"].retry, None);

    let steps = &wf.traces[0].steps;
    let forms: Vec<&str> = steps.iter().map(Step::form).collect();
    assert_eq!(forms, ["parallel", "foreach", "foreach", "run"]);
    let all: Vec<Option<&str>> = wf
        .all_steps()
        .iter()
        .map(|s| s.id.as_ref().map(|i| i.as_str()))
        .collect();
    assert_eq!(
        all,
        [
            Some("checks"),
            Some("inventory"),
            Some("payment"),
            None,
            Some("audit"),
            None,
            Some("summaries"),
            None,
            Some("summary"),
            Some("literal"),
            Some("echo_item"),
            Some("after"),
        ]
    );

    let checks = &steps[0];
    assert_eq!(checks.name.as_ref().map(|n| n.as_str()), Some("Checks"));
    assert_eq!(
        (checks.condition.as_ref(), checks.continue_on_error),
        (None, false)
    );
    let StepKind::Parallel {
        branches,
        fail_fast,
    } = &checks.kind
    else {
        panic!("parallel step expected")
    };
    assert!(*fail_fast);
    let forms: Vec<&str> = branches.iter().map(Step::form).collect();
    assert_eq!(forms, ["agent", "agent", "span", "event"]);
    assert_eq!(
        branches[0].retry,
        Some(RetryDef {
            backoff: Some(Duration::from_secs(2)),
            loc: at(18, 74),
            ..RetryDef::default()
        })
    );
    assert_eq!(branches[0].timeout, None);
    assert_eq!(
        branches[1].timeout,
        Some(Located::new(Duration::from_secs(45), at(22, 18)))
    );
    assert!(branches[1].continue_on_error);
    assert!(!branches[0].continue_on_error);

    let summaries = &steps[1];
    assert_eq!(
        summaries.condition,
        Some(Located::new(
            "{{ steps.checks.status == 'ok' }}".to_string(),
            at(30, 9)
        ))
    );
    let StepKind::Foreach {
        items,
        as_name,
        concurrency,
        steps: inner,
    } = &summaries.kind
    else {
        panic!("foreach step expected")
    };
    assert_eq!(items, &Located::new(json!("{{ vars.topics }}"), at(31, 14)));
    assert_eq!((as_name.as_str(), *concurrency), ("topic", 4));
    assert_eq!(
        inner.iter().map(Step::form).collect::<Vec<_>>(),
        ["event", "agent"]
    );
    assert_eq!(
        inner[1].condition.as_ref().map(|c| c.as_str()),
        Some("topic != 'skip' and steps.inventory.status == 'ok'")
    );

    let StepKind::Foreach {
        items,
        as_name,
        concurrency,
        steps: inner,
    } = &steps[2].kind
    else {
        panic!("foreach step expected")
    };
    assert_eq!(
        items,
        &Located::new(json!(["x", { "name": "why" }]), at(41, 14))
    );
    assert_eq!((as_name.as_str(), *concurrency), ("item", 1));
    assert_eq!(inner.len(), 1);
    assert_eq!(
        steps[3].condition.as_ref().map(|c| c.as_str()),
        Some("steps.literal.status != 'error'")
    );
}

#[test]
fn durations_take_units_or_seconds_and_must_be_positive() {
    let timeout = |value: &str| {
        let src = format!("name: t\ntimeout: {value}\nsteps: [{{ run: echo }}]\n");
        let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), &src);
        match diags.first() {
            Some(d) => Err(d.headline()),
            None => Ok(wf.and_then(|wf| wf.timeout).map(|t| t.value)),
        }
    };
    use std::time::Duration;
    assert_eq!(timeout("500ms"), Ok(Some(Duration::from_millis(500))));
    assert_eq!(timeout("30s"), Ok(Some(Duration::from_secs(30))));
    assert_eq!(timeout("2m"), Ok(Some(Duration::from_secs(120))));
    assert_eq!(timeout("1h"), Ok(Some(Duration::from_secs(3600))));
    assert_eq!(timeout("1h30m"), Ok(Some(Duration::from_secs(5400))));
    assert_eq!(timeout("1d"), Ok(Some(Duration::from_secs(86400))));
    assert_eq!(timeout("90"), Ok(Some(Duration::from_secs(90))));
    assert_eq!(timeout("\"15\""), Ok(Some(Duration::from_secs(15))));
    let bad = "w.yaml:2:10: `timeout` must be a duration like 30s, 2m or 1h";
    for text in ["soon", "1.5", "2 parsecs", "1mo", "\"\""] {
        assert_eq!(timeout(text), Err(bad.to_string()), "{text}");
    }
    let zero = "w.yaml:2:10: `timeout` must be longer than zero";
    for text in ["0", "0s", "-5s", "-3"] {
        assert_eq!(timeout(text), Err(zero.to_string()), "{text}");
    }
    assert_eq!(
        timeout("[1s]"),
        Err("w.yaml:2:10: `timeout` must be a duration like 30s, 2m or 1h, found a list".into())
    );
    assert_eq!(
        timeout(""),
        Err("w.yaml:2:8: `timeout:` needs a value (a duration like 30s, 2m or 1h)".into())
    );
}

#[test]
fn top_level_limits_retries_budgets_and_prices_are_checked() {
    let src = r#"name: t
model: m
timeout: forever
retry: { attempts: 0, backoff: 0s, timeot: 1s }
max_concurrency: 0
budget: { max_tokens: 0, max_cost_usd: 0, max_duration: -1m, max_cost: 1 }
prices:
  a: { input: -1, output: x }
  b: { input: 1 }
  c: 3
  d: { input: 1, output: 1, cached: 1 }
agents:
  w: { retry: { attempts: 21 } }
steps:
  - { agent: w, input: hi, retry: { attempts: 2.5, timeout: 0 } }
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:10: `timeout` must be a duration like 30s, 2m or 1h",
            "w.yaml:4:20: `attempts` must be at least 1",
            "w.yaml:4:32: `backoff` must be longer than zero",
            "w.yaml:4:36: unknown key `timeot` in retry; did you mean `timeout`?",
            "w.yaml:5:18: `max_concurrency` must be at least 1",
            "w.yaml:6:23: `max_tokens` must be at least 1",
            "w.yaml:6:40: `max_cost_usd` must be more than zero",
            "w.yaml:6:57: `max_duration` must be longer than zero",
            "w.yaml:6:62: unknown key `max_cost` in budget; did you mean `max_cost_usd`?",
            "w.yaml:8:15: `input` must not be negative",
            "w.yaml:8:27: `output` must be a number, found a string",
            "w.yaml:9:3: the price of model `b` needs `output:`",
            "w.yaml:10:6: the price of model `c` must be a mapping, found a number",
            "w.yaml:11:29: unknown key `cached` in the price of model `d`",
            "w.yaml:13:27: `attempts` must be at most 20",
            "w.yaml:15:47: `attempts` must be a whole number, found a number",
            "w.yaml:15:61: `timeout` must be longer than zero",
        ]
    );
    assert_eq!(
        problems(
            "name: t\nretry: 3\nbudget: [1]\nprices: [a]\nmax_concurrency: 99999999999\nsteps: [{ run: echo }]\n"
        ),
        [
            "w.yaml:2:8: `retry` must be a mapping, found a number",
            "w.yaml:3:9: `budget` must be a mapping, found a list",
            "w.yaml:4:9: `prices` must be a mapping of model names to prices, found a list",
            "w.yaml:5:18: `max_concurrency` is too large",
        ]
    );
    assert_eq!(
        problems(
            "name: t\nmodel: m\nprovider: { max_connections: 0 }\nagents:\n  a: { provider: { max_connections: 100001 } }\n  b: { provider: { max_connections: many } }\nsteps: [{ agent: a, input: hi }, { agent: b, input: hi }]\n"
        ),
        [
            "w.yaml:3:30: `max_connections` must be at least 1",
            "w.yaml:5:37: `max_connections` must be at most 100000",
            "w.yaml:6:37: `max_connections` must be a whole number, found a string",
        ]
    );
}

#[test]
fn step_control_keys_are_checked() {
    let src = format!(
        "{HEAD}steps:
  - run: echo
    if: \"\"
    continue_on_error: \"yes\"
    timeout: 2 parsecs
    retry: {{ attempts: 2 }}
  - span: S
    fail_fast: true
    as: x
    concurrency: 2
  - parallel: []
  - parallel: {{ run: echo }}
  - foreach: 3
    as: 2nd
    concurrency: 0
    steps: [{{ run: echo }}]
  - foreach: [a]
    as: vars
  - foreach:
    steps: []
  - agent: a
    input: hi
    steps: [{{ run: echo }}]
    fail_fast: false
"
    );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:6:9: `if:` is empty",
            "w.yaml:7:24: `continue_on_error` must be `true` or `false`, found a string",
            "w.yaml:8:14: `timeout` must be a duration like 30s, 2m or 1h",
            "w.yaml:9:5: `retry:` only applies to `agent:` steps",
            "w.yaml:11:5: `fail_fast:` only applies to `parallel:` steps",
            "w.yaml:12:5: `as:` only applies to `foreach:` steps",
            "w.yaml:13:5: `concurrency:` only applies to `foreach:` steps",
            "w.yaml:14:15: `parallel:` has no steps",
            "w.yaml:15:15: `parallel` must be a list of steps, found a mapping",
            "w.yaml:16:14: `foreach` must be a list, or a template like `{{ vars.topics }}` that gives one, found a number",
            "w.yaml:17:9: `as:` name `2nd` must be letters, digits and `_`, not starting with a digit",
            "w.yaml:18:18: `concurrency` must be at least 1",
            "w.yaml:20:5: a `foreach:` step needs `steps:`",
            "w.yaml:21:9: `as: vars` would hide the template variable `vars`",
            "w.yaml:22:12: `foreach:` needs a value (a list, or a template like `{{ vars.topics }}` that gives one)",
            "w.yaml:23:12: `steps:` has no steps",
            "w.yaml:26:5: `steps:` only applies to `span:` and `foreach:` steps",
            "w.yaml:27:5: `fail_fast:` only applies to `parallel:` steps",
        ]
    );
    assert_eq!(
        problems(&format!(
            "{HEAD}steps:\n  - parallel: [{{ run: echo }}]\n    foreach: [a]\n"
        )),
        ["w.yaml:6:5: a step cannot have both `parallel:` and `foreach:`"]
    );
}

#[test]
fn suggestions_are_close_or_prefixes() {
    assert_eq!(suggest("inptu", STEP_KEYS.iter().copied()), Some("input"));
    assert_eq!(
        suggest("instr", AGENT_KEYS.iter().copied()),
        Some("instructions")
    );
    assert_eq!(suggest("zzzz", STEP_KEYS.iter().copied()), None);
    assert_eq!(suggest("x", ["id"]), None);
}

#[test]
fn a_provider_names_its_api_at_the_workflow_or_the_agent() {
    let wf = parsed(
        "name: t\nmodel: m\nprovider: { api: responses }\nagents:\n  a: { provider: { api: chat } }\n  b: {}\n  c: { provider: { base_url: 'http://x' } }\nsteps:\n  - { agent: a, input: hi }\n",
    );
    let api = wf.provider.as_ref().and_then(|p| p.api.as_ref()).unwrap();
    assert_eq!(
        (api.value, api.loc.line, api.loc.col),
        (Api::Responses, 3, 18)
    );
    assert_eq!(wf.api_of("a"), Api::Chat);
    assert_eq!(wf.api_of("b"), Api::Responses);
    // An agent's own provider replaces the workflow's as a whole: no `api:` there is chat.
    assert_eq!(wf.api_of("c"), Api::Chat);
}

#[test]
fn an_unknown_api_or_reasoning_value_names_the_allowed_ones() {
    let src = "name: t\nmodel: m\nprovider: { api: respones }\nagents:\n  a:\n    provider: { api: [chat] }\n    reasoning: { effort: hihg, summary: brief, depth: 3 }\n  b: { reasoning: low }\nsteps:\n  - { agent: a, input: hi }\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:18: `api` must be one of `chat`, `responses`, found `respones`; did you mean `responses`?",
            "w.yaml:6:22: `api` must be a string, found a list",
            "w.yaml:7:26: `reasoning.effort` must be one of `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, found `hihg`; did you mean `high`?",
            "w.yaml:7:41: `reasoning.summary` must be one of `auto`, `concise`, `detailed`, found `brief`",
            "w.yaml:7:48: unknown key `depth` in reasoning",
            "w.yaml:8:19: `reasoning` must be a mapping, found a string",
        ]
    );
}

#[test]
fn reasoning_keeps_effort_and_summary_with_their_places() {
    let wf = parsed(
        "name: t\nmodel: m\nprovider: { api: responses }\nagents:\n  a: { reasoning: { effort: low, summary: auto } }\n  b: {}\nsteps:\n  - { agent: a, input: hi }\n",
    );
    let r = wf.agents["a"].reasoning.as_ref().unwrap();
    assert_eq!(r.effort.as_ref().map(|e| e.value.as_str()), Some("low"));
    assert_eq!(r.summary.as_ref().map(|s| s.value.as_str()), Some("auto"));
    assert_eq!(wf.agents["b"].reasoning, None);
}
