//! Validation's specification: each relation it checks, the message and help it gives, and the
//! point of execution each template is checked against.

use std::path::PathBuf;

use super::*;
use crate::workflow::check_str;
// Validation's input is a parsed workflow: the tests build it with the parser.
use crate::workflow::parse::parse_str;

/// Every problem in the file, parse and validation together, as `FILE:LINE:COL: message`.
fn problems(src: &str) -> Vec<String> {
    let (_, diags) = check_str("w.yaml", PathBuf::from("w.yaml"), src);
    diags.iter().map(Diagnostic::headline).collect()
}

fn helps(src: &str) -> Vec<String> {
    let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
    assert_eq!(diags, [], "parse problems");
    validate(&wf.expect("a workflow"))
        .into_iter()
        .map(|d| d.help.unwrap_or_default())
        .collect()
}

const HEAD: &str =
    "name: t\nmodel: m\nvars: { topic: x }\nagents:\n  writer: { instructions: hi }\n";

#[test]
fn duplicate_ids_point_at_the_second_and_name_the_first() {
    let src = format!(
        "{HEAD}traces:\n  - name: a\n    steps:\n      - {{ id: s, run: echo }}\n  - name: b\n    steps:\n      - span: S\n        steps:\n          - {{ id: s, run: echo }}\n"
    );
    assert_eq!(
        problems(&src),
        ["w.yaml:14:19: duplicate step id `s` (first used on line 9)"]
    );
}

#[test]
fn agents_must_exist_and_have_a_model() {
    let src = "name: t\nagents:\n  writer: {}\n  critic: { model: m }\nsteps:\n  - { agent: writr, input: a }\n  - { agent: writer, input: b }\n  - { agent: writer, input: c }\n  - { agent: critic, input: d }\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:3: agent `writer` has no model: set `model:` on the agent or at the top level",
            "w.yaml:6:14: unknown agent `writr`; did you mean `writer`?",
        ]
    );
}

#[test]
fn an_event_step_belongs_inside_a_span() {
    let src =
        "name: t\nsteps:\n  - event: too early\n  - span: S\n    steps:\n      - event: fine\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:5: an `event:` step must be inside a `span:` block; events belong to the enclosing span"
        ]
    );
}

#[test]
fn a_shell_script_may_not_hold_templates() {
    let src = "name: t\nvars: { topic: x }\nsteps:\n  - run: echo {{ vars.topic }}\n  - run: \"echo {% if true %}y{% endif %}\"\n  - run: [echo, \"{{ vars.topic }}\"]\n    env: { TOPIC: \"{{ vars.topic }}\" }\n  - run: echo \"$TOPIC\"\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:4:10: templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form",
            "w.yaml:5:10: templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form",
        ]
    );
    assert_eq!(
        helps(src)[0],
        "pass the value through `env:` (env: { TOPIC: \"{{ vars.topic }}\" }, then use \"$TOPIC\" in the script) or use the argv form `run: [prog, arg]`, which never goes through a shell"
    );
}

#[test]
fn template_syntax_is_checked_in_every_templated_field() {
    let src = r#"name: "{{ bad"
model: m
group_id: "{{ bad"
metadata: { k: "{{ bad" }
agents:
  writer: { instructions: "{{ bad" }
traces:
  - name: "{% if %}"
    metadata: { k: ["ok", "{{ bad"] }
    steps:
      - name: "{{ bad"
        agent: writer
        input: "{{ bad"
      - run: [echo, "{{ bad"]
        env: { A: "{{ bad" }
      - span: "{{ bad"
        events:
          - { name: "{{ bad", attributes: { a: { deep: "{{ bad" } } }
        steps:
          - event: "{{ bad"
            attributes: { b: "{{ bad" }
"#;
    let e = "template error: syntax error: unexpected end of input, expected end of variable block";
    let expected: Vec<String> = [
        (3, 11),
        (4, 16),
        (6, 27),
        (8, 11),
        (9, 20),
        (11, 15),
        (13, 16),
        (14, 21),
        (15, 19),
        (16, 15),
        (18, 21),
        (18, 48),
        (20, 20),
        (21, 30),
    ]
    .iter()
    .map(|(l, c)| format!("w.yaml:{l}:{c}: {e}"))
    .collect();
    let mut expected = expected;
    expected[3] = "w.yaml:8:11: template error: syntax error: unexpected end of block".into();
    assert_eq!(problems(src), expected);
}

