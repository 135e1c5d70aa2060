//! Control flow and fault tolerance: parallel branches, loops, conditions, the error
//! policy and timeouts. Retries, the concurrency cap, cancellation and budgets have files of
//! their own.

use serde_json::{Value, json};

use crate::processes::*;
use crate::support::*;
use crate::traces::*;

/// Waits until `started/` holds COUNT files, after adding its own: the branches that call it can
/// only all finish if they run at the same time. Bounded: fails after about 20 s.
const RENDEZVOUS: &str = r#"#!/bin/sh
# rendezvous.sh NAME COUNT
set -eu
mkdir -p started
: > "started/$1"
i=0
while [ "$(ls started | wc -l | tr -d ' ')" -lt "$2" ]; do
  i=$((i + 1))
  if [ "$i" -gt 400 ]; then
    echo "$1: only $(ls started | wc -l | tr -d ' ') of $2 branches ever started together" >&2
    exit 1
  fi
  sleep 0.05
done
echo "$1 met $2"
"#;

#[test]
fn parallel_branches_run_concurrently_under_one_custom_span_and_their_outputs_are_usable() {
    for workers in WORKERS {
        parallel_branches_on(workers);
    }
}

fn parallel_branches_on(workers: &str) {
    let env = TestEnv::new()
        .env("AGENTRACE_WORKER_THREADS", workers)
        .script("rendezvous.sh", RENDEZVOUS)
        .workflow(
            "fan.yaml",
            r#"
name: Fan out
steps:
  - name: Checks
    parallel:
      - id: a
        run: ["./rendezvous.sh", "a", "3"]
      - id: b
        run: ["./rendezvous.sh", "b", "3"]
      - span: Third
        steps:
          - id: c
            run: ["./rendezvous.sh", "c", "3"]
  - id: after
    run: ["echo", "{{ steps.a.output }} / {{ steps.b.output }} / {{ steps.c.output }}"]
  - parallel:
      - { id: d, run: ["echo", "d"] }
      - { id: e, run: ["echo", "e"] }
"#,
        );
    let (out, lines) = run_json(&env, "fan.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["after"], "a met 3 / b met 3 / c met 3");

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "ok");
    let checks = find(&trace, "custom", "Checks");
    assert!(checks["parent_id"].is_null());
    assert_eq!(checks["status"], "ok");
    let kids = children(&trace, checks);
    assert_eq!(kids.len(), 3, "{:#?}", outline(&trace));
    let third = find(&trace, "custom", "Third");
    assert_eq!(parent(&trace, third).unwrap()["name"], "Checks");
    for argv in [
        json!(["./rendezvous.sh", "a", "3"]),
        json!(["./rendezvous.sh", "b", "3"]),
    ] {
        let branch = command_with_argv(&trace, argv);
        assert_eq!(branch["parent_id"], checks["span_id"]);
        assert_eq!(branch["status"], "ok");
    }
    let c = command_with_argv(&trace, json!(["./rendezvous.sh", "c", "3"]));
    assert_eq!(c["parent_id"], third["span_id"]);
    let after = command_with_argv(&trace, json!(["echo", "a met 3 / b met 3 / c met 3"]));
    assert!(after["parent_id"].is_null());

    // Unnamed, the parallel span is called `parallel`.
    let unnamed = find(&trace, "custom", "parallel");
    assert_eq!(children(&trace, unnamed).len(), 2);
    assert_eq!(lines[0]["outputs"]["d"], "d");
    assert_eq!(lines[0]["outputs"]["e"], "e");
}

#[test]
fn parallel_agent_steps_call_the_model_at_the_same_time() {
    for workers in WORKERS {
        parallel_agents_on(workers);
    }
}

