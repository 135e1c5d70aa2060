//! Interruption and cancellation: `kill -9` mid-run leaves what finished readable, and
//! SIGINT/SIGTERM cancel the trace, kill child processes (every branch of a parallel step)
//! and exit 130.

use std::time::Duration;
use std::time::Instant;

use serde_json::{Value, json};

use crate::failures::{AGENT_IN_SPAN, assert_key_absent};
use crate::processes::*;
use crate::support::*;
use crate::traces::*;

/// A run whose second step blocks in `sleep 30` after recording its pid.
const SLOW: &str = r#"
name: Slow
steps:
  - id: quick
    run: ["echo", "done quickly"]
  - span: Waiting
    steps:
      - id: slow
        run: "echo $$ > sleep.pid; exec sleep 30"
  - id: never
    run: ["echo", "never"]
"#;

/// Runs `workflow` (whose hanging step writes its pid to `sleep.pid`), waits until the trace
/// it stores shows `what`, and kills the run with SIGKILL (the orphaned `sleep` too, so that
/// it does not outlive the test by 30 s). Returns the trace as it was seen just before.
fn kill_9_once(env: &TestEnv, workflow: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let child = env.spawn(&["run", workflow, "--offline"]);
    let pid = child.id();
    let sleep_pid: i32 = wait_for_file(&env.path().join("sleep.pid"))
        .parse()
        .unwrap();
    let seen = env.wait_for_trace(what, pred);
    signal(pid, nix::sys::signal::Signal::SIGKILL);
    let out = wait_within(child, DEADLINE);
    assert_eq!(out.status.code(), None, "killed by a signal");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleep_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    seen
}

#[test]
fn kill_9_mid_run_leaves_finished_spans_readable_and_the_trace_marked_unfinished() {
    let env = TestEnv::new().workflow("slow.yaml", SLOW);
    let running = kill_9_once(&env, "slow.yaml", "the first span to be stored", |t| {
        spans(t)
            .iter()
            .any(|s| s["kind"] == "command" && s["status"] == "ok")
    });
    assert_eq!(running["status"], "running", "a live run shows as running");

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let message = trace["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no trace error: {trace:#}"));
    assert!(message.contains("did not finish"), "{message}");
    let quick = spans(&trace)
        .iter()
        .find(|s| {
            s["kind"] == "command" && s["attributes"]["argv"] == json!(["echo", "done quickly"])
        })
        .unwrap_or_else(|| panic!("the finished span survives: {trace:#}"));
    assert_eq!(quick["status"], "ok");
    assert!(
        !spans(&trace)
            .iter()
            .any(|s| s["attributes"]["argv"] == json!(["echo", "never"]))
    );

    let out = env.run(&["show", "last"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("did not finish"),
        "the tree says so too:\n{}",
        stdout(&out)
    );
    assert_eq!(env.list_json(&["--status", "error"]).len(), 1);
}

/// A run whose `slow` branch hangs while its sibling finishes a second later.
const HANGS_BESIDE_A_SIBLING: &str = r#"
name: Hangs
steps:
  - parallel:
      - span: Waiting
        steps:
          - id: slow
            run: "echo $$ > sleep.pid; exec sleep 30"
      - id: sibling
        run: "sleep 1; echo done"
"#;

/// Microseconds since the epoch of an RFC 3339 time in the JSON.
fn micros(v: &Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    text.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .as_microsecond()
}

/// A duration as the tree prints it (`812.4ms`, `1.03s`, `<0.1ms`), in milliseconds.
fn shown_ms(text: &str) -> f64 {
    let number = |s: &str| s.parse::<f64>().unwrap_or_else(|e| panic!("{text}: {e}"));
    match (text.strip_suffix("ms"), text.strip_suffix('s')) {
        (Some(ms), _) => number(ms),
        (None, Some(s)) => number(s) * 1000.0,
        _ => panic!("not a duration: {text}"),
    }
}

