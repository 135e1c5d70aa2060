//! Scores (`scores:` on steps and on the trace) and the checks on the agent's path (in
//! `scores:` and `expect:`): each scorer is a `score` span with the `gen_ai.evaluation.result`
//! event, `show --format json` holds them, and a failing or broken scorer never fails the run.
//! Command scorers are real processes; judges answer from the fake server.

use serde_json::{Value, json};

use crate::support::*;
use crate::traces::*;

/// The evaluation event of the score span named `name`, as `(value, passed, label, error)`.
fn score_of(trace: &Value, name: &str) -> Value {
    let span = find(trace, "score", name);
    event(span, "gen_ai.evaluation.result")["attributes"].clone()
}

const CHECKS: &str = r#"
name: Scored
model: gpt-4o-mini
tools:
  lookup:
    command: ["echo", "found"]
  refund:
    command: ["echo", "refunded"]
agents:
  helper:
    instructions: Help.
    tools: [lookup, refund]
    handoffs: [expert]
  expert:
    instructions: Expert.
steps:
  - id: data
    run: ["printf", '{"answer": 42, "city": "Paris", "items": [{"id": 7}]}']
    scores:
      - { name: city, json_path: $.city, equals: Paris }
      - { name: item, json_path: "$.items[0]", equals: { id: 7 } }
      - { name: near, json_path: $.answer, within: { of: 41, tolerance: 1.5 } }
      - { name: far, json_path: $.answer, within: { of: 10, tolerance: 1 } }
      - { name: has, contains: Paris }
      - { name: hasnt, not_contains: Rome }
      - { name: shape, json_schema: { type: object, required: [answer] } }
      - { name: upper, matches: "^[A-Z]" }
      - { name: good, command: ["./score.sh", "good"] }
      - { name: garbled, command: ["./score.sh", "garbled"] }
      - { name: crashed, command: ["./score.sh", "crash"] }
      - { name: slow, command: ["./score.sh", "slow"], timeout: 1s }
  - id: ask
    agent: helper
    input: Where is order 7?
    mock:
      - tool_calls: [{ name: lookup, arguments: { id: 7, opts: { deep: true } } }]
      - tool_calls: [{ name: refund, arguments: { id: 7 } }]
      - handoff: expert
      - Shipped.
    expect:
      tools_called: [lookup, refund]
      tool_order: [lookup, refund]
      tool_args: { tool: lookup, match: { opts: { deep: true } } }
      handed_off_to: expert
      max_turns: 4
    scores:
      - { name: used, tools_called: [lookup] }
      - { name: order, tool_order: [refund, lookup] }
      - { name: args, tool_args: { tool: refund, match: { id: 7 } } }
      - { name: avoided, tools_not_called: [refund] }
      - { name: handed, handed_off_to: expert }
      - { name: brief, max_turns: 2, threshold: 1 }
      - { name: exact, equals: Shipped. }
scores:
  - { name: whole, tools_called: [lookup, refund] }
  - { name: last, equals: Shipped. }
"#;

const SCORE_SH: &str = r#"#!/bin/sh
input=$(cat)
case "$1" in
  good) case "$input" in
          *'"output":"{\"answer\": 42'*) echo '{"score": 0.75, "label": "mostly", "explanation": "saw the output"}' ;;
          *) echo '{"score": 0}' ;;
        esac ;;
  garbled) echo 'score is high' ;;
  crash) echo 'scorer blew up' >&2; exit 4 ;;
  slow) sleep 5; echo '{"score": 1}' ;;
esac
"#;