fn parallel_agents_on(workers: &str) {
    let env = TestEnv::with_fake().env("AGENTRACE_WORKER_THREADS", workers).workflow(
        "agents.yaml",
        r#"
name: Parallel agents
model: gpt-4o-mini
agents:
  stock: { instructions: You check stock. }
  payments: { instructions: You check payments. }
steps:
  - name: Checks
    parallel:
      - { id: inventory, agent: stock, input: "Is SKU-1 in stock?" }
      - { id: payment, agent: payments, input: "Is the card valid?" }
      - span: Fraud
        steps:
          - { id: fraud, agent: payments, input: "Is this fraud?" }
  - id: summary
    run: ["echo", "{{ steps.inventory.output }} | {{ steps.payment.output }} | {{ steps.fraud.output }}"]
"#,
    );
    env.server().set_default(Reply::delayed(1000, Reply::Echo));
    let (out, lines) = run_json(&env, "agents.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(env.server().request_count(), 3);
    assert_eq!(
        env.server().max_in_flight(),
        3,
        "the three branches' model calls were in flight together"
    );
    assert_eq!(
        lines[0]["outputs"]["summary"],
        "echo: Is SKU-1 in stock? | echo: Is the card valid? | echo: Is this fraud?"
    );
    let trace = env.show_json("last");
    let checks = find(&trace, "custom", "Checks");
    assert_eq!(
        child_labels(&trace, checks),
        ["agent payments ok", "agent stock ok", "custom Fraud ok"]
    );
    assert_eq!(of_kind(&trace, "generation").len(), 3);
    for agent in of_kind(&trace, "agent") {
        let kids = children(&trace, agent);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0]["kind"], "generation");
    }
}

#[test]
fn a_failing_branch_fails_the_parallel_step_after_the_other_branches_finish() {
    let env = TestEnv::new().workflow(
        "fail.yaml",
        r#"
name: One branch fails
steps:
  - name: Checks
    parallel:
      - id: fails
        run: "i=0; while [ ! -f slow.started ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo 'card declined' >&2; exit 3"
      - id: slow
        run: "touch slow.started; sleep 1; echo finished > slow.done; echo slow ok"
  - id: after
    run: ["echo", "never"]
"#,
    );
    let (out, lines) = run_json(&env, "fail.yaml", &["--offline"]);
    assert_exit(&out, 1);
    assert_eq!(lines[0]["status"], "error");
    assert!(
        env.path().join("slow.done").exists(),
        "the other branch ran to its end"
    );
    assert_eq!(lines[0]["outputs"]["slow"], "slow ok");

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let checks = find(&trace, "custom", "Checks");
    assert_eq!(checks["status"], "error");
    assert_eq!(children(&trace, checks).len(), 2);
    let commands = ran(&trace, "command");
    assert_eq!(
        commands.len(),
        2,
        "the step after the parallel one never runs"
    );
    let failed: Vec<&&Value> = commands.iter().filter(|c| c["status"] == "error").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attributes"]["exit_code"], 3);
    assert!(
        commands
            .iter()
            .any(|c| c["status"] == "ok" && c["parent_id"] == checks["span_id"]),
        "the slow branch finished ok: {:#?}",
        outline(&trace)
    );
    assert_all_closed(&trace);
}

/// The runtimes a fan-out may run on: one thread (what two cores get) and four worker threads
/// (what a bigger machine gets; see `cli::engine_runtime`).
const WORKERS: [&str; 2] = ["1", "4"];

#[test]
fn fail_fast_cancels_the_other_branches_and_kills_their_processes() {
    for workers in WORKERS {
        fail_fast_cancels_on(workers);
    }
}

