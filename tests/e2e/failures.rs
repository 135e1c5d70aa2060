//! Failures: a failing command or model call fails its ancestors and the trace, keeps what
//! was recorded, and stops the run.

use serde_json::Value;

use crate::support::*;
use crate::traces::*;

#[test]
fn a_failing_command_fails_its_ancestors_and_the_trace_and_stops_the_run() {
    let env = TestEnv::new().workflow(
        "failing.yaml",
        r#"
name: Failing
steps:
  - id: before
    run: ["echo", "fine"]
  - span: Outer
    steps:
      - span: Inner
        steps:
          - id: boom
            run: "echo partial; echo 'disk full' >&2; exit 3"
          - id: after_in_inner
            run: ["echo", "never"]
      - event: Never emitted
        attributes: { x: 1 }
  - id: after
    run: ["echo", "never either"]
"#,
    );
    let (out, lines) = run_json(&env, "failing.yaml", &["--offline"]);
    assert_exit(&out, 1);
    let run = &lines[0];
    assert_eq!(run["status"], "error");
    assert!(
        run["error"]["message"].is_string(),
        "the run line carries the error: {run:#}"
    );
    assert!(run["outputs"].get("after").is_none());

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(
        outline(&trace),
        vec![
            "command ok",
            "custom Outer error",
            "  custom Inner error",
            "    command error",
            "    command skipped",
            "command skipped"
        ],
        "later steps do not run: they are recorded as skipped"
    );
    let inner = find(&trace, "custom", "Inner");
    let boom = children(&trace, inner)[0];
    assert_eq!(boom["attributes"]["exit_code"], 3);
    assert!(
        boom["attributes"]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{boom:#}"
    );
    let message = boom["error"]["message"]
        .as_str()
        .expect("error message on the failed span");
    assert!(
        message.contains('3'),
        "the message names the exit status: {message}"
    );
    // The failure is told once, on `boom`: its ancestors point at it.
    for name in ["Outer", "Inner"] {
        let error = &find(&trace, "custom", name)["error"];
        assert_eq!(error["message"], "failed because step `boom` failed");
        assert_eq!(error["data"]["caused_by"], boom["span_id"], "{error:#}");
    }
    for skipped in of_kind(&trace, "command")
        .into_iter()
        .filter(|s| s["status"] == "skipped")
    {
        assert_eq!(
            skipped["attributes"]["skip_reason"],
            "not run: step `boom` failed"
        );
    }
    assert!(event_names(find(&trace, "custom", "Outer")).is_empty());
}

/// What every model failure must leave behind: exit 1, the error on the generation span and its
/// ancestors, the trace stored as `error`, and the key nowhere in the store.
#[track_caller]
pub(crate) fn assert_model_failure(env: &TestEnv, message_must_contain: &str) -> Value {
    let out = env.run(&["run", "agent.yaml"]);
    assert_exit(&out, 1);
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let agent = find(&trace, "agent", "helper");
    assert_eq!(agent["status"], "error");
    assert_eq!(find(&trace, "custom", "Ask")["status"], "error");
    let generation = children(&trace, agent)
        .into_iter()
        .find(|s| s["kind"] == "generation")
        .unwrap_or_else(|| panic!("the failed model call has a generation span: {trace:#}"));
    assert_eq!(generation["status"], "error");
    let message = generation["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {generation:#}"));
    assert!(
        message
            .to_lowercase()
            .contains(&message_must_contain.to_lowercase()),
        "generation error {message:?} should mention {message_must_contain:?}"
    );
    // Reported once: the agent step and the span around it point at the model call.
    assert_eq!(agent["error"]["data"]["caused_by"], generation["span_id"]);
    assert!(
        agent["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("failed because model call")),
        "{agent:#}"
    );
    assert_eq!(
        find(&trace, "custom", "Ask")["error"]["data"]["caused_by"],
        generation["span_id"]
    );
    let after = find(&trace, "custom", "After");
    assert_eq!(after["status"], "skipped", "later steps do not run");
    assert_eq!(children(&trace, after)[0]["status"], "skipped");
    assert_key_absent(env);
    trace
}

pub(crate) const AGENT_IN_SPAN: &str = r#"
name: Ask
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - span: Ask
    steps:
      - id: ask
        agent: helper
        input: Hello
  - span: After
    steps: [{ id: later, run: ["echo", "never"] }]
"#;

#[track_caller]
pub(crate) fn assert_key_absent(env: &TestEnv) {
    let bytes = env.store_bytes();
    assert!(!bytes.is_empty(), "the store exists");
    assert!(
        !bytes
            .windows(SECRET_KEY.len())
            .any(|w| w == SECRET_KEY.as_bytes()),
        "the API key reached the store file"
    );
}

#[test]
fn http_401_fails_the_generation_with_the_status_and_keeps_the_trace() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::unauthorized());
    let trace = assert_model_failure(&env, "401");
    let generation = of_kind(&trace, "generation")[0];
    assert!(
        generation["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key"),
        "the server's message is kept: {generation:#}"
    );
}

#[test]
fn http_500_fails_the_generation() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::server_error());
    assert_model_failure(&env, "500");
}

#[test]
fn a_malformed_response_body_fails_the_generation() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::Malformed);
    assert_model_failure(&env, "");
}

#[test]
fn a_refused_connection_fails_the_generation() {
    let env = TestEnv::with_fake()
        .workflow("agent.yaml", AGENT_IN_SPAN)
        .env("OPENAI_BASE_URL", &refused_url());
    assert_model_failure(&env, "");
    assert!(env.server().requests().is_empty());
}

