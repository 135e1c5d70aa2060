//! Reading one trace back with `show` (by id, unique prefix or `last`; the tree), and what
//! unusable input does: exit 2, a message on stderr, nothing written.

use crate::groups::GROUPED;
use crate::shapes::SHAPES;
use crate::support::*;
use crate::traces::*;

#[test]
fn unusable_input_exits_2_and_writes_nothing() {
    let env = TestEnv::new().workflow("grouped.yaml", GROUPED);
    let cases: &[&[&str]] = &[
        &["run", "grouped.yaml", "--offline", "--var", "nope=1"],
        &[
            "run",
            "grouped.yaml",
            "--offline",
            "--var",
            "missing-equals",
        ],
        &["run", "missing.yaml", "--offline"],
        &["run", "grouped.yaml", "--offline", "--format", "yaml"],
        &["run"],
        &["frobnicate"],
    ];
    for args in cases {
        let out = env.run(args);
        assert_exit(&out, 2);
        assert!(
            !stderr(&out).trim().is_empty(),
            "{args:?}: a message on stderr"
        );
        assert_eq!(stdout(&out), "", "{args:?}: nothing on stdout");
    }
    let out = env.run(&["run", "grouped.yaml", "--offline", "--var", "nope=1"]);
    assert!(
        stderr(&out).contains("nope"),
        "the unknown var is named:\n{}",
        stderr(&out)
    );
    // What each says, word for word: a bad value of a flag, an unknown flag, an unknown command.
    let _filters = snapshot_filters(&env).bind_to_scope();
    for (name, args) in [
        (
            "bad_flag_value",
            &["run", "grouped.yaml", "--offline", "--format", "yaml"][..],
        ),
        (
            "unknown_flag",
            &["run", "grouped.yaml", "--offline", "--frobnicate"][..],
        ),
        ("unknown_command", &["frobnicate"][..]),
    ] {
        let out = env.run(args);
        assert_exit(&out, 2);
        insta::assert_snapshot!(name, stderr(&out));
    }
    assert!(!env.store_exists(), "no partial store");
}

#[test]
fn show_finds_last_a_unique_prefix_and_rejects_unknown_ids() {
    let env = TestEnv::new().workflow("grouped.yaml", GROUPED);
    let (_, a) = run_json(&env, "grouped.yaml", &["--offline"]);
    let (_, b) = run_json(&env, "grouped.yaml", &["--offline"]);
    let a = a[0]["trace_id"].as_str().unwrap().to_string();
    let b = b[0]["trace_id"].as_str().unwrap().to_string();

    assert_eq!(env.show_json("last")["trace_id"], b.as_str());
    assert_eq!(env.show_json(&a)["trace_id"], a.as_str());
    // A prefix long enough to be unique (ids are time-ordered, so share a long prefix).
    let unique = &a[..a.len() - 2];
    assert_eq!(env.show_json(unique)["trace_id"], a.as_str());

    for bad in [
        "trace_00000000000000000000000000000000",
        "nonsense",
        "trace_",
    ] {
        let out = env.run(&["show", bad, "--format", "json"]);
        assert_exit(&out, 2);
        assert_eq!(stdout(&out), "");
    }
}

#[test]
fn show_last_on_an_empty_store_exits_2() {
    let env = TestEnv::new();
    assert_exit(&env.run(&["show", "last"]), 2);
}

#[test]
fn show_prints_a_tree_with_kinds_names_events_and_no_colour() {
    let env = TestEnv::new().workflow("shapes.yaml", SHAPES);
    assert_exit(
        &env.run(&["run", "shapes.yaml", "--offline", "--format", "none"]),
        0,
    );
    let out = env.run(&["show", "last"]);
    assert_exit(&out, 0);
    let tree = stdout(&out);
    assert!(
        !tree.contains('\u{1b}'),
        "NO_COLOR: no escape codes:\n{tree}"
    );
    let trace = env.show_json("last");
    for needle in [
        trace["trace_id"].as_str().unwrap(),
        "Shapes",
        "grp_1",
        "cust_789",
        "Data Preparation",
        "Phase started",
        "Data loaded",
        "records",
        "helper",
        "custom",
        "agent",
        "generation",
        "command",
    ] {
        assert!(tree.contains(needle), "the tree shows {needle:?}:\n{tree}");
    }
    // Below 60 columns there are no bars, so the whole tree is a stable snapshot.
    let narrow = env.run_with(&["show", "last"], |c| {
        c.env("COLUMNS", "59");
    });
    assert_exit(&narrow, 0);
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!("tree", stdout(&narrow));

    // `run` prints the same tree by default, on stdout.
    let out = env.run(&["run", "shapes.yaml", "--offline"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Data Preparation"));
}

#[test]
fn quiet_run_with_format_none_prints_nothing() {
    let env = TestEnv::new().workflow("grouped.yaml", GROUPED);
    let out = env.run(&["-q", "run", "grouped.yaml", "--offline", "--format", "none"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "");
}

/// An agent with a long system prompt that calls a tool, then answers.
const LOOKUP: &str = r#"
name: Lookup
model: gpt-4o-mini
tools:
  lookup:
    description: Look up the stock of a SKU
    parameters:
      type: object
      properties: { sku: { type: string } }
    command: ["echo", "12 units in aisle 4"]
agents:
  clerk:
    instructions: |
      You check stock.
      Rule 2.
      Rule 3.
      Rule 4.
      Rule 5.
      Rule 6.
      Rule 7.
      Rule 8.
      Rule 9.
      Rule 10.
    tools: [lookup]
steps:
  - id: ask
    agent: clerk
    input: Is SKU-1 in stock?
"#;

/// The spans of a tree (the lines from the first span on): the header is another concern.
fn spans_of(tree: &str) -> String {
    let start = tree
        .lines()
        .position(|l| l.starts_with("├─") || l.starts_with("└─"))
        .unwrap_or(0);
    tree.lines().skip(start).map(|l| format!("{l}\n")).collect()
}

#[test]
fn show_content_shows_what_is_new_in_each_model_call_and_full_shows_everything() {
    let env = TestEnv::with_fake().workflow("lookup.yaml", LOOKUP);
    env.server().push_all([
        Reply::tool_call("lookup", serde_json::json!({"sku": "SKU-1"})),
        Reply::text("Yes: 12 units, aisle 4.", 40, 8),
    ]);
    assert_exit(&env.run(&["run", "lookup.yaml", "--format", "none"]), 0);
    let show = |args: &[&str]| {
        let out = env.run_with(&[&["show", "last"], args].concat(), |c| {
            c.env("COLUMNS", "59");
        });
        assert_exit(&out, 0);
        spans_of(&stdout(&out))
    };
    let _filters = snapshot_filters(&env).bind_to_scope();
    // The first call: the system prompt (cut) and the user message, then the tool call it
    // made; the second: only the tool result, then the answer.
    let content = show(&["--content"]);
    insta::assert_snapshot!("content_new_in_each_call", content);
    assert!(content.contains("user: Is SKU-1 in stock?"), "{content}");
    assert!(content.contains("lookup({\"sku\":\"SKU-1\"})"), "{content}");
    assert!(
        content.contains("tool lookup: 12 units in aisle 4"),
        "{content}"
    );
    assert_eq!(content.matches("system: You check stock.").count(), 1);
    // --full: every message of every call, nothing cut (and --content is implied).
    let full = show(&["--full"]);
    insta::assert_snapshot!("content_full", full);
    assert_eq!(full.matches("system: You check stock.").count(), 2);
    assert!(full.contains("Rule 10."), "{full}");
    assert!(!full.contains("more line"), "{full}");
}
