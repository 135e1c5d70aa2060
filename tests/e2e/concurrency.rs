//! The cap on model calls in flight (`max_concurrency`, `--max-concurrency`).

use crate::support::*;
use crate::traces::*;

const SIX_CALLS: &str = r#"
name: Six calls
model: gpt-4o-mini
CAP
agents:
  helper: { instructions: You help. }
steps:
  - name: Fan out
    parallel:
      - { id: c1, agent: helper, input: one }
      - { id: c2, agent: helper, input: two }
      - { id: c3, agent: helper, input: three }
      - { id: c4, agent: helper, input: four }
      - { id: c5, agent: helper, input: five }
      - { id: c6, agent: helper, input: six }
"#;

/// Runs the six parallel calls against a fresh server whose answers take `delay_ms`; returns
/// the most requests the server saw in flight at once.
fn six_calls_in_flight(cap_in_file: &str, args: &[&str], delay_ms: u64) -> usize {
    let env = TestEnv::with_fake().workflow("six.yaml", &SIX_CALLS.replace("CAP", cap_in_file));
    env.server()
        .set_default(Reply::delayed(delay_ms, Reply::Echo));
    let mut all = vec!["run", "six.yaml", "--format", "json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    assert_exit(&out, 0);
    assert_eq!(env.server().request_count(), 6);
    let trace = env.show_json("last");
    assert_eq!(of_kind(&trace, "generation").len(), 6);
    assert!(
        of_kind(&trace, "generation")
            .iter()
            .all(|g| g["status"] == "ok")
    );
    env.server().max_in_flight()
}

#[test]
fn max_concurrency_caps_the_model_calls_in_flight_across_the_run() {
    assert_eq!(
        six_calls_in_flight("", &[], 1000),
        6,
        "uncapped, all six branches call the model at once"
    );
    assert_eq!(six_calls_in_flight("", &["--max-concurrency", "2"], 500), 2);
    assert_eq!(six_calls_in_flight("max_concurrency: 3", &[], 500), 3);
    assert_eq!(
        six_calls_in_flight("max_concurrency: 3", &["--max-concurrency", "1"], 100),
        1,
        "the flag overrides the file"
    );
}

/// `n` agent steps in one `parallel:`, under `provider:` (a YAML flow mapping, or empty).
fn fan_out(n: usize, provider: &str) -> String {
    let mut yaml = format!(
        "name: Fan out\nmodel: gpt-4o-mini\n{provider}\nagents: {{ a: {{ instructions: Be brief. }} }}\n\
         steps:\n  - name: all\n    parallel:\n"
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "      - {{ agent: a, input: \"question {i}\" }}\n"
        ));
    }
    yaml
}

/// The `queued_ms` of each generation of the last trace that has one, smallest first, after
/// checking that every call answered and none was retried.
fn queued(env: &TestEnv, calls: usize) -> Vec<f64> {
    let trace = env.show_json("last");
    let generations = of_kind(&trace, "generation");
    assert_eq!(generations.len(), calls);
    assert!(generations.iter().all(|g| g["status"] == "ok"));
    assert!(
        generations
            .iter()
            .all(|g| g["events"].as_array().is_none_or(Vec::is_empty)),
        "no call was retried"
    );
    let mut waits: Vec<f64> = generations
        .iter()
        .filter_map(|g| g["attributes"]["queued_ms"].as_f64())
        .collect();
    waits.sort_by(f64::total_cmp);
    waits
}

#[test]
fn max_connections_queues_the_calls_over_the_limit_and_records_their_wait() {
    let env = TestEnv::with_fake()
        .workflow(
            "capped.yaml",
            &fan_out(6, "provider: { max_connections: 2 }"),
        )
        .workflow("free.yaml", &fan_out(6, ""));
    env.server().set_default(Reply::delayed(300, Reply::Echo));
    assert_exit(&env.run(&["run", "capped.yaml"]), 0);
    assert_eq!(env.server().max_in_flight(), 2);
    let waits = queued(&env, 6);
    // Two calls got a connection at once; the other four waited, first come first served,
    // each at least until a call before it had been answered.
    assert_eq!(waits.len(), 4, "{waits:?}");
    assert!(waits.iter().all(|&ms| ms >= 250.0), "{waits:?}");

    // Without the key, six calls are far below the default: none waits.
    assert_exit(&env.run(&["run", "free.yaml"]), 0);
    assert_eq!(queued(&env, 6), Vec::<f64>::new());
}