#[test]
fn templates_can_use_vars_steps_and_trace_only() {
    let src = format!(
        "{HEAD}steps:\n  - id: a\n    agent: writer\n    input: \"{{{{ vars.topc }}}} {{{{ foo }}}} {{{{ trace.name }}}} {{{{ trace.id }}}} {{{{ range(2) | list }}}}\"\n"
    );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:9:12: unknown variable `foo`; templates can use `vars`, `steps` and `trace`",
            "w.yaml:9:12: `trace.name`: a trace has `id` and `group_id`",
            "w.yaml:9:12: unknown variable `vars.topc`; did you mean `vars.topic`?",
        ]
    );
}

#[test]
fn step_references_follow_execution_order() {
    let src = format!(
            "{HEAD}steps:
  - id: first
    agent: writer
    input: \"{{{{ steps.later.output }}}} {{{{ steps.first.output }}}} {{{{ steps.frist.output }}}}\"
  - id: second
    run: [echo, \"{{{{ steps.first.outptu }}}}\", \"{{{{ steps.first.status }}}}\", \"{{{{ steps.first.output.field }}}}\"]
  - id: later
    run: echo
"
        );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:9:12: step `first` cannot use its own output",
            "w.yaml:9:12: unknown step `frist`; did you mean `first`?",
            "w.yaml:9:12: step `later` has not run yet at this point",
            "w.yaml:11:17: `steps.first.outptu`: a step has `output` and `status`; did you mean `steps.first.output`?",
        ]
    );
}

#[test]
fn spans_and_workflow_level_values_render_before_their_steps() {
    let src = r#"name: t
group_id: "{{ steps.a.output }}"
metadata: { m: "{{ steps.a.output }}" }
traces:
  - name: one
    steps:
      - id: a
        run: echo
      - span: "{{ steps.inner.output }}"
        events: [{ name: e, attributes: { x: "{{ steps.inner.output }}", y: "{{ steps.a.output }}" } }]
        steps:
          - { id: inner, run: echo }
          - { event: done, attributes: { n: "{{ steps.inner.output | length }}" } }
  - name: "two after {{ steps.a.output }}"
    metadata: { m: "{{ steps.inner.status }}", n: "{{ steps.b.output }}" }
    steps:
      - { id: b, run: echo }
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:2:11: step `a` has not run yet at this point",
            "w.yaml:3:16: step `a` has not run yet at this point",
            "w.yaml:9:15: step `inner` has not run yet at this point",
            "w.yaml:10:46: step `inner` has not run yet at this point",
            "w.yaml:15:51: step `b` has not run yet at this point",
        ]
    );
    let helps = helps(src);
    assert_eq!(
        helps[0],
        "the top-level `group_id` and `metadata` are rendered before any step runs"
    );
    assert_eq!(
        helps[2],
        "a span's name and events are rendered when the span starts"
    );
}

#[test]
fn agent_instructions_are_checked_where_each_step_uses_the_agent() {
    let src = r#"name: t
model: m
agents:
  writer: { instructions: "Improve {{ steps.draft.output }} {{ vars.nope }}" }
steps:
  - { id: early, agent: writer, input: go }
  - { id: draft, run: echo }
  - { id: late, agent: writer, input: go }
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:4:27: unknown variable `vars.nope`",
            "w.yaml:4:27: step `draft` has not run yet at this point",
        ]
    );
    assert_eq!(
        helps(src)[1],
        "the instructions of agent `writer` are rendered when step `early` runs (line 6)"
    );
}