#[test]
fn kill_9_while_a_step_hangs_shows_it_did_not_finish_after_the_time_known_to_have_elapsed() {
    let env = TestEnv::new().workflow("hangs.yaml", HANGS_BESIDE_A_SIBLING);
    kill_9_once(&env, "hangs.yaml", "the sibling to finish", |t| {
        spans(t)
            .iter()
            .any(|s| s["attributes"]["step_id"] == "sibling" && s["status"] == "ok")
    });

    // JSON: the open spans did not finish (status error, `data.unfinished`), and end at the
    // run's last record, the sibling's end: a second after the hanging step started.
    let trace = env.show_json("last");
    let slow = find(&trace, "command", "slow");
    let sibling = find(&trace, "command", "sibling");
    assert_eq!(slow["status"], "error");
    assert_eq!(slow["error"]["message"], "did not finish");
    assert_eq!(slow["error"]["data"]["unfinished"], true, "{slow:#}");
    let last_record = spans(&trace)
        .iter()
        .flat_map(|s| {
            [&s["started_at"], &s["ended_at"]].into_iter().chain(
                s["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| &e["time"]),
            )
        })
        .filter(|t| t.is_string())
        .map(micros)
        .max()
        .unwrap();
    assert_eq!(last_record, micros(&sibling["ended_at"]));
    assert_eq!(micros(&slow["ended_at"]), last_record);
    assert_eq!(micros(&trace["ended_at"]), last_record);
    let elapsed_ms = (last_record - micros(&slow["started_at"])) as f64 / 1000.0;
    let duration = slow["duration_ms"].as_f64().unwrap();
    assert!(duration >= 900.0, "about the sibling's second: {duration}");
    assert!(
        (duration - elapsed_ms).abs() < 0.01,
        "{duration} vs {elapsed_ms}"
    );
    assert_eq!(
        find(&trace, "custom", "Waiting")["error"]["data"]["unfinished"],
        true
    );

    // The tree says so on the step's line, with the same time as a lower bound.
    let out = env.run_with(&["show", "last"], |c| {
        c.env("COLUMNS", "59");
    });
    assert_exit(&out, 0);
    let tree = stdout(&out);
    let line = tree
        .lines()
        .find(|l| l.contains("command  slow"))
        .unwrap_or_else(|| panic!("no line for the step:\n{tree}"));
    let shown = line
        .split("did not finish  ≥")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the step did not finish, for at least …: {line}"));
    let shown = shown_ms(shown);
    assert!(
        (shown - duration).abs() <= duration * 0.01,
        "{shown} ms shown for {duration} ms:\n{tree}"
    );
    assert!(!tree.contains("0.0ms"), "{tree}");

    // The UI: the row and the detail pane say so too.
    let slow_id = slow["span_id"].as_str().unwrap();
    if let Some(ui) = crate::serve::ui_spans(&env, trace["trace_id"].as_str().unwrap(), &[slow_id])
    {
        let row = ui[slow_id]["row"].as_str().unwrap();
        assert!(
            row.contains("≥") && row.contains("did not finish"),
            "{ui:#}"
        );
        let detail = ui[slow_id]["detail"].as_str().unwrap();
        assert!(
            detail.contains("≥") && detail.contains("did not finish"),
            "{ui:#}"
        );
    }
}

#[test]
fn sigint_during_a_command_cancels_the_trace_kills_the_child_and_exits_130() {
    let env = TestEnv::new().workflow("slow.yaml", SLOW);
    let child = env.spawn(&["run", "slow.yaml", "--offline"]);
    let pid = child.id();
    let sleep_pid: i32 = wait_for_file(&env.path().join("sleep.pid"))
        .parse()
        .unwrap();

    signal(pid, nix::sys::signal::Signal::SIGINT);
    let out = wait_within(child, Duration::from_secs(15));
    assert_exit(&out, 130);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_is_gone(sleep_pid) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(sleep_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("the `sleep` child {sleep_pid} outlived agentrace");
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "cancelled");
    assert_eq!(
        outline(&trace),
        vec![
            "command ok",
            "custom Waiting cancelled",
            "  command cancelled"
        ],
        "open spans are closed as cancelled; later steps do not run"
    );
}

#[test]
fn sigint_during_a_model_call_cancels_the_trace_and_exits_130() {
    let env = TestEnv::with_fake().workflow("agent.yaml", AGENT_IN_SPAN);
    env.server().set_default(Reply::Hang);
    let child = env.spawn(&["run", "agent.yaml"]);
    let pid = child.id();

    let deadline = Instant::now() + DEADLINE;
    while env.server().requests().is_empty() {
        assert!(Instant::now() < deadline, "the model was never called");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(pid, nix::sys::signal::Signal::SIGINT);
    let out = wait_within(child, Duration::from_secs(15));
    assert_exit(&out, 130);

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "cancelled");
    assert_eq!(find(&trace, "custom", "Ask")["status"], "cancelled");
    assert_eq!(find(&trace, "agent", "helper")["status"], "cancelled");
    for generation in of_kind(&trace, "generation") {
        assert_eq!(generation["status"], "cancelled");
    }
    assert!(spans(&trace).iter().all(|s| s["name"] != "After"));
    assert_key_absent(&env);
}

const PARALLEL_SLEEPERS: &str = r#"
name: Sleepers
steps:
  - id: quick
    run: ["echo", "hi"]
  - name: Sleep in parallel
    parallel:
      - { id: s1, run: "echo $$ > s1.tmp; mv s1.tmp s1.pid; exec sleep 30" }
      - { id: s2, run: "echo $$ > s2.tmp; mv s2.tmp s2.pid; exec sleep 30" }
      - span: Nested
        steps:
          - { id: s3, run: "echo $$ > s3.tmp; mv s3.tmp s3.pid; exec sleep 30" }
  - id: never
    run: ["echo", "never"]
"#;

fn signal_during_parallel_sleepers(sig: nix::sys::signal::Signal) {
    let env = TestEnv::new().workflow("sleepers.yaml", PARALLEL_SLEEPERS);
    let child = env.spawn(&["run", "sleepers.yaml", "--offline"]);
    let pid = child.id();
    let pids: Vec<i32> = ["s1.pid", "s2.pid", "s3.pid"]
        .iter()
        .map(|f| pid_from(&env, f))
        .collect();
    signal(pid, sig);
    let out = wait_within(child, Duration::from_secs(15));
    assert_exit(&out, 130);
    for p in &pids {
        assert_gone(*p, "a branch's `sleep`");
    }

    let trace = env.show_json("last");
    assert_eq!(trace["status"], "cancelled");
    assert_all_closed(&trace);
    assert_eq!(
        find(&trace, "custom", "Sleep in parallel")["status"],
        "cancelled"
    );
    assert_eq!(find(&trace, "custom", "Nested")["status"], "cancelled");
    assert_eq!(
        command_with_argv(&trace, json!(["echo", "hi"]))["status"],
        "ok"
    );
    let sleepers: Vec<&Value> = of_kind(&trace, "command")
        .into_iter()
        .filter(|c| c["attributes"]["script"].is_string())
        .collect();
    assert_eq!(sleepers.len(), 3, "{:#?}", outline(&trace));
    for s in sleepers {
        assert_eq!(s["status"], "cancelled");
        let recorded = s["attributes"]["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("a command span records its pid: {s:#}"));
        assert!(pids.contains(&(recorded as i32)), "{recorded} vs {pids:?}");
        assert!(process_is_gone(recorded as i32));
    }
    assert!(
        spans(&trace)
            .iter()
            .all(|s| s["attributes"]["argv"] != json!(["echo", "never"]))
    );
}

#[test]
fn sigint_during_a_parallel_step_cancels_every_branch_and_kills_every_process() {
    signal_during_parallel_sleepers(nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigterm_during_a_parallel_step_cancels_the_same_way() {
    signal_during_parallel_sleepers(nix::sys::signal::Signal::SIGTERM);
}
