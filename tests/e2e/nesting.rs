//! Nesting, ordering, events and command outputs: spans nest in the order they ran, events
//! land on the enclosing span, and a command's output reaches later steps verbatim.

use serde_json::{Value, json};

use crate::support::*;
use crate::traces::*;

#[test]
fn spans_nest_in_order_with_events_on_the_enclosing_span() {
    let env = TestEnv::new().workflow(
        "nested.yaml",
        r#"
name: Nested
model: gpt-4o-mini
agents:
  writer: { instructions: Write. }
steps:
  - id: first
    run: ["echo", "one"]
  - span: Outer
    events:
      - { name: Outer started, attributes: { phase: 1 } }
    steps:
      - id: second
        run: "echo two"
      - span: Inner
        steps:
          - id: draft
            agent: writer
            input: "Draft from {{ steps.second.output }}"
            mock: A draft.
          - event: Draft written
            attributes: { length: "{{ steps.draft.output | length }}", by: writer }
      - event: Outer done
        attributes: { steps: 2 }
  - id: last
    run: ["echo", "three"]
"#,
    );
    let out = env.run(&["run", "nested.yaml", "--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");

    assert_eq!(
        outline(&trace),
        vec![
            "command ok",
            "custom Outer ok",
            "  command ok",
            "  custom Inner ok",
            "    agent writer ok",
            &format!(
                "      generation {} ok",
                spans(&trace)[5]["name"].as_str().unwrap()
            ),
            "command ok",
        ]
    );
    let outer = find(&trace, "custom", "Outer");
    let inner = find(&trace, "custom", "Inner");
    assert_eq!(event_names(outer), vec!["Outer started", "Outer done"]);
    assert_eq!(
        event(outer, "Outer started")["attributes"],
        json!({"phase": 1})
    );
    assert_eq!(
        event(outer, "Outer done")["attributes"],
        json!({"steps": 2})
    );
    assert_eq!(event_names(inner), vec!["Draft written"]);
    assert_eq!(
        event(inner, "Draft written")["attributes"],
        json!({"length": 8, "by": "writer"}),
        "a lone {{{{ expression }}}} keeps its type"
    );
    assert!(event_names(find(&trace, "agent", "writer")).is_empty());

    // Siblings in start order: the first command started before Outer, Outer before the last.
    let roots: Vec<&Value> = spans(&trace)
        .iter()
        .filter(|s| s["parent_id"].is_null())
        .collect();
    assert_eq!(roots.len(), 3);
    assert!(roots[0]["started_at"].as_str() <= roots[1]["started_at"].as_str());
    assert!(roots[1]["started_at"].as_str() <= roots[2]["started_at"].as_str());
    assert_eq!(roots[0]["attributes"]["argv"], json!(["echo", "one"]));
    assert_eq!(roots[2]["attributes"]["argv"], json!(["echo", "three"]));
    let script = children(&trace, outer)[0];
    assert_eq!(script["attributes"]["script"], "echo two");
    assert_eq!(script["attributes"]["exit_code"], 0);
}

#[test]
fn a_command_printing_json_exposes_its_fields_to_later_templates() {
    let env = TestEnv::new()
        .script(
            "scripts/stats.sh",
            "#!/bin/sh\nprintf '{\"records\": %s, \"source\": \"%s\", \"tags\": [\"a\", \"b\"]}\\n' \"$1\" \"$SRC\"\n",
        )
        .workflow(
            "chain.yaml",
            r#"
name: Chain
vars: { count: "42", source: crm }
steps:
  - id: stats
    run: ["./scripts/stats.sh", "{{ vars.count }}"]
    env: { SRC: "{{ vars.source }}" }
  - id: report
    run: ["printf", "%s|%s|%s", "{{ steps.stats.output.records }}", "{{ steps.stats.output.source }}", "{{ steps.stats.output.tags[1] }}"]
  - id: whole
    run: ["printf", "%s", "{{ steps.stats.output }}"]
"#,
        );
    let (out, lines) = run_json(&env, "chain.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let outputs = &lines[0]["outputs"];
    assert_eq!(outputs["report"], "42|crm|b");
    // Used whole, JSON output renders as the original text: the argument is that text (and
    // the printed copy is data again in `.outputs`).
    let text = "{\"records\": 42, \"source\": \"crm\", \"tags\": [\"a\", \"b\"]}";
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    command_with_argv(&trace, json!(["printf", "%s", text]));
    assert_eq!(outputs["whole"], outputs["stats"]);
    assert_eq!(outputs["whole"]["tags"], json!(["a", "b"]));
}

#[test]
fn argv_and_env_values_reach_the_process_verbatim_never_through_a_shell() {
    let hostile = "$(touch pwned) `touch pwned2`; echo 'quoted' \"x\" > also-pwned";
    let env = TestEnv::new()
        .script("scripts/echo-env.sh", "#!/bin/sh\nprintf '%s' \"$VALUE\"\n")
        .workflow(
            "verbatim.yaml",
            r#"
name: Verbatim
vars: { value: plain }
steps:
  - id: by_argv
    run: ["printf", "%s", "{{ vars.value }}"]
  - id: by_env
    run: ["./scripts/echo-env.sh"]
    env: { VALUE: "{{ vars.value }}" }
"#,
        );
    let (out, lines) = run_json(
        &env,
        "verbatim.yaml",
        &["--offline", "--var", &format!("value={hostile}")],
    );
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["by_argv"], hostile);
    assert_eq!(lines[0]["outputs"]["by_env"], hostile);
    for f in ["pwned", "pwned2", "also-pwned"] {
        assert!(
            !env.path().join(f).exists(),
            "{f} was created: a value went through a shell"
        );
    }
}