#[test]
fn tool_parameters_and_output_schemas_must_compile() {
    let src = r#"name: t
model: m
tools:
  typo: { command: [a], parameters: { type: objekt } }
  deep: { command: [a], parameters: { type: object, properties: { n: { pattern: "(" } } } }
  list: { command: [a], parameters: { type: array, items: { type: string } } }
  untyped: { command: [a], parameters: { properties: {} } }
  remote: { command: [a], parameters: { $ref: "http://example.com/s.json" } }
  fine: { command: [a], parameters: { type: object, properties: { n: { type: integer } } } }
agents:
  a: { output_schema: { type: object, required: x } }
  b: { output_schema: { type: string } }
steps:
  - { agent: a, input: hi }
"#;
    assert_eq!(
        problems(src),
        [
            r#"w.yaml:4:37: the `parameters` of tool `typo` is not a valid JSON Schema: "objekt" is not valid under any of the schemas listed in the 'anyOf' keyword (at `/type`)"#,
            r#"w.yaml:5:37: the `parameters` of tool `deep` is not a valid JSON Schema: "(" is not a "regex" (at `/properties/n/pattern`)"#,
            "w.yaml:6:37: the `parameters` of tool `list` must have `type: object`, found `type: \"array\"`",
            "w.yaml:7:40: the `parameters` of tool `untyped` must have `type: object`",
            "w.yaml:8:39: the `parameters` of tool `remote` is not a valid JSON Schema: Resource 'http://example.com/s.json' is not present in a registry and retrieving it failed: `resolve-http` feature or a custom resolver is required to resolve external schemas via HTTP",
            r#"w.yaml:11:23: the `output_schema` of agent `a` is not a valid JSON Schema: "x" is not of type "array" (at `/required`)"#,
        ]
    );
    assert_eq!(
        helps(src)[2],
        "a tool's arguments are one JSON object: `{ type: object, properties: { ... } }`"
    );
}

#[test]
fn agents_list_known_tools_and_handoffs() {
    let src = r#"name: t
model: m
tools:
  lookup: { command: [a] }
  refund: { command: [a] }
agents:
  triage:
    tools: [lookpu, refund, refund, zzz]
    handoffs: [billing, triage, biling, billing, ghost, "Billing Desk"]
  billing: {}
  Billing Desk: {}
steps:
  - { agent: triage, input: hi }
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:8:13: unknown tool `lookpu`; did you mean `lookup`?",
            "w.yaml:8:29: agent `triage` lists tool `refund` twice",
            "w.yaml:8:37: unknown tool `zzz`",
            "w.yaml:9:25: agent `triage` cannot hand off to itself",
            "w.yaml:9:33: unknown agent `biling`; did you mean `billing`?",
            "w.yaml:9:41: agent `triage` lists handoff `billing` twice",
            "w.yaml:9:50: unknown agent `ghost`",
            "w.yaml:9:57: agent `Billing Desk` cannot be a handoff target: `transfer_to_Billing Desk` is not a valid tool name",
        ]
    );
    assert_eq!(helps(src)[2], "tools defined: `lookup`, `refund`");
    assert_eq!(
        helps(src)[6],
        "agents defined: `triage`, `billing`, `Billing Desk`"
    );
}

#[test]
fn mock_turns_name_tools_and_handoffs_the_agent_can_take() {
    let src = r#"name: t
model: m
tools:
  lookup: { command: [a] }
agents:
  triage: { tools: [lookup], handoffs: [billing] }
  billing: { handoffs: [refunds] }
  refunds: {}
  other: {}
steps:
  - agent: triage
    input: hi
    mock:
      - tool_calls: [{ name: lookup, arguments: { q: 1 } }, { name: lokup }, { name: transfer_to_billing }]
      - handoff: billing
      - handoff: refunds
      - answer
  - agent: triage
    input: hi
    mock: [{ handoff: refunds }, { handoff: other }, { handoff: bilings }]
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:14:69: unknown tool `lokup`; did you mean `lookup`?",
            "w.yaml:14:86: unknown tool `transfer_to_billing`",
            "w.yaml:20:23: mock hands off to `refunds`, which agent `triage` cannot hand off to",
            "w.yaml:20:45: mock hands off to `other`, which agent `refunds` cannot hand off to",
            "w.yaml:20:65: unknown agent `bilings`; did you mean `billing`?",
        ]
    );
    let helps = helps(src);
    assert_eq!(
        helps[1],
        "handoffs are written `handoff: billing` (in `mock:`) or listed under `handoffs:`"
    );
    assert_eq!(
        helps[2],
        "add `refunds` to the `handoffs:` of agent `triage`"
    );
}

