//! The store under stress (issue 13): a disk that fills during a run stops the run, liveness of
//! a run is decided by the lock it holds (not by a pid another namespace cannot see), and read
//! commands work on a store that cannot be written.

use std::time::{Duration, Instant};

use crate::robust::Mount;
use crate::support::*;

/// `n` command steps, each appending its number to `side.txt`.
fn side_effect_steps(n: usize) -> String {
    let mut yaml = String::from("name: Side\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{ id: s{i}, run: [sh, -c, \"echo {i} >> side.txt; head -c 8192 /dev/zero | tr '\\\\0' x\"] }}\n"
        ));
    }
    yaml
}

#[test]
fn a_disk_that_fills_during_a_run_stops_it_at_once() {
    let env = TestEnv::new().workflow("side.yaml", &side_effect_steps(500));
    let disk = env.path().join("full");
    let Some(_mount) = Mount::tmpfs(&disk, "size=600k") else {
        return;
    };
    let store = disk.join("traces.db");
    let out = env.run(&["--store", store.to_str().unwrap(), "-q", "run", "side.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("cannot write to the store") && err.contains("the disk is full"),
        "says why: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let ran = std::fs::read_to_string(env.path().join("side.txt"))
        .unwrap_or_default()
        .lines()
        .count();
    assert!(ran > 0, "some steps ran before the disk filled");
    assert!(
        ran < 250,
        "the run stopped when the store failed: {ran} of 500 steps ran"
    );
}

#[test]
fn a_disk_that_fills_stops_running_children() {
    // One branch sleeps, the other fills the disk: the sleeper is stopped, not waited for.
    let mut yaml = String::from(
        "name: Fill\nsteps:\n  - parallel:\n      - { id: sleeper, run: [sleep, \"30\"] }\n      - id: filler\n        foreach: \"{{ range(200) | list }}\"\n        steps:\n",
    );
    yaml.push_str("          - { run: [sh, -c, \"head -c 65536 /dev/zero | tr '\\\\0' x\"] }\n");
    let env = TestEnv::new().workflow("fill.yaml", &yaml);
    let disk = env.path().join("full");
    let Some(_mount) = Mount::tmpfs(&disk, "size=600k") else {
        return;
    };
    let store = disk.join("traces.db");
    let started = Instant::now();
    let out = env.run(&["--store", store.to_str().unwrap(), "-q", "run", "fill.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("the disk is full"),
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the sleeping child was stopped: {:?}",
        started.elapsed()
    );
}
