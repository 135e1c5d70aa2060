//! Budgets and cost: token, cost and duration budgets stop the run at the call or step
//! that crosses them; cost is recorded on generations and summed on the trace.

use serde_json::{Value, json};

use crate::processes::*;
use crate::support::*;
use crate::traces::*;

/// Three agent steps; `BUDGET` is replaced by a `budget:` line (or nothing).
const BUDGETED: &str = r#"
name: Budgeted
model: gpt-4o-mini
BUDGET
agents:
  helper: { instructions: You help. }
steps:
  - id: first
    agent: helper
    input: one
  - span: Second
    steps:
      - id: second
        agent: helper
        input: two
  - id: third
    agent: helper
    input: three
"#;

/// Runs BUDGETED against a server whose two first answers use `usage` tokens each, and checks
/// that the second call crosses the budget `limit` of `value`, with `used` recorded.
fn assert_budget_stops_the_run(
    budget: &str,
    args: &[&str],
    reply_usage: (u64, u64),
    limit: &str,
    value: f64,
    used: f64,
) {
    let env = TestEnv::with_fake().workflow("budget.yaml", &BUDGETED.replace("BUDGET", budget));
    env.server().push_all([
        Reply::text("first answer", reply_usage.0, reply_usage.1),
        Reply::text("second answer", reply_usage.0, reply_usage.1),
    ]);
    let mut all = vec!["run", "budget.yaml", "--format", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("budget exceeded"),
        "stderr says so: {}",
        stderr(&out)
    );
    assert_eq!(
        env.server().request_count(),
        2,
        "the run stops at the crossing"
    );
    let line = &parse_json_lines(&out.stdout)[0];
    assert_eq!(line["status"], "error");
    let message = error_message(line);
    assert!(
        message.contains("budget exceeded") && message.contains(limit),
        "{message}"
    );

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let message = error_message(&trace);
    assert!(
        message.contains("budget exceeded") && message.contains(limit),
        "{message}"
    );
    assert_all_closed(&trace);
    let generations = of_kind(&trace, "generation");
    assert_eq!(generations.len(), 2, "{:#?}", outline(&trace));
    assert!(events_named(generations[0], "budget exceeded").is_empty());
    let crossing = events_named(generations[1], "budget exceeded");
    assert_eq!(crossing.len(), 1, "{:#}", generations[1]);
    let attrs = &crossing[0]["attributes"];
    assert_eq!(attrs["limit"], limit);
    assert!(close_to(&attrs["value"], value), "{attrs:#}");
    assert!(close_to(&attrs["used"], used), "{attrs:#}");
    assert_eq!(find(&trace, "custom", "Second")["status"], "error");
    let agents = ran(&trace, "agent");
    assert_eq!(agents.len(), 2, "the third step never runs");
    assert_eq!(agents[1]["status"], "error");
    // The step points at the call that crossed the budget, where the failure happened.
    assert_eq!(
        agents[1]["error"]["data"]["caused_by"],
        generations[1]["span_id"]
    );
    let step_message = failure_message(&trace, agents[1]);
    assert!(
        step_message.contains("budget exceeded") && step_message.contains(limit),
        "{step_message}"
    );
    // The crossing call's tokens were spent: they count.
    let total = reply_usage.0 + reply_usage.1;
    assert_eq!(trace["usage"]["total_tokens"], 2 * total);
}

#[test]
fn a_token_budget_in_the_file_stops_the_run_at_the_call_that_crosses_it() {
    assert_budget_stops_the_run(
        "budget: { max_tokens: 200 }",
        &[],
        (100, 50),
        "max_tokens",
        200.0,
        300.0,
    );
}

#[test]
fn max_tokens_on_the_command_line_stops_the_run_too() {
    assert_budget_stops_the_run(
        "",
        &["--max-tokens", "200"],
        (100, 50),
        "max_tokens",
        200.0,
        300.0,
    );
}

// gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
// 100 000 in + 50 000 out = 0.015 + 0.03 = $0.045 per call.

#[test]
fn a_cost_budget_in_the_file_stops_the_run_at_the_call_that_crosses_it() {
    assert_budget_stops_the_run(
        "budget: { max_cost_usd: 0.05 }",
        &[],
        (100_000, 50_000),
        "max_cost_usd",
        0.05,
        0.09,
    );
}

#[test]
fn max_cost_on_the_command_line_stops_the_run_too() {
    assert_budget_stops_the_run(
        "",
        &["--max-cost", "0.05"],
        (100_000, 50_000),
        "max_cost_usd",
        0.05,
        0.09,
    );
}