#[test]
fn sessions_use_vars_and_tool_commands_use_vars_and_trace() {
    let src = r#"name: t
model: m
vars: { cid: c1 }
tools:
  look: { command: [a, "{{ vars.cid }} {{ trace.id }} {{ trace.group_id }}", "{{ steps.s.output }}", "{{ vars.cdi }}", "{{ bad"] }
agents:
  w: { tools: [look] }
steps:
  - id: s
    agent: w
    input: hi
    session: "{{ vars.cid }}-{{ range(2) | length }}"
  - id: u
    agent: w
    input: hi
    session: "{{ trace.group_id }} {{ steps.s.output }} {{ vars.nope }}"
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:5:78: `steps.s.output`: tool commands can only use `vars` and `trace`",
            "w.yaml:5:102: unknown variable `vars.cdi`; did you mean `vars.cid`?",
            "w.yaml:5:120: template error: syntax error: unexpected end of input, expected end of variable block",
            "w.yaml:16:14: `steps.s.output`: a `session:` can only use `vars`",
            "w.yaml:16:14: `trace.group_id`: a `session:` can only use `vars`",
            "w.yaml:16:14: unknown variable `vars.nope`",
        ]
    );
    assert_eq!(
        helps(src)[3],
        "the session key is rendered when the trace starts, because the trace's group id defaults to it"
    );
}

#[test]
fn handoff_targets_run_in_the_step_so_they_need_a_model_and_their_instructions_are_checked_there() {
    let src = r#"name: t
agents:
  triage: { model: m, handoffs: [billing] }
  billing: { handoffs: [triage], instructions: "{{ steps.later.output }}" }
steps:
  - { id: first, agent: triage, input: hi }
  - { id: later, run: echo }
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:4:3: agent `billing` has no model: set `model:` on the agent or at the top level",
            "w.yaml:4:48: step `later` has not run yet at this point",
        ]
    );
    assert_eq!(
        helps(src)[1],
        "the instructions of agent `billing` are rendered when step `first` runs (line 6)"
    );
}

#[test]
fn conditions_are_expressions_checked_like_templates() {
    let src = format!(
            "{HEAD}steps:
  - id: check
    run: echo
  - if: steps.check.status == 'ok' and vars.topic
    run: echo
  - if: \"{{{{ steps.check.status != 'skipped' }}}}\"
    run: echo
  - if: steps.check.status ==
    run: echo
  - if: \"{{{{ steps.check.output }}}} == 'x'\"
    run: echo
  - id: own
    if: steps.own.output or steps.later.output or steps.chek.output or vars.topc or foo
    run: echo
  - if: steps.check.status == 'success' or 'failure' != steps.check.status or steps.check.status == 'sucess'
    run: echo
  - run: [echo, \"{{% if steps.check.status == 'passed' %}}y{{% endif %}}\", \"steps.check.status == 'plain text'\"]
  - if: true
    run: echo
  - id: later
    run: echo
"
        );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:13:9: `if:` is not a valid expression: syntax error: unexpected end of input, expected expression",
            "w.yaml:15:9: `if:` is not a valid expression: syntax error: unexpected `}`, expected `:`",
            "w.yaml:18:9: unknown variable `foo`; templates can use `vars`, `steps` and `trace`",
            "w.yaml:18:9: unknown step `chek`; did you mean `check`?",
            "w.yaml:18:9: step `later` has not run yet at this point",
            "w.yaml:18:9: step `own` cannot use its own output",
            "w.yaml:18:9: unknown variable `vars.topc`; did you mean `vars.topic`?",
            "w.yaml:20:9: `steps.check.status` is `ok`, `error` or `skipped`, never `success`; did you mean `ok`?",
            "w.yaml:20:9: `steps.check.status` is `ok`, `error` or `skipped`, never `failure`; did you mean `error`?",
            "w.yaml:20:9: `steps.check.status` is `ok`, `error` or `skipped`, never `sucess`",
            "w.yaml:22:17: `steps.check.status` is `ok`, `error` or `skipped`, never `passed`; did you mean `ok`?",
        ]
    );
    assert_eq!(
        helps(&src)[1],
        "write the condition bare (`steps.check.status == 'ok'`) or as one `{{ ... }}`"
    );
}

