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

#[test]
fn kill_9_mid_run_leaves_finished_spans_readable_and_the_trace_marked_unfinished() {
    let env = TestEnv::new().workflow("slow.yaml", SLOW);
    let child = env.spawn(&["run", "slow.yaml", "--offline"]);
    let pid = child.id();
    let sleep_pid: i32 = wait_for_file(&env.path().join("sleep.pid"))
        .parse()
        .unwrap();

    let running = env.wait_for_trace("the first span to be stored", |t| {
        spans(t)
            .iter()
            .any(|s| s["kind"] == "command" && s["status"] == "ok")
    });
    assert_eq!(running["status"], "running", "a live run shows as running");

    signal(pid, nix::sys::signal::Signal::SIGKILL);
    let out = wait_within(child, DEADLINE);
    assert_eq!(out.status.code(), None, "killed by a signal");
    // Tidy up the orphan so it does not outlive the test by 30 s.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleep_pid),
        nix::sys::signal::Signal::SIGKILL,
    );

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