fn fail_fast_cancels_on(workers: &str) {
    let env = TestEnv::new().env("AGENTRACE_WORKER_THREADS", workers).workflow(
        "fast.yaml",
        r#"
name: Fail fast
steps:
  - name: Checks
    fail_fast: true
    parallel:
      - id: fails
        run: "i=0; while [ ! -f sleeper.pid ] || [ ! -f nested.pid ]; do [ $i -gt 400 ] && break; sleep 0.05; i=$((i+1)); done; echo 'no stock' >&2; exit 3"
      - id: sleeper
        run: "echo $$ > sleeper.tmp; mv sleeper.tmp sleeper.pid; exec sleep 30"
      - span: Nested
        steps:
          - id: nested_sleeper
            run: "echo $$ > nested.tmp; mv nested.tmp nested.pid; exec sleep 30"
  - id: after
    run: ["echo", "never"]
"#,
    );
    let child = env.spawn(&["run", "fast.yaml", "--offline", "--format", "json"]);
    let sleeper = pid_from(&env, "sleeper.pid");
    let nested = pid_from(&env, "nested.pid");
    let out = wait_within(child, DEADLINE);
    assert_exit(&out, 1);
    assert_gone(sleeper, "the sleeping branch");
    assert_gone(nested, "the sleeping branch inside a span");

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_all_closed(&trace);
    let checks = find(&trace, "custom", "Checks");
    assert_eq!(checks["status"], "error");
    let commands = ran(&trace, "command");
    assert_eq!(commands.len(), 3, "{:#?}", outline(&trace));
    let by_pid = |pid: i32| {
        *commands
            .iter()
            .find(|c| c["attributes"]["pid"] == pid)
            .unwrap_or_else(|| panic!("no command span records pid {pid}: {trace:#}"))
    };
    assert_eq!(by_pid(sleeper)["status"], "cancelled");
    assert_eq!(by_pid(nested)["status"], "cancelled");
    assert_eq!(find(&trace, "custom", "Nested")["status"], "cancelled");
    let failed: Vec<&&Value> = commands.iter().filter(|c| c["status"] == "error").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attributes"]["exit_code"], 3);
}

#[test]
fn fail_fast_branches_not_started_when_a_sibling_fails_never_start() {
    // On one thread only: there, branches start eight at a time and the failure is known
    // before the next eight start. On worker threads the next batch may already run on
    // another core when the first fails; what holds there (a branch that has not started
    // when the failure is known does not start) is `run_step`'s scope check, the same code.
    not_started_on(WORKERS[0]);
}

fn not_started_on(workers: &str) {
    // The first branch fails at once (its program does not exist); branches
    // start eight at a time, so most of the others are not started yet and must not start.
    let env = TestEnv::new()
        .env("AGENTRACE_WORKER_THREADS", workers)
        .workflow(
            "wide.yaml",
            r#"
name: Wide
steps:
  - name: Fan out
    fail_fast: true
    parallel:
      - run: ["./no-such-program"]
      - run: ["touch", "started-2"]
      - run: ["touch", "started-3"]
      - run: ["touch", "started-4"]
      - run: ["touch", "started-5"]
      - run: ["touch", "started-6"]
      - run: ["touch", "started-7"]
      - run: ["touch", "started-8"]
      - run: ["touch", "started-9"]
      - run: ["touch", "started-10"]
      - run: ["touch", "started-11"]
      - run: ["touch", "started-12"]
      - run: ["touch", "started-13"]
      - run: ["touch", "started-14"]
      - run: ["touch", "started-15"]
      - run: ["touch", "started-16"]
      - run: ["touch", "started-17"]
      - run: ["touch", "started-18"]
      - run: ["touch", "started-19"]
      - run: ["touch", "started-20"]
"#,
        );
    let out = env.run(&["run", "wide.yaml", "--offline", "--format", "json"]);
    assert_exit(&out, 1);
    let started = (2..=20)
        .filter(|i| env.path().join(format!("started-{i}")).exists())
        .count();
    assert!(started <= 7, "{started} branches started after the failure");
    let trace = env.show_json("last");
    assert_all_closed(&trace);
    // Like `foreach:` items not started, they leave no span: only the first batch has one.
    let commands = of_kind(&trace, "command").len();
    assert!(
        commands <= 8,
        "{commands} command spans: {:#?}",
        outline(&trace)
    );
    assert_eq!(find(&trace, "custom", "Fan out")["status"], "error");
}