#[test]
fn foreach_lists_are_lists_or_one_expression() {
    let src = format!(
        "{HEAD}vars: {{ topics: [a, b] }}
steps:
  - id: first
    foreach: \"{{{{ vars.topics }}}}\"
    steps: [{{ run: echo }}]
  - foreach: \"{{{{ vars.topics }}}} and {{{{ vars.topics }}}}\"
    steps: [{{ run: echo }}]
  - foreach: a, b
    steps: [{{ run: echo }}]
  - id: loop
    foreach: \"{{{{ steps.loop.output }}}}{{{{ steps.later.output }}}}\"
    steps: [{{ run: echo }}]
  - foreach: [\"{{{{ vars.topic }}}}\", \"{{{{ vars.nope }}}}\", \"{{{{ item }}}}\", 3]
    steps: [{{ run: echo }}]
  - foreach: \"{{{{ steps.first.output | map(attribute='x') | list }}}}\"
    steps: [{{ run: echo }}]
  - foreach: \"{{{{ bad\"
    steps: [{{ run: echo }}]
  - {{ id: later, run: echo }}
"
    )
    .replacen("vars: { topic: x }\n", "", 1);
    assert_eq!(
        problems(&src),
        [
            "w.yaml:10:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
            "w.yaml:12:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
            "w.yaml:15:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
            "w.yaml:15:14: step `later` has not run yet at this point",
            "w.yaml:15:14: step `loop` cannot use its own output",
            "w.yaml:17:14: unknown variable `vars.topic`; did you mean `vars.topics`?",
            "w.yaml:17:14: unknown variable `vars.nope`",
            "w.yaml:17:14: unknown variable `item`; templates can use `vars`, `steps` and `trace`",
            "w.yaml:21:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
            "w.yaml:21:14: template error: syntax error: unexpected end of input, expected end of variable block",
        ]
    );
    let helps = helps(&src);
    assert_eq!(
        helps[1],
        "write the items as a YAML list (`foreach: [a, b]`) or name one with `{{ vars.topics }}`"
    );
    assert_eq!(
        helps[3],
        "a `foreach:` list is rendered before the loop starts"
    );
}

#[test]
fn the_loop_variable_is_defined_inside_its_loop_only() {
    let src = format!(
        "{HEAD}steps:
  - foreach: [a, b]
    steps:
      - id: inner
        if: item != 'b'
        agent: writer
        input: \"{{{{ item }}}} {{{{ item.name }}}} {{{{ itme }}}}\"
        session: \"{{{{ item }}}}\"
      - foreach: [c]
        as: sub
        steps:
          - run: [echo, \"{{{{ item }}}} {{{{ sub }}}} {{{{ other }}}}\"]
      - run: [echo, \"{{{{ sub }}}}\"]
  - if: item
    run: [echo, \"{{{{ item }}}}\"]
"
    );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:12:16: unknown variable `itme`; did you mean `item`?",
            "w.yaml:13:18: `item`: a `session:` can only use `vars`",
            "w.yaml:17:25: unknown variable `other`; templates can use `vars`, `steps`, `trace`, `item` and `sub` here",
            "w.yaml:18:21: unknown variable `sub`; templates can use `vars`, `steps`, `trace` and `item` here",
            "w.yaml:19:9: unknown variable `item`; templates can use `vars`, `steps` and `trace`",
            "w.yaml:20:17: unknown variable `item`; templates can use `vars`, `steps` and `trace`",
        ]
    );
    assert_eq!(
        helps(&src)[3],
        "`sub` is the variable of the `foreach:` on line 14; it is only defined in that loop's `steps:`"
    );
}

#[test]
fn steps_inside_a_loop_run_per_item_and_are_reached_through_the_loop() {
    let src = format!(
            "{HEAD}steps:
  - {{ id: before, run: echo }}
  - id: loop
    foreach: [a]
    steps:
      - {{ id: one, run: [echo, \"{{{{ steps.before.output }}}} {{{{ steps.loop.output }}}}\"] }}
      - {{ id: two, run: [echo, \"{{{{ steps.one.output }}}}\"] }}
      - span: S
        steps:
          - foreach: [b]
            steps: [{{ id: deep, run: echo }}]
          - {{ run: [echo, \"{{{{ steps.deep.output }}}}\"] }}
  - foreach: [c]
    steps: [{{ id: anonymous, run: echo }}]
  - run: [echo, \"{{{{ steps.loop.output }}}} {{{{ steps.two.output }}}} {{{{ steps.deep.status }}}} {{{{ steps.anonymous.output }}}}\"]
"
        );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:11:32: step `loop` has not run yet at this point",
            "w.yaml:17:27: step `deep` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)",
            "w.yaml:20:17: step `anonymous` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)",
            "w.yaml:20:17: step `deep` is inside a `foreach:`; use the loop's own output (`steps.loop.output`)",
            "w.yaml:20:17: step `two` is inside a `foreach:`; use the loop's own output (`steps.loop.output`)",
        ]
    );
    assert_eq!(
        helps(&src)[3],
        "the steps of a loop run once per item; the loop's output is the list of each item's last output"
    );
}

#[test]
fn parallel_branches_cannot_see_each_other() {
    let src = format!(
            "{HEAD}steps:
  - {{ id: before, run: echo }}
  - id: checks
    parallel:
      - {{ id: a, run: [echo, \"{{{{ steps.before.output }}}} {{{{ steps.b.output }}}}\"] }}
      - span: B
        steps:
          - {{ id: b, run: echo }}
          - {{ id: b2, run: [echo, \"{{{{ steps.b.output }}}} {{{{ steps.a.output }}}} {{{{ steps.checks.output }}}}\"] }}
      - foreach: [x]
        steps: [{{ id: looped, run: echo }}]
      - event: started
  - run: [echo, \"{{{{ steps.a.output }}}} {{{{ steps.b2.output }}}} {{{{ steps.checks.status }}}} {{{{ steps.looped.output }}}}\"]
"
        );
    assert_eq!(
        problems(&src),
        [
            "w.yaml:10:30: step `b` runs in a parallel branch beside this one",
            "w.yaml:14:35: step `a` runs in a parallel branch beside this one",
            "w.yaml:14:35: step `checks` has not run yet at this point",
            "w.yaml:18:17: step `looped` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)",
        ]
    );
    assert_eq!(
        helps(&src)[0],
        "the branches of a `parallel:` step run at the same time; use their outputs in the steps after it"
    );
}

#[test]
fn events_need_a_span_and_parallel_steps_and_loop_items_are_spans() {
    let src = "name: t\nsteps:\n  - event: too early\n  - parallel:\n      - event: on the parallel span\n      - run: echo\n  - foreach: [a]\n    steps:\n      - event: \"on the item span of {{ item }}\"\n      - parallel: [{ event: nested }]\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:3:5: an `event:` step must be inside a `span:` block; events belong to the enclosing span"
        ]
    );
}

#[test]
fn every_problem_in_a_file_is_reported_at_once() {
    let src = r#"name: many problems
vars: { topic: x }
agents:
  writer: { instructions: "{{ vars.topic }", temprature: 1 }
steps:
  - id: one
    agent: ghost
    input: "{{ steps.two.output }}"
  - id: one
    run: "echo {{ vars.topic }}"
  - event: loose
  - id: two
    run: [echo]
    input: nope
"#;
    assert_eq!(
        problems(src),
        [
            "w.yaml:4:27: template error: syntax error: unexpected `}`, expected end of variable block",
            "w.yaml:4:46: unknown key `temprature` in agent `writer`; did you mean `temperature`?",
            "w.yaml:7:12: unknown agent `ghost`",
            "w.yaml:8:12: step `two` has not run yet at this point",
            "w.yaml:9:9: duplicate step id `one` (first used on line 6)",
            "w.yaml:10:10: templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form",
            "w.yaml:11:5: an `event:` step must be inside a `span:` block; events belong to the enclosing span",
            "w.yaml:14:5: `input:` only applies to `agent:` steps",
        ]
    );
}

#[test]
fn a_reasoning_summary_needs_the_responses_api() {
    let src = "name: t\nmodel: m\nagents:\n  a: { reasoning: { effort: high, summary: auto } }\n  b:\n    provider: { api: responses }\n    reasoning: { summary: detailed }\nsteps:\n  - { agent: a, input: x }\n  - { agent: b, input: y }\n";
    assert_eq!(
        problems(src),
        [
            "w.yaml:4:44: agent `a` asks for a reasoning summary, which only the Responses API gives: its provider uses `api: chat`"
        ]
    );
    assert_eq!(
        helps(src),
        [
            "set `api: responses` on the agent's (or the workflow's) `provider:`, or remove `summary`"
        ]
    );
    // Effort alone is fine on Chat Completions (sent as `reasoning_effort`).
    let effort_only = src.replace(", summary: auto", "");
    assert_eq!(problems(&effort_only), Vec::<String>::new());
}