/// Nested spans around a command that fails unless `--var code=0`, steps after it at every
/// level (one inside a parallel step), and a workflow `expect:`.
const NESTED: &str = r#"
name: Nested
vars:
  code: "3"
expect:
  contains: fine
steps:
  - id: before
    run: ["echo", "fine"]
  - span: Outer
    steps:
      - span: Inner
        steps:
          - id: boom
            run: ["sh", "-c", "echo 'disk full' >&2; exit \"$1\"", "sh", "{{ vars.code }}"]
          - id: after_in_inner
            run: ["echo", "fine"]
  - name: Checks
    parallel:
      - id: left
        run: ["echo", "fine"]
      - id: right
        run: ["echo", "fine"]
  - id: after
    run: ["echo", "fine"]
"#;

/// `run` with a JUnit report and a step summary: (exit code, the report, the summary).
fn run_reported(env: &TestEnv, extra: &[&str]) -> (Option<i32>, String, String) {
    let summary = env.path().join("summary.md");
    let _ = std::fs::remove_file(&summary);
    let mut args = vec![
        "run",
        "nested.yaml",
        "--offline",
        "--junit",
        "report.xml",
        "--format",
        "none",
    ];
    args.extend_from_slice(extra);
    let out = env.run_with(&args, |c| {
        c.env("GITHUB_STEP_SUMMARY", &summary);
    });
    let report = std::fs::read_to_string(env.path().join("report.xml")).unwrap();
    let summary = std::fs::read_to_string(&summary).unwrap();
    (out.status.code(), report, summary)
}

/// The testsuites element's `tests`, `errors`, `failures` and `skipped` counts.
fn junit_counts(xml: &str) -> [String; 4] {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    ["tests", "errors", "failures", "skipped"]
        .map(|a| root.attribute(a).unwrap_or_default().to_string())
}

#[test]
fn a_failure_inside_nested_spans_is_reported_once_where_it_happened() {
    let env = TestEnv::new().workflow("nested.yaml", NESTED);
    let (code, passing, _) = run_reported(&env, &["--var", "code=0"]);
    assert_eq!(code, Some(0));
    let (code, failing, summary) = run_reported(&env, &[]);
    assert_eq!(code, Some(1));

    // JUnit: one error, on `boom`; the steps it stopped are skipped, so the report counts as
    // many tests as the passing run's.
    assert_eq!(junit_counts(&passing), ["7", "0", "0", "0"]);
    assert_eq!(junit_counts(&failing), ["7", "1", "0", "5"]);
    let doc = roxmltree::Document::parse(&failing).unwrap();
    let errors: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("error"))
        .map(|n| {
            (
                n.parent()
                    .and_then(|c| c.attribute("name"))
                    .unwrap_or_default(),
                n.attribute("message").unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [("boom", "command `sh` exited with status 3: disk full")]
    );

    // The step summary: one failed row, with the message.
    let failed_rows: Vec<&str> = summary.lines().filter(|l| l.contains("❌ error")).collect();
    assert_eq!(failed_rows.len(), 1, "{summary}");
    assert!(failed_rows[0].starts_with("| boom |"), "{summary}");
    assert_eq!(summary.matches("disk full").count(), 1, "{summary}");

    // The tree: the message under `boom`, the spans around it pointing there, the rest skipped.
    let out = env.run_with(&["show", "last"], |c| {
        c.env("COLUMNS", "59");
    });
    assert_exit(&out, 0);
    // A skip reason is cut to the width where the duration's text leaves it (`<0.1ms` or
    // `0.1ms`); the JSON above says it in full.
    let mut filters = snapshot_filters(&env);
    filters.add_filter(r"(?m)  not r.*$", "  not run…");
    let _filters = filters.bind_to_scope();
    insta::assert_snapshot!("failure_reported_once_tree", stdout(&out));

    // The UI: a span around the failure links to the step where it happened.
    let trace = env.show_json("last");
    let outer = find(&trace, "custom", "Outer")["span_id"].as_str().unwrap();
    if let Some(ui) = crate::serve::ui_spans(&env, trace["trace_id"].as_str().unwrap(), &[outer]) {
        let detail = ui[outer]["detail"].as_str().unwrap();
        assert!(
            detail
                .lines()
                .any(|l| l.contains("failed in") && l.contains("boom")),
            "{ui:#}"
        );
        assert!(
            !detail.contains("disk full"),
            "the message is told on `boom`: {detail}"
        );
    }
}

/// Sent to `serve` as plain OTLP (an `export --format otlp-json` file, without the trace row a
/// pushing run sends), a failed trace is explained by the span where the failure happened, not
/// by the outermost span around it, whose error only points there.
#[test]
fn an_ingested_failed_trace_is_explained_where_the_failure_happened() {
    let env = TestEnv::new().workflow("nested.yaml", NESTED);
    assert_exit(&env.run(&["run", "nested.yaml", "--format", "none"]), 1);
    let file = env.path().join("nested.otlp.json");
    let out = env.run(&[
        "export",
        "last",
        "--format",
        "otlp-json",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    let body = std::fs::read(&file).unwrap();
    let id = env.show_json("last")["trace_id"]
        .as_str()
        .unwrap()
        .to_string();

    let server = TestEnv::new();
    let served = crate::support::serve::Served::start(&server, &[]);
    let r = served.post("/v1/traces", "application/json", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    served.stop();
    let shown = server.show_json(&id);
    assert_eq!(shown["status"], "error");
    let message = shown["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("span `boom` failed:") && message.contains("disk full"),
        "{message}"
    );
}