#[test]
fn every_check_and_command_scorer_is_a_score_span_and_none_fails_the_run() {
    let env = TestEnv::new()
        .workflow("scored.yaml", CHECKS)
        .script("score.sh", SCORE_SH);
    let out = env.run(&["run", "scored.yaml", "--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "ok");
    let passed = |name: &str| score_of(&trace, name)["agentrace.evaluation.passed"].clone();
    for name in [
        "city", "item", "near", "has", "hasnt", "shape", "used", "args", "handed", "exact",
        "whole", "last",
    ] {
        assert_eq!(
            passed(name),
            json!(true),
            "{name}: {}",
            score_of(&trace, name)
        );
    }
    for name in ["far", "upper", "order", "avoided", "brief"] {
        assert_eq!(passed(name), json!(false), "{name}");
    }
    let far = score_of(&trace, "far");
    assert_eq!(far["gen_ai.evaluation.score.value"], 0.0);
    assert_eq!(
        far["gen_ai.evaluation.explanation"],
        "expected 10 ± 1, got 42"
    );
    assert_eq!(far["agentrace.evaluation.source"], "check");
    let brief = score_of(&trace, "brief");
    assert!(
        brief["gen_ai.evaluation.explanation"]
            .as_str()
            .unwrap()
            .contains("made 4"),
        "{brief}"
    );
    assert_eq!(brief["agentrace.evaluation.threshold"], 1.0);
    // The command scorer read the case, the output and the outputs on stdin.
    let good = score_of(&trace, "good");
    assert_eq!(good["gen_ai.evaluation.score.value"], 0.75);
    assert_eq!(good["gen_ai.evaluation.score.label"], "mostly");
    assert_eq!(good["agentrace.evaluation.source"], "command");
    // A number without a threshold has no pass/fail.
    assert!(good.get("agentrace.evaluation.passed").is_none());
    // Bad JSON, a non-zero exit and a timeout are errors, never passes; the step is still ok.
    for (name, why) in [
        ("garbled", "not JSON"),
        ("crashed", "scorer blew up"),
        ("slow", "timed out"),
    ] {
        let s = score_of(&trace, name);
        assert_eq!(s["agentrace.evaluation.passed"], false, "{name}");
        assert!(s.get("gen_ai.evaluation.score.value").is_none(), "{name}");
        let error = s["agentrace.evaluation.error"].as_str().unwrap();
        assert!(error.contains(why), "{name}: {error}");
        assert_eq!(find(&trace, "score", name)["status"], "error");
    }
    assert!(
        score_of(&trace, "crashed")["agentrace.evaluation.error"]
            .as_str()
            .unwrap()
            .contains("status 4")
    );
    let data = spans(&trace)
        .iter()
        .find(|s| s["attributes"]["step_id"] == "data")
        .unwrap();
    assert_eq!(data["status"], "ok");
    // Step scores are children of the step's span; the trace's are at the top level, last.
    assert_eq!(
        child_labels(&trace, data).len(),
        12,
        "{:?}",
        child_labels(&trace, data)
    );
    assert_eq!(
        parent(&trace, find(&trace, "score", "used")).unwrap()["name"],
        "expert"
    );
    let whole = find(&trace, "score", "whole");
    assert!(whole["parent_id"].is_null());
    let roots: Vec<&str> = spans(&trace)
        .iter()
        .filter(|s| s["parent_id"].is_null())
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(roots[roots.len() - 2..], ["whole", "last"]);
    // Path checks in `expect:` held, each an expectation event.
    let expert = find(&trace, "agent", "expert");
    let checks: Vec<&str> = events_named(expert, "expectation")
        .iter()
        .map(|e| e["attributes"]["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "tools_called",
            "tool_order",
            "tool_args",
            "handed_off_to",
            "max_turns"
        ]
    );
}

#[test]
fn a_failing_path_check_in_expect_fails_the_step() {
    let yaml = CHECKS.replace(
        "max_turns: 4\n",
        "max_turns: 3\n      tools_not_called: [refund]\n",
    );
    let env = TestEnv::new()
        .workflow("scored.yaml", &yaml)
        .script("score.sh", SCORE_SH);
    let out = env.run(&["run", "scored.yaml", "--offline"]);
    assert_exit(&out, 1);
    let trace = env.show_json("last");
    let expert = find(&trace, "agent", "expert");
    assert_eq!(expert["status"], "error");
    let message = error_message(expert);
    assert!(
        message.contains("expected at most 3 model calls, made 4"),
        "{message}"
    );
    assert!(
        message.contains("expected tool refund not to be called"),
        "{message}"
    );
    // The step's scores did not run (it failed); the trace's did, on the failed case.
    assert!(
        of_kind(&trace, "score")
            .iter()
            .all(|s| s["parent_id"].is_null() || s["name"] != "used")
    );
    assert_eq!(
        score_of(&trace, "whole")["agentrace.evaluation.passed"],
        true
    );
}

const JUDGED: &str = r#"
name: Judged
model: gpt-4o-mini
agents:
  grader:
    instructions: You are strict.
steps:
  - id: answer
    run: ["echo", "Paris is the capital of France."]
scores:
  - name: correct
    judge: { agent: grader, rubric: "Does it name the capital of France?", choices: { correct: 1, wrong: 0 } }
    threshold: 1
  - name: garbled
    judge: { agent: grader, rubric: "Is it right?", choices: { correct: 1, wrong: 0 } }
  - name: offscale
    judge: { agent: grader, rubric: "How good, 1 to 5?", range: [1, 5] }
  - name: unlisted
    judge: { agent: grader, rubric: "Is it right?", choices: { correct: 1, wrong: 0 } }
  - name: rated
    judge: { agent: grader, rubric: "How good, 1 to 5?", range: [1, 5] }
"#;

#[test]
fn judges_ask_the_model_for_a_structured_verdict_counted_apart_from_the_workflow() {
    let env = TestEnv::with_fake().workflow("judged.yaml", JUDGED);
    env.server().push_all([
        Reply::text(
            r#"{"reasoning": "It names Paris.", "label": "correct"}"#,
            40,
            9,
        ),
        Reply::text("I would say correct", 40, 4),
        Reply::text(r#"{"reasoning": "Great.", "score": 9}"#, 40, 6),
        Reply::text(r#"{"reasoning": "Hmm.", "label": "maybe"}"#, 40, 6),
        Reply::text(r#"{"reasoning": "Good.", "score": 4}"#, 40, 6),
    ]);
    let out = env.run(&["run", "judged.yaml"]);
    assert_exit(&out, 0);
    let requests = env.server().requests();
    assert_eq!(requests.len(), 5);
    // A strict output schema: the reasoning, then a label of the choices (or a score).
    let format = &requests[0].body["response_format"];
    assert_eq!(format["type"], "json_schema");
    let schema = &format["json_schema"]["schema"];
    assert_eq!(
        schema["properties"]["label"]["enum"],
        json!(["correct", "wrong"])
    );
    assert_eq!(schema["required"], json!(["reasoning", "label"]));
    let user = requests[0].message("user").unwrap();
    assert!(
        user.contains("Does it name the capital of France?"),
        "{user}"
    );
    assert!(user.contains("Paris is the capital of France."), "{user}");
    assert!(
        requests[0]
            .message("system")
            .unwrap()
            .starts_with("You are strict.")
    );
    assert_eq!(
        requests[2].body["response_format"]["json_schema"]["schema"]["properties"]["score"],
        json!({"type": "number", "minimum": 1.0, "maximum": 5.0})
    );

    let trace = env.show_json("last");
    let correct = score_of(&trace, "correct");
    assert_eq!(correct["gen_ai.evaluation.score.value"], 1.0);
    assert_eq!(correct["gen_ai.evaluation.score.label"], "correct");
    assert_eq!(correct["gen_ai.evaluation.explanation"], "It names Paris.");
    assert_eq!(correct["agentrace.evaluation.passed"], true);
    assert_eq!(correct["agentrace.evaluation.source"], "judge");
    assert_eq!(
        score_of(&trace, "rated")["gen_ai.evaluation.score.value"],
        4.0
    );
    for (name, why) in [
        ("garbled", "not JSON"),
        ("offscale", "off the scale [1, 5]"),
        ("unlisted", "not one of the choices"),
    ] {
        let s = score_of(&trace, name);
        assert_eq!(s["agentrace.evaluation.passed"], false, "{name}");
        let error = s["agentrace.evaluation.error"].as_str().unwrap();
        assert!(error.contains(why), "{name}: {error}");
    }
    // Each judge's generation is a child of its score span, with the judge's usage on it; the
    // trace's usage leaves the judges out.
    let span = find(&trace, "score", "correct");
    let generations: Vec<&Value> = children(&trace, span)
        .into_iter()
        .filter(|c| c["kind"] == "generation")
        .collect();
    assert_eq!(generations.len(), 1);
    assert_eq!(span["attributes"]["usage"], usage(40, 9));
    assert_eq!(span["attributes"]["agent"], "grader");
    assert_eq!(trace["usage"]["total_tokens"], 0);
    assert_eq!(trace["status"], "ok");
}

#[test]
fn an_offline_judge_answers_its_schema_and_scores_read_the_case() {
    let yaml = r#"
name: Offline judge
model: gpt-4o-mini
vars: { expected: Paris }
agents:
  grader: {}
steps:
  - id: answer
    run: ["echo", "Paris"]
    scores:
      - { name: right, equals: "{{ vars.expected }}" }
      - { name: id, contains: "{{ case.id | default('none') }}" }
scores:
  - name: judged
    judge: { agent: grader, rubric: "Right?", choices: { yes: 1, no: 0 } }
  - name: scripted
    judge:
      agent: grader
      rubric: "Right?"
      choices: { yes: 1, no: 0 }
      mock: '{"reasoning": "scripted for {{ vars.expected }}", "label": "no"}'
  - name: scripted_off
    judge: { agent: grader, rubric: "Right?", range: [1, 5], mock: '{"reasoning": "x", "score": 7}' }
"#;
    let env = TestEnv::new().workflow("j.yaml", yaml);
    let out = env.run(&["run", "j.yaml", "--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    assert_eq!(
        score_of(&trace, "right")["agentrace.evaluation.passed"],
        true
    );
    // Outside `eval`, `case` is an empty mapping.
    assert_eq!(score_of(&trace, "id")["agentrace.evaluation.passed"], false);
    let judged = score_of(&trace, "judged");
    assert_eq!(judged["gen_ai.evaluation.score.label"], "yes");
    assert_eq!(judged["gen_ai.evaluation.score.value"], 1.0);
    // A judge's `mock:` (a template) is the offline model's reply.
    let scripted = score_of(&trace, "scripted");
    assert_eq!(scripted["gen_ai.evaluation.score.label"], "no");
    assert_eq!(scripted["gen_ai.evaluation.score.value"], 0.0);
    assert_eq!(
        scripted["gen_ai.evaluation.explanation"],
        "scripted for Paris"
    );
    let off = score_of(&trace, "scripted_off");
    assert!(
        off["agentrace.evaluation.error"]
            .as_str()
            .unwrap()
            .contains("off the scale"),
        "{off}"
    );
}
