//! Group id and metadata: templated, overridable from the command line, and shared by the
//! traces of one traces file.

use serde_json::json;

use crate::support::*;
use crate::traces::*;

pub(crate) const GROUPED: &str = r#"
name: Grouped
vars: { conversation_id: conv_12345, customer: cust_789 }
group_id: "{{ vars.conversation_id }}"
metadata: { customer_id: "{{ vars.customer }}", priority: high }
steps:
  - id: hello
    run: ["echo", "hello"]
"#;

#[test]
fn group_id_and_metadata_are_templated_and_overridable_from_the_command_line() {
    let env = TestEnv::new().workflow("grouped.yaml", GROUPED);
    assert_exit(&env.run(&["run", "grouped.yaml", "--offline"]), 0);
    let trace = env.show_json("last");
    assert_eq!(trace["group_id"], "conv_12345");
    assert_eq!(
        trace["metadata"],
        json!({"customer_id": "cust_789", "priority": "high", "agentrace.offline": true})
    );

    let out = env.run(&[
        "run",
        "grouped.yaml",
        "--offline",
        "--var",
        "conversation_id=conv_999",
        "--meta",
        "priority=low",
        "--meta",
        "channel=email",
        // The offline mark says what answered the run; it cannot be set or unset by hand.
        "--meta",
        "agentrace.offline=no",
    ]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    assert_eq!(trace["group_id"], "conv_999");
    assert_eq!(
        trace["metadata"],
        json!({"customer_id": "cust_789", "priority": "low", "channel": "email",
               "agentrace.offline": true})
    );

    assert_exit(
        &env.run(&["run", "grouped.yaml", "--offline", "--group", "grp_cli"]),
        0,
    );
    assert_eq!(
        env.show_json("last")["group_id"],
        "grp_cli",
        "--group overrides the file"
    );
}

#[test]
fn a_traces_file_runs_its_traces_in_order_in_one_group() {
    let env = TestEnv::with_fake().workflow(
        "conversation.yaml",
        r#"
name: Conversation
metadata: { channel: chat }
model: gpt-4o-mini
agents:
  support: { instructions: You help customers. }
traces:
  - name: Initial Inquiry
    metadata: { priority: high }
    steps:
      - id: inquiry
        agent: support
        input: Where is my order?
  - name: Follow-up
    steps:
      - id: follow_up
        agent: support
        input: "You said: {{ steps.inquiry.output }}. Can you expedite it?"
"#,
    );
    let (out, lines) = run_json(&env, "conversation.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(lines.len(), 2, "one JSON line per trace");
    assert_eq!(lines[0]["name"], "Initial Inquiry");
    assert_eq!(lines[1]["name"], "Follow-up");
    assert_eq!(lines[0]["workflow"], "Conversation");
    assert_eq!(lines[1]["workflow"], "Conversation");
    let group = lines[0]["group_id"]
        .as_str()
        .expect("a group id is generated when none is given");
    assert!(!group.is_empty());
    assert_eq!(lines[1]["group_id"], group);
    assert_ne!(lines[0]["trace_id"], lines[1]["trace_id"]);

    let requests = env.server().requests();
    assert_eq!(
        requests[1].message("user").as_deref(),
        Some("You said: echo: Where is my order?. Can you expedite it?")
    );
    assert_eq!(
        lines[1]["outputs"]["follow_up"],
        "echo: You said: echo: Where is my order?. Can you expedite it?"
    );

    let first = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    assert_eq!(
        first["metadata"],
        json!({"channel": "chat", "priority": "high"})
    );
    let second = env.show_json(lines[1]["trace_id"].as_str().unwrap());
    assert_eq!(second["metadata"], json!({"channel": "chat"}));
    assert_eq!(outline(&second)[0], "agent support ok");

    let listed = env.list_json(&["--group", group]);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["name"], "Follow-up", "newest first");

    let (out, lines) = run_json(&env, "conversation.yaml", &["--group", "conv_given"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["group_id"], "conv_given");
    assert_eq!(lines[1]["group_id"], "conv_given");
}