#[test]
fn by_default_the_connections_stay_within_the_open_files_limit() {
    // Under `ulimit -n 48` the default is (48 - 32) / 2 = 8 calls at once: sixteen calls queue
    // instead of running out of file descriptors.
    let env = TestEnv::with_fake().workflow("wide.yaml", &fan_out(16, ""));
    env.server().set_default(Reply::delayed(300, Reply::Echo));
    let mut cmd = env.cmd_of(std::process::Command::new("sh"));
    cmd.args(["-c", "ulimit -n 48 && exec \"$0\" \"$@\""])
        .arg(bin())
        .args(["run", "wide.yaml"]);
    let out = output_within(cmd, DEADLINE);
    assert_exit(&out, 0);
    assert_eq!(env.server().max_in_flight(), 8);
    assert_eq!(queued(&env, 16).len(), 8);
}

/// The number that `file`'s step `size` printed: what it read of the run (its parent) from
/// `/proc` while the run ran.
#[cfg(target_os = "linux")]
fn probed(env: &TestEnv, file: &str, args: &[&str]) -> u64 {
    let (out, lines) = run_json(env, file, args);
    assert_exit(&out, 0);
    let size = &lines[0]["outputs"]["size"];
    size.as_u64()
        .or_else(|| size.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or_else(|| panic!("the probe's number not read: {size}"))
}

#[cfg(target_os = "linux")]
#[test]
fn a_fan_out_of_256_branches_asks_for_huge_pages_on_its_heap_and_a_narrow_one_does_not() {
    // A wide fan-out faults in its heap 4 KiB at a time on its busiest thread; advised, the
    // kernel backs it with 2 MiB pages. The advice shows as `hg` in the mapping's VmFlags.
    if !std::path::Path::new("/sys/kernel/mm/transparent_hugepage/enabled").exists() {
        eprintln!("note: this kernel has no transparent huge pages; skipping");
        return;
    }
    let probe =
        r#"{ id: size, run: [sh, -c, "grep -c '^VmFlags:.* hg' /proc/$PPID/smaps || true"] }"#;
    // `n` branches: the probe and `n - 1` agent steps.
    let with = |n: usize| format!("{}      - {probe}\n", fan_out(n - 1, ""));
    let env = TestEnv::new()
        .workflow("wide.yaml", &with(256))
        .workflow("narrow.yaml", &with(255))
        .workflow("seq.yaml", &format!("name: seq\nsteps:\n  - {probe}\n"));
    assert!(
        probed(&env, "wide.yaml", &["--offline"]) >= 1,
        "the heap of a 256-wide fan-out is advised"
    );
    assert_eq!(probed(&env, "narrow.yaml", &["--offline"]), 0, "255 wide");
    assert_eq!(probed(&env, "seq.yaml", &[]), 0, "a sequential run");
}

#[cfg(target_os = "linux")]
#[test]
fn a_run_that_fans_out_has_room_for_its_connections_before_its_threads_start() {
    // Grown later, with the store writer's thread running, each doubling of the table stops
    // the thread that opens a descriptor for an RCU grace period (~10 ms). A run that fans out
    // grows it once, before any thread starts, for every connection its providers allow and
    // 64 more; a run that does one thing at a time keeps the kernel's first table.
    let probe =
        r#"{ id: size, run: [sh, -c, "sed -n 's/^FDSize:[[:space:]]*//p' /proc/$PPID/status"] }"#;
    let env = TestEnv::new()
        .workflow(
            "wide.yaml",
            &format!(
                "name: wide\nprovider: {{ max_connections: 300 }}\nsteps:\n  - name: all\n    \
                 parallel:\n      - {probe}\n      - {{ id: other, run: [\"true\"] }}\n"
            ),
        )
        .workflow(
            "narrow.yaml",
            &format!("name: narrow\nprovider: {{ max_connections: 300 }}\nsteps:\n  - {probe}\n"),
        );
    let wide = probed(&env, "wide.yaml", &[]);
    let narrow = probed(&env, "narrow.yaml", &[]);
    assert!(wide >= 300 + 64, "the table of a fan-out run holds {wide}");
    assert!(
        narrow < 300 + 64,
        "the table of a sequential run holds {narrow}"
    );
}
