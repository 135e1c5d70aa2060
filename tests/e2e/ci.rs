//! End-to-end tests of expectations and the CI outputs of `run`: `expect:` on steps and on the
//! workflow, `--junit FILE` (parsed back with an XML parser), `$GITHUB_STEP_SUMMARY` and the
//! `::error` annotations under `GITHUB_ACTIONS=true`.

use serde_json::{Value, json};

use crate::support::*;
use crate::traces::*;

/// The `expectation` events of a span, as (check, expected, passed, actual) tuples.
fn expectations(span: &Value) -> Vec<(String, Value, bool, Value)> {
    span["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "expectation")
        .map(|e| {
            let a = &e["attributes"];
            (
                a["check"].as_str().unwrap().to_string(),
                a["expected"].clone(),
                a["passed"].as_bool().unwrap(),
                a["actual"].clone(),
            )
        })
        .collect()
}

const SUPPORT: &str = r#"name: Support
model: gpt-4o-mini
agents:
  helper: { instructions: Answer the customer. }
steps:
  - id: answer
    agent: helper
    input: Where is my money?
    mock: "Your refund of $20 is on its way."
    expect:
      contains: [refund, "$20"]
      not_contains: sorry
      matches: "^Your \\w+"
      max_tokens: 1000
      max_duration: 30s
  - id: order
    run: [echo, '{"id": 7, "state": "shipped"}']
    expect:
      equals: '{"id": 7, "state": "shipped"}'
      json_schema:
        type: object
        required: [id, state]
        properties: { id: { type: integer }, state: { enum: [shipped, pending] } }
"#;

#[test]
fn every_passing_expectation_is_an_event_on_its_steps_span() {
    let env = TestEnv::new().workflow("support.yaml", SUPPORT);
    let out = env.run(&["run", "support.yaml", "--offline", "--format", "none"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "helper");
    assert_eq!(
        expectations(agent),
        [
            (
                "contains".into(),
                json!("refund"),
                true,
                json!("Your refund of $20 is on its way.")
            ),
            (
                "contains".into(),
                json!("$20"),
                true,
                json!("Your refund of $20 is on its way.")
            ),
            (
                "not_contains".into(),
                json!("sorry"),
                true,
                json!("Your refund of $20 is on its way.")
            ),
            (
                "matches".into(),
                json!("^Your \\w+"),
                true,
                json!("Your refund of $20 is on its way.")
            ),
            (
                "max_tokens".into(),
                json!(1000),
                true,
                agent["attributes"]["usage"]["total_tokens"].clone()
            ),
            (
                "max_duration".into(),
                json!("30s"),
                true,
                expectations(agent)[5].3.clone()
            ),
        ]
    );
    assert!(
        expectations(agent)[5].3.as_str().unwrap().ends_with("ms"),
        "a duration as text"
    );
    // The events are on the step's span, not on its model call.
    assert!(event_names(find(&trace, "generation", "gpt-4o-mini")).is_empty());
    let command = find(&trace, "command", "order");
    let checks: Vec<(String, bool)> = expectations(command)
        .into_iter()
        .map(|(c, _, p, _)| (c, p))
        .collect();
    assert_eq!(
        checks,
        [("equals".into(), true), ("json_schema".into(), true)]
    );
}

#[test]
fn a_failed_expectation_fails_the_step_and_the_run_naming_step_check_and_actual_value() {
    let yaml = SUPPORT
        .replace("contains: [refund, \"$20\"]", "contains: [refund, credit]")
        .replace("max_tokens: 1000", "max_tokens: 3");
    let env = TestEnv::new().workflow("support.yaml", &yaml);
    let (out, lines) = run_json(&env, "support.yaml", &["--offline"]);
    assert_exit(&out, 1);
    let message = "step `answer`: expected output to contain \"credit\", got \"Your refund of $20 is on its way.\"; expected at most 3 tokens, used";
    assert!(
        stderr(&out).contains(&format!("error: {message}")),
        "{}",
        stderr(&out)
    );
    assert_eq!(lines[0]["status"], "error");
    assert!(
        lines[0]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(message)
    );
    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "helper");
    assert_eq!(agent["status"], "error");
    let passed: Vec<bool> = expectations(agent).iter().map(|e| e.2).collect();
    assert_eq!(passed, [true, false, true, true, false, true]);
    let failed = &agent["error"]["data"]["expectations"];
    assert_eq!(failed[0]["check"], "contains");
    assert_eq!(failed[0]["expected"], "credit");
    assert_eq!(
        (failed[0]["line"].as_u64(), failed[0]["col"].as_u64()),
        (Some(11), Some(26))
    );
    assert_eq!(failed[1]["check"], "max_tokens");
    // Like any failure: the later step does not run.
    assert!(
        ran(&trace, "command").is_empty(),
        "{}",
        outline(&trace).join("\n")
    );
}

#[test]
fn command_expectations_fail_inside_a_span_which_fails_too() {
    let env = TestEnv::new().workflow(
        "cmd.yaml",
        r#"name: Cmd
steps:
  - span: Checks
    steps:
      - id: greet
        run: [echo, "hello\nworld"]
        expect: { equals: hello, json_schema: { type: object } }
"#,
    );
    let out = env.run(&["run", "cmd.yaml", "--format", "none"]);
    assert_exit(&out, 1);
    let trace = env.show_json("last");
    let command = find(&trace, "command", "greet");
    assert_eq!(command["status"], "error");
    let message = command["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "step `greet`: expected output to equal \"hello\", got \"hello\\nworld\"; expected output to match the JSON Schema, but it is not JSON"
        ),
        "{message}"
    );
    assert_eq!(find(&trace, "custom", "Checks")["status"], "error");
    assert_eq!(trace["status"], "error");
}