#[test]
fn foreach_runs_its_steps_once_per_item_under_a_span_named_with_the_item() {
    let env = TestEnv::new().workflow(
        "loop.yaml",
        r#"
name: Loop
vars:
  topics: [rust, go lang, zig]
steps:
  - id: shout
    foreach: "{{ vars.topics }}"
    steps:
      - id: upper
        run: "printf '%s' \"$ITEM\" | tr a-z A-Z"
        env: { ITEM: "{{ item }}" }
      - id: both
        run: ["echo", "{{ steps.upper.output }}/{{ item }}"]
  - id: after
    run: ["echo", "{{ steps.shout.output | join(',') }}"]
"#,
    );
    let (out, lines) = run_json(&env, "loop.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let run = &lines[0];
    assert_eq!(
        output_list(&run["outputs"]["shout"]),
        json!(["RUST/rust", "GO LANG/go lang", "ZIG/zig"]),
        "the loop's output is each item's last output, in order"
    );
    assert_eq!(run["outputs"]["after"], "RUST/rust,GO LANG/go lang,ZIG/zig");

    let trace = env.show_json("last");
    let lp = parent(&trace, find(&trace, "custom", "rust")).unwrap();
    assert_eq!(lp["kind"], "custom");
    assert!(lp["parent_id"].is_null());
    assert_eq!(lp["status"], "ok");
    let items = children(&trace, lp);
    assert_eq!(items.len(), 3);
    for (i, topic) in ["rust", "go lang", "zig"].iter().enumerate() {
        let span = find(&trace, "custom", topic);
        assert_eq!(span["parent_id"], lp["span_id"]);
        assert_eq!(span["status"], "ok");
        assert_eq!(span["attributes"]["index"], i);
        assert_eq!(span["attributes"]["item"], *topic);
        let kids = children(&trace, span);
        assert_eq!(kids.len(), 2, "both steps run per item");
        assert!(kids.iter().all(|k| k["kind"] == "command"));
        assert_eq!(
            kids[1]["attributes"]["argv"],
            json!(["echo", format!("{}/{topic}", topic.to_uppercase())]),
            "step ids inside a loop are per iteration"
        );
    }
}

#[test]
fn foreach_over_a_literal_list_with_as_names_non_string_items_with_compact_json() {
    let env = TestEnv::new().workflow(
        "orders.yaml",
        r#"
name: Orders
steps:
  - id: each
    name: Orders
    foreach:
      - { sku: A1, qty: 2 }
      - B2
      - 3
    as: order
    steps:
      - event: Order seen
        attributes: { order: "{{ order }}" }
      - id: echo
        run: ["echo", "done"]
"#,
    );
    let (out, lines) = run_json(&env, "orders.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(
        output_list(&lines[0]["outputs"]["each"]),
        json!(["done", "done", "done"])
    );
    let trace = env.show_json("last");
    let lp = find(&trace, "custom", "Orders");
    let names: Vec<&str> = children(&trace, lp)
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [r#"{"sku":"A1","qty":2}"#, "B2", "3"]);
    let items = [json!({"sku": "A1", "qty": 2}), json!("B2"), json!(3)];
    for (i, span) in children(&trace, lp).into_iter().enumerate() {
        assert_eq!(span["attributes"]["index"], i);
        assert_eq!(span["attributes"]["item"], items[i]);
        assert_eq!(
            event(span, "Order seen")["attributes"]["order"],
            items[i],
            "the item's events land on its span, the item keeping its type"
        );
    }
}

#[test]
fn foreach_over_a_steps_json_output() {
    let env = TestEnv::new().workflow(
        "list.yaml",
        r#"
name: From a step
steps:
  - id: list
    run: ["echo", '["alpha", "beta"]']
  - id: each
    foreach: "{{ steps.list.output }}"
    as: word
    steps:
      - id: exclaim
        run: ["echo", "{{ word }}!"]
"#,
    );
    let (out, lines) = run_json(&env, "list.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(
        output_list(&lines[0]["outputs"]["each"]),
        json!(["alpha!", "beta!"])
    );
    let trace = env.show_json("last");
    let lp = parent(&trace, find(&trace, "custom", "alpha")).unwrap();
    assert_eq!(
        child_labels(&trace, lp),
        ["custom alpha ok", "custom beta ok"]
    );

    // With neither `name:` nor `id:`, the loop's span is called `foreach`.
    env.write(
        "anon.yaml",
        r#"
name: Anonymous loop
steps:
  - foreach: [left, right]
    steps:
      - run: ["echo", "{{ item }}"]
"#,
    );
    let (out, _) = run_json(&env, "anon.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let lp = find(&trace, "custom", "foreach");
    assert_eq!(
        child_labels(&trace, lp),
        ["custom left ok", "custom right ok"]
    );
}

#[test]
fn foreach_over_100_items_10_at_a_time_keeps_the_input_order() {
    for workers in WORKERS {
        hundred_on(workers);
    }
}

fn hundred_on(workers: &str) {
    let items: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let yaml = format!(
        r#"
name: Hundred
steps:
  - id: many
    foreach: [{}]
    concurrency: 10
    steps:
      - id: work
        run: "mkdir -p started; : > started/$N; if [ $N = 0 ]; then i=0; while [ ! -e started/1 ]; do i=$((i+1)); [ $i -gt 400 ] && {{ echo 'item 1 never ran alongside item 0' >&2; exit 1; }}; sleep 0.05; done; fi; case $N in *[05]) sleep 0.2 ;; esac; echo out-$N"
        env: {{ N: "{{{{ item }}}}" }}
  - id: summary
    run: ["echo", "{{{{ steps.many.output | length }}}} {{{{ steps.many.output | first }}}} {{{{ steps.many.output | last }}}}"]
"#,
        items.join(", ")
    );
    let env = TestEnv::new()
        .env("AGENTRACE_WORKER_THREADS", workers)
        .workflow("many.yaml", &yaml);
    let (out, lines) = run_json(&env, "many.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let expected: Vec<String> = (0..100).map(|i| format!("out-{i}")).collect();
    assert_eq!(output_list(&lines[0]["outputs"]["many"]), json!(expected));
    assert_eq!(lines[0]["outputs"]["summary"], "100 out-0 out-99");

    let trace = env.show_json("last");
    let lp = parent(&trace, find(&trace, "custom", "0")).unwrap();
    let kids = children(&trace, lp);
    assert_eq!(kids.len(), 100);
    let mut seen: Vec<(u64, String)> = kids
        .iter()
        .map(|s| {
            assert_eq!(s["attributes"]["item"], s["attributes"]["index"]);
            assert_eq!(children(&trace, s).len(), 1);
            (
                s["attributes"]["index"].as_u64().unwrap(),
                s["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let want: Vec<(u64, String)> = (0..100).map(|i| (i, i.to_string())).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_false_if_skips_the_step_but_keeps_it_in_the_trace() {
    let env = TestEnv::new().workflow(
        "cond.yaml",
        r#"
name: Conditions
vars: { mode: dry-run }
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - id: check
    run: ["echo", "fine"]
  - id: deploy
    if: "steps.check.output == 'broken'"
    run: ["echo", "deploying"]
  - id: notify
    if: "{{ steps.deploy.status == 'skipped' }}"
    run: ["echo", "deploy skipped, check was {{ steps.check.status }}"]
  - id: ask
    if: "steps.check.status != 'ok'"
    agent: helper
    input: Why did the check fail?
  - span: Release
    if: "vars.mode == 'release'"
    steps:
      - id: publish
        run: ["echo", "publishing"]
"#,
    );
    let (out, lines) = run_json(&env, "cond.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(
        lines[0]["outputs"]["notify"], "deploy skipped, check was ok",
        "a skipped step's status is `skipped`"
    );

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "ok");
    let deploy = spans(&trace)
        .iter()
        .find(|s| s["kind"] == "command" && s["status"] == "skipped")
        .unwrap_or_else(|| panic!("the skipped command is a span: {:#?}", outline(&trace)));
    let reason = deploy["attributes"]["skip_reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no skip_reason: {deploy:#}"));
    assert!(
        reason.contains("steps.check.output == 'broken'"),
        "the reason names the condition: {reason}"
    );
    let agents = of_kind(&trace, "agent");
    assert_eq!(agents.len(), 1);
    let ask = agents[0];
    assert_eq!(ask["status"], "skipped");
    assert!(ask["attributes"]["skip_reason"].is_string());
    assert!(children(&trace, ask).is_empty(), "no model call");
    let release = find(&trace, "custom", "Release");
    assert_eq!(release["status"], "skipped");
    assert!(
        release["attributes"]["skip_reason"]
            .as_str()
            .unwrap()
            .contains("vars.mode == 'release'")
    );
    assert!(
        children(&trace, release).is_empty(),
        "nothing under it runs"
    );
    let roots: Vec<String> = spans(&trace)
        .iter()
        .filter(|s| s["parent_id"].is_null())
        .map(|s| {
            format!(
                "{} {}",
                s["kind"].as_str().unwrap(),
                s["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        roots,
        [
            "command ok",
            "command skipped",
            "command ok",
            "agent skipped",
            "custom skipped"
        ],
        "{:#?}",
        outline(&trace)
    );

    // The same file in release mode runs the block.
    let (out, _) = run_json(&env, "cond.yaml", &["--offline", "--var", "mode=release"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    assert_eq!(find(&trace, "custom", "Release")["status"], "ok");
}

#[test]
fn continue_on_error_records_the_failure_and_the_run_goes_on() {
    let env = TestEnv::new().workflow(
        "tolerant.yaml",
        r#"
name: Tolerant
steps:
  - span: Work
    steps:
      - id: flaky
        continue_on_error: true
        run: "echo 'cache unavailable' >&2; exit 4"
      - id: next
        run: ["echo", "flaky was {{ steps.flaky.status }}"]
  - id: last
    run: ["echo", "done"]
"#,
    );
    let (out, lines) = run_json(&env, "tolerant.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["status"], "ok");
    assert_eq!(lines[0]["outputs"]["next"], "flaky was error");
    assert_eq!(lines[0]["outputs"]["last"], "done");
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "ok");
    let flaky = spans(&trace)
        .iter()
        .find(|s| s["kind"] == "command" && s["attributes"]["exit_code"] == 4)
        .unwrap();
    assert_eq!(flaky["status"], "error");
    assert!(flaky["error"]["message"].is_string());
    assert_eq!(of_kind(&trace, "command").len(), 3);
}

#[test]
fn a_step_timeout_kills_its_process_and_fails_the_run() {
    let env = TestEnv::new().workflow(
        "timeout.yaml",
        r#"
name: Step timeout
steps:
  - span: Slow
    steps:
      - id: slow
        timeout: 1s
        run: "echo $$ > slow.pid; exec sleep 30"
  - id: never
    run: ["echo", "never"]
"#,
    );
    let child = env.spawn(&["run", "timeout.yaml", "--offline", "--format", "json"]);
    let pid = pid_from(&env, "slow.pid");
    let out = wait_within(child, DEADLINE);
    assert_exit(&out, 1);
    assert_gone(pid, "the timed-out `sleep`");
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_all_closed(&trace);
    let slow = ran(&trace, "command");
    assert_eq!(slow.len(), 1, "the step after it does not run");
    assert_eq!(slow[0]["status"], "error");
    assert_eq!(slow[0]["attributes"]["pid"], pid);
    let message = error_message(slow[0]);
    assert!(message.contains("timed out"), "{message}");
    assert_eq!(find(&trace, "custom", "Slow")["status"], "error");

    // With continue_on_error the timeout is recorded and the run goes on.
    env.write(
        "timeout.yaml",
        r#"
name: Step timeout
steps:
  - id: slow
    timeout: 500ms
    continue_on_error: true
    run: "exec sleep 30"
  - id: next
    run: ["echo", "{{ steps.slow.status }}"]
"#,
    );
    let (out, lines) = run_json(&env, "timeout.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["next"], "error");
}

#[test]
fn a_workflow_timeout_stops_the_whole_run() {
    let env = TestEnv::new().workflow(
        "slowrun.yaml",
        r#"
name: Run timeout
timeout: 1s
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
    let child = env.spawn(&["run", "slowrun.yaml", "--offline", "--format", "json"]);
    let pid = pid_from(&env, "slow.pid");
    let out = wait_within(child, DEADLINE);
    assert_exit(&out, 1);
    assert_gone(pid, "the `sleep` of a timed-out run");
    let lines = parse_json_lines(&out.stdout);
    assert_eq!(lines[0]["status"], "error");
    assert!(
        error_message(&lines[0]).contains("timed out"),
        "{:#}",
        lines[0]
    );

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert!(error_message(&trace).contains("timed out"), "{trace:#}");
    assert_all_closed(&trace);
    assert_eq!(
        command_with_argv(&trace, json!(["echo", "hi"]))["status"],
        "ok"
    );
    assert_ne!(find(&trace, "custom", "Waiting")["status"], "ok");
    assert!(
        spans(&trace)
            .iter()
            .all(|s| s["attributes"]["argv"] != json!(["echo", "never"]))
    );
}