#[test]
fn a_duration_budget_stops_the_run_at_the_running_step() {
    let env = TestEnv::new().workflow(
        "long.yaml",
        r#"
name: Long
budget: { max_duration: 1s }
steps:
  - id: quick
    run: ["echo", "hi"]
  - span: Waiting
    steps:
      - id: slow
        run: "echo $$ > slow.pid; exec sleep 30"
  - id: never
    run: ["echo", "never"]
"#,
    );
    let child = env.spawn(&["run", "long.yaml", "--offline", "--format", "json"]);
    let pid = pid_from(&env, "slow.pid");
    let out = wait_within(child, DEADLINE);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("budget exceeded"), "{}", stderr(&out));
    assert_gone(pid, "the `sleep` of a run over its time budget");
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let message = error_message(&trace);
    assert!(
        message.contains("budget exceeded") && message.contains("max_duration"),
        "{message}"
    );
    assert_all_closed(&trace);
    let slow = spans(&trace)
        .iter()
        .find(|s| s["attributes"]["pid"] == pid)
        .unwrap_or_else(|| panic!("the sleeping step has a span: {trace:#}"));
    assert_ne!(slow["status"], "ok");
    let crossing = events_named(slow, "budget exceeded");
    assert_eq!(crossing.len(), 1, "{slow:#}");
    assert_eq!(crossing[0]["attributes"]["limit"], "max_duration");
    assert!(crossing[0]["attributes"].get("value").is_some());
    assert!(crossing[0]["attributes"].get("used").is_some());
    assert!(
        spans(&trace)
            .iter()
            .all(|s| s["attributes"]["argv"] != json!(["echo", "never"]))
    );
}

#[test]
fn cost_is_recorded_on_generations_and_summed_on_the_trace() {
    let env = TestEnv::with_fake().workflow(
        "cost.yaml",
        r#"
name: Costs
model: gpt-4o-mini
prices:
  house-model: { input: 1.0, output: 2.0 }
agents:
  mini: { instructions: You are small. }
  house: { instructions: You are ours., model: house-model }
steps:
  - { id: a, agent: mini, input: a }
  - { id: b, agent: mini, input: b }
  - { id: c, agent: house, input: c }
"#,
    );
    env.server().push_all([
        Reply::text("a", 1000, 500),
        Reply::text("b", 1000, 500),
        Reply::text("c", 1000, 500),
    ]);
    let (out, lines) = run_json(&env, "cost.yaml", &[]);
    assert_exit(&out, 0);
    // mini: 1000 × 0.15e-6 + 500 × 0.60e-6 = 0.00045; house: 1000 × 1e-6 + 500 × 2e-6 = 0.002.
    let total = 0.00045 * 2.0 + 0.002;
    assert!(close_to(&lines[0]["cost_usd"], total), "{:#}", lines[0]);
    let trace = env.show_json("last");
    assert!(close_to(&trace["cost_usd"], total), "{}", trace["cost_usd"]);
    let costs: Vec<&Value> = of_kind(&trace, "generation")
        .iter()
        .map(|g| &g["attributes"]["cost_usd"])
        .collect();
    assert!(close_to(costs[0], 0.00045), "{costs:?}");
    assert!(close_to(costs[1], 0.00045), "{costs:?}");
    assert!(
        close_to(costs[2], 0.002),
        "the workflow's price wins: {costs:?}"
    );
    let listed = env.list_json(&[]);
    assert!(close_to(&listed[0]["cost_usd"], total), "{:#}", listed[0]);

    // A model without a price: no cost anywhere, and null on the trace.
    env.write(
        "nocost.yaml",
        r#"
name: No price
model: some-local-model
agents:
  local: { instructions: You run locally. }
steps:
  - { id: a, agent: local, input: a }
"#,
    );
    let (out, lines) = run_json(&env, "nocost.yaml", &[]);
    assert_exit(&out, 0);
    assert!(lines[0]["cost_usd"].is_null(), "{:#}", lines[0]);
    let trace = env.show_json("last");
    assert!(trace["cost_usd"].is_null());
    assert!(trace.as_object().unwrap().contains_key("cost_usd"));
    let generation = of_kind(&trace, "generation")[0];
    assert!(generation["attributes"]["cost_usd"].is_null());
    assert!(env.list_json(&["--workflow", "No price"])[0]["cost_usd"].is_null());
}