#[test]
fn continue_on_error_records_the_failed_expectation_and_goes_on() {
    let env = TestEnv::new().workflow(
        "soft.yaml",
        r#"name: Soft
steps:
  - id: first
    run: [echo, one]
    continue_on_error: true
    expect: { contains: two }
  - id: second
    run: [echo, two]
"#,
    );
    let out = env.run_with(&["run", "soft.yaml", "--format", "none"], |c| {
        c.env("GITHUB_ACTIONS", "true");
    });
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    assert_eq!(find(&trace, "command", "first")["status"], "error");
    assert_eq!(find(&trace, "command", "second")["status"], "ok");
    assert!(
        stderr(&out).contains(
            "::warning file=soft.yaml,line=6,col=25,title=first::step `first`: expected output to contain \"two\", got \"one\"\n"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_content_keeps_the_output_out_of_events_and_messages() {
    let yaml = SUPPORT.replace("not_contains: sorry", "not_contains: refund");
    let env = TestEnv::new().workflow("support.yaml", &yaml);
    let out = env.run(&[
        "run",
        "support.yaml",
        "--offline",
        "--no-content",
        "--format",
        "none",
    ]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("error: step `answer`: expected output not to contain \"refund\"\n"),
        "{}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    let agent = find(&trace, "agent", "helper");
    for e in agent["events"].as_array().unwrap() {
        let a = &e["attributes"];
        let text = !matches!(a["check"].as_str(), Some("max_tokens" | "max_duration"));
        assert_eq!(a.get("actual").is_none(), text, "{e}");
    }
    assert!(!env.store_bytes().windows(9).any(|w| w == b"on its wa"));
}

const RUN_LEVEL: &str = r#"name: Whole
model: gpt-4o-mini
agents:
  a: {}
expect:
  max_tokens: 10000
  max_duration: 1m
  max_cost_usd: 1
  contains: final
steps:
  - id: ask
    agent: a
    input: hi
    mock: thinking
  - id: last
    run: [echo, the final answer]
"#;

#[test]
fn workflow_expectations_check_the_run_on_an_expect_span_at_its_end() {
    let env = TestEnv::new().workflow("whole.yaml", RUN_LEVEL);
    let out = env.run(&["run", "whole.yaml", "--offline", "--format", "none"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let span = find(&trace, "custom", "expect");
    assert!(span["parent_id"].is_null());
    assert_eq!(span, spans(&trace).last().unwrap(), "the last span");
    let checks: Vec<(String, bool)> = expectations(span)
        .into_iter()
        .map(|(c, _, p, _)| (c, p))
        .collect();
    assert_eq!(
        checks,
        [
            ("max_tokens".into(), true),
            ("max_duration".into(), true),
            ("max_cost_usd".into(), true),
            ("contains".into(), true),
        ]
    );
    assert_eq!(expectations(span)[0].3, trace["usage"]["total_tokens"]);
    assert_eq!(expectations(span)[3].3, "the final answer");

    let env = TestEnv::new().workflow(
        "whole.yaml",
        &RUN_LEVEL.replace("max_tokens: 10000", "max_tokens: 2"),
    );
    let out = env.run(&["run", "whole.yaml", "--offline", "--format", "none"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("error: workflow `Whole`: expected at most 2 tokens, used"),
        "{}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(find(&trace, "custom", "expect")["status"], "error");
}

#[test]
fn expect_problems_are_reported_with_their_places_in_one_pass() {
    let env = TestEnv::new().workflow(
        "bad.yaml",
        r#"name: Bad
expect:
  max_cost: 1
steps:
  - id: a
    run: [echo, x]
    expect:
      contians: x
      matches: "(unclosed"
      json_schema: { type: 12 }
      max_tokens: many
      max_duration: soon
      max_cost_usd: 1
  - span: S
    expect: { contains: x }
"#,
    );
    let out = env.run(&["validate", "bad.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    for line in [
        "bad.yaml:3:3: unknown check `max_cost` in expect; did you mean `max_cost_usd`?",
        "bad.yaml:8:7: unknown check `contians` in expect; did you mean `contains`?",
        "bad.yaml:9:16: `matches` is not a valid regular expression: unclosed group",
        "bad.yaml:10:20: `json_schema` is not a valid JSON Schema:",
        "bad.yaml:11:19: `max_tokens` must be a whole number, found a string",
        "bad.yaml:12:21: `max_duration` must be a duration like 30s, 2m or 1h",
        "bad.yaml:13:7: `max_cost_usd` only applies to the workflow's `expect:`, not a step's",
        "bad.yaml:15:5: `expect:` only applies to `agent:` and `run:` steps",
    ] {
        assert!(err.contains(line), "missing {line:?} in:\n{err}");
    }
    // Nothing runs either.
    let out = env.run(&["run", "bad.yaml", "--offline"]);
    assert_exit(&out, 2);
}

// ---------------------------------------------------------------------------------------------
// --junit

const SUITE: &str = r#"name: Suite
model: gpt-4o-mini
agents:
  a: {}
traces:
  - name: First
    steps:
      - id: greet
        run: [echo, hi]
        expect: { contains: hi }
      - id: skipped
        if: "false"
        run: [echo, never]
  - name: Second
    steps:
      - span: Phase
        steps:
          - id: answer
            agent: a
            input: hi
            mock: no refund
            expect: { contains: "refund!" }
      - id: after
        run: [echo, late]
"#;

/// A child element by name.
fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(name))
}

fn properties(node: roxmltree::Node) -> Vec<(String, String)> {
    child(node, "properties")
        .map(|p| {
            p.children()
                .filter(|c| c.has_tag_name("property"))
                .map(|c| {
                    (
                        c.attribute("name").unwrap().to_string(),
                        c.attribute("value").unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn junit_has_a_suite_per_trace_a_case_per_step_and_failures_with_span_ids() {
    let env = TestEnv::new().workflow("suite.yaml", SUITE);
    let out = env.run(&[
        "run",
        "suite.yaml",
        "--offline",
        "--junit",
        "report.xml",
        "--format",
        "none",
    ]);
    assert_exit(&out, 1);
    let xml = std::fs::read_to_string(env.path().join("report.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("name"), Some("Suite"));
    assert_eq!(
        (
            root.attribute("tests"),
            root.attribute("failures"),
            root.attribute("errors"),
            root.attribute("skipped")
        ),
        (Some("4"), Some("1"), Some("0"), Some("2")),
        "as many tests as a passing run: the failure once, the step it stopped skipped"
    );
    let suites: Vec<_> = root
        .children()
        .filter(|c| c.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);

    let first = env
        .list_json(&[])
        .into_iter()
        .find(|t| t["name"] == "First")
        .unwrap();
    let first_doc = env.show_json(first["trace_id"].as_str().unwrap());
    let s = suites[0];
    assert_eq!(s.attribute("name"), Some("First"));
    assert_eq!(
        (
            s.attribute("tests"),
            s.attribute("failures"),
            s.attribute("skipped")
        ),
        (Some("2"), Some("0"), Some("1"))
    );
    assert!(s.attribute("timestamp").unwrap().starts_with("20"));
    assert!(s.attribute("time").unwrap().parse::<f64>().is_ok());
    assert!(properties(s).contains(&(
        "trace_id".into(),
        first_doc["trace_id"].as_str().unwrap().into()
    )));
    let cases: Vec<_> = s
        .children()
        .filter(|c| c.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["greet", "skipped"]);
    assert!(
        cases
            .iter()
            .all(|c| c.attribute("classname") == Some("Suite"))
    );
    assert_eq!(
        properties(cases[0])[0],
        (
            "span_id".into(),
            find(&first_doc, "command", "greet")["span_id"]
                .as_str()
                .unwrap()
                .into()
        )
    );
    assert!(child(cases[0], "failure").is_none());
    assert!(child(cases[1], "skipped").is_some());

    // The second trace: the agent step's expectation failed, and its span with it; the span
    // holds a step, so it is no test of its own, and the step after never ran.
    let s = suites[1];
    assert_eq!(
        (
            s.attribute("tests"),
            s.attribute("failures"),
            s.attribute("errors"),
            s.attribute("skipped")
        ),
        (Some("2"), Some("1"), Some("0"), Some("1"))
    );
    let cases: Vec<_> = s
        .children()
        .filter(|c| c.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["answer", "after"]);
    assert_eq!(
        child(cases[1], "skipped").and_then(|s| s.attribute("message")),
        Some("not run: step `answer` failed"),
        "the step after the failure never ran"
    );
    let failure = child(cases[0], "failure").unwrap();
    assert_eq!(failure.attribute("type"), Some("expectation"));
    assert_eq!(
        failure.attribute("message"),
        Some("step `answer`: expected output to contain \"refund!\", got \"no refund\"")
    );
    assert_eq!(
        failure.text(),
        Some("contains: expected \"refund!\" (line 22, col 33), got \"no refund\"")
    );
}

#[test]
fn junit_reports_a_step_error_as_an_error_and_is_replaced_atomically() {
    let env = TestEnv::new().workflow(
        "err.yaml",
        "name: Err\nsteps:\n  - id: boom\n    run: \"echo oops >&2; exit 3\"\n",
    );
    env.write("report.xml", "old contents");
    let out = env.run(&[
        "run",
        "err.yaml",
        "--junit",
        "report.xml",
        "--format",
        "none",
    ]);
    assert_exit(&out, 1);
    let xml = std::fs::read_to_string(env.path().join("report.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .unwrap();
    assert_eq!(case.attribute("name"), Some("boom"));
    let error = child(case, "error").unwrap();
    assert_eq!(error.attribute("type"), Some("step"));
    assert_eq!(
        error.attribute("message"),
        Some("script exited with status 3: oops")
    );
    assert_eq!(doc.root_element().attribute("errors"), Some("1"));
    let leftovers: Vec<_> = std::fs::read_dir(env.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------------
// GitHub Actions

#[test]
fn github_step_summary_is_appended_with_a_table_of_steps() {
    let env = TestEnv::new().workflow("suite.yaml", SUITE);
    env.write("summary.md", "# Earlier step\n");
    let summary = env.path().join("summary.md");
    let out = env.run_with(
        &["run", "suite.yaml", "--offline", "--format", "none"],
        |c| {
            c.env("GITHUB_STEP_SUMMARY", &summary);
        },
    );
    assert_exit(&out, 1);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(stdout(&out).is_empty(), "stdout carries only the result");
    // The whole summary as GitHub shows it (trace ids and durations filtered): appended after
    // what was there, a heading and a table of steps per trace, the failed expectation named.
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!("step_summary", text);
}

#[test]
fn github_annotations_point_at_the_failed_step_or_check_on_stderr() {
    let env = TestEnv::new().workflow("suite.yaml", SUITE).workflow(
        "err.yaml",
        r#"name: Err
steps:
  - id: ok
    run: [echo, fine]
  - name: "50%: done,\nor not"
    run: "echo oops >&2; exit 1"
"#,
    );
    let out = env.run_with(
        &["run", "suite.yaml", "--offline", "--format", "none"],
        |c| {
            c.env("GITHUB_ACTIONS", "true");
        },
    );
    assert_exit(&out, 1);
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    let annotations: Vec<&str> = err.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(
        annotations,
        [
            "::error file=suite.yaml,line=22,col=33,title=answer::step `answer`: expected output to contain \"refund!\", got \"no refund\""
        ]
    );

    let out = env.run_with(&["run", "err.yaml", "--format", "none"], |c| {
        c.env("GITHUB_ACTIONS", "true");
    });
    assert_exit(&out, 1);
    let err = stderr(&out);
    let annotations: Vec<&str> = err.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(
        annotations,
        [
            "::error file=err.yaml,line=5,col=5,title=50%25%3A done%2C%0Aor not::script exited with status 1: oops"
        ]
    );

    // Without GITHUB_ACTIONS, no workflow commands.
    let out = env.run(&["run", "err.yaml", "--format", "none"]);
    assert!(!stderr(&out).contains("::error"), "{}", stderr(&out));
}
