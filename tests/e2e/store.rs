//! The store: created private at the path it is given and shared by concurrent runs; and
//! under stress: a disk that fills during a run stops the run, liveness of a run is decided by
//! the lock it holds (not by a pid another namespace cannot see), and read commands work on a
//! store that cannot be written.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::groups::GROUPED;
use crate::robust::Mount;
use crate::support::*;
use crate::traces::{outline, spans};

/// `n` command steps, each appending its number to `side.txt`.
fn side_effect_steps(n: usize) -> String {
    let mut yaml = String::from("name: Side\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{ id: s{i}, run: [sh, -c, \"echo {i} >> side.txt && head -c 8192 /dev/zero | tr '\\\\0' x\"] }}\n"
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
    // Each step appends its number before its output, and fails if it cannot.
    let side = std::fs::read_to_string(env.path().join("side.txt")).unwrap_or_default();
    let ran = side.lines().count();
    assert!(ran > 0, "some steps ran before the disk filled");
    assert!(
        ran < 250,
        "the run stopped when the store failed: {ran} of 500 steps ran"
    );
    // What was written is kept: with room again, the trace holds the steps up to the failure,
    // closed as a run that did not finish.
    remount(&disk, "size=4m");
    let doc = env.json(&[
        "--store",
        store.to_str().unwrap(),
        "show",
        "last",
        "--format",
        "json",
    ]);
    let names: Vec<&str> = doc["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("?"))
        .collect();
    let first: Vec<String> = (0..names.len()).map(|i| format!("s{i}")).collect();
    assert!(
        !names.is_empty() && names.len() <= ran && names == first,
        "the first steps that ran, in order: {names:?} stored for {ran} steps run \
         ({side:?}); the run said: {err}"
    );
    assert_eq!(doc["status"], "error", "{doc}");
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

/// Starts `slow.yaml` (one step sleeping `secs`) and waits until its trace is in the store.
fn start_slow_run(env: &TestEnv) -> (std::process::Child, String) {
    let child = env.spawn(&["-q", "run", "slow.yaml", "--format", "none"]);
    let trace = env.wait_for_trace("the slow run to start its step", |t| {
        t["status"] == "running" && !t["spans"].as_array().unwrap().is_empty()
    });
    (child, trace["trace_id"].as_str().unwrap().to_string())
}

fn status_of(env: &TestEnv, id: &str) -> serde_json::Value {
    env.list_json(&[])
        .into_iter()
        .find(|t| t["trace_id"] == id)
        .expect("the trace is listed")["status"]
        .clone()
}

#[test]
fn a_reader_in_another_pid_namespace_leaves_a_live_run_alone() {
    let env = TestEnv::sqlite().workflow(
        "slow.yaml",
        "name: Slow\nsteps:\n  - { id: nap, run: [sleep, \"3\"] }\n",
    );
    let (child, id) = start_slow_run(&env);
    // Its pid means nothing in a new PID namespace (there it is gone, or somebody else).
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(bin())
        .arg("--store")
        .arg(env.store())
        .args(["list", "--format", "json"])
        .env("NO_COLOR", "1")
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        other => {
            eprintln!(
                "note: unshare --pid --fork --mount-proc is not available here; skipping: {other:?}"
            );
            let _ = wait_within(child, Duration::from_secs(30));
            return;
        }
    };
    let listed = parse_json(&out.stdout);
    let seen = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trace_id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(seen["status"], "running", "{seen}");
    assert_exit(&wait_within(child, Duration::from_secs(30)), 0);
    let doc = env.show_json(&id);
    assert_eq!(doc["status"], "ok", "the run closed its own trace: {doc}");
    assert!(doc["error"].is_null(), "{doc}");
}

#[test]
fn liveness_is_the_runs_lock_not_its_pid_and_kill_9_releases_it() {
    let env = TestEnv::sqlite().workflow(
        "slow.yaml",
        "name: Slow\nsteps:\n  - { id: nap, run: [sleep, \"20\"] }\n",
    );
    let (mut child, id) = start_slow_run(&env);
    // The recorded pid is gone (reused, or from another namespace): the run holds its lock.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    rusqlite::Connection::open(env.store())
        .unwrap()
        .execute(
            "UPDATE traces SET pid = ?1 WHERE trace_id = ?2",
            rusqlite::params![gone_pid, id],
        )
        .unwrap();
    assert_eq!(status_of(&env, &id), "running");
    assert_eq!(env.show_json(&id)["status"], "running");

    // kill -9: the kernel drops the lock, and the next reader closes the trace, even when the
    // recorded pid now belongs to another live process (here pid 1, as after pid reuse).
    let db = rusqlite::Connection::open(env.store()).unwrap();
    db.execute("UPDATE traces SET pid = 1 WHERE trace_id = ?1", [&id])
        .unwrap();
    drop(db);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status_of(&env, &id), "error");
    let doc = env.show_json(&id);
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("did not finish"), "{message}");
    let locks = std::fs::read_dir(format!("{}.locks", env.store().display()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(locks, 0, "the dead run's lock file is removed");
}

/// Waits until a trace named `name` is in the store at `store`; returns its id.
fn wait_listed(env: &TestEnv, store: &str, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.run(&["--store", store, "list", "--format", "json"]);
        if let Some(t) = parse_json(&out.stdout)
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
        {
            return t["trace_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no trace {name} appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn remount(path: &std::path::Path, how: &str) {
    let status = Command::new("mount")
        .args(["-o", &format!("remount,{how}")])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mount -o remount,{how}");
}

#[test]
fn list_and_show_read_a_store_on_a_read_only_mount_and_write_nothing() {
    let env = TestEnv::new().workflow(
        "slow.yaml",
        "name: Slow\nsteps:\n  - { id: nap, run: [sleep, \"20\"] }\n",
    );
    let disk = env.path().join("disk");
    let Some(_mount) = Mount::tmpfs(&disk, "size=4m") else {
        return;
    };
    let store = disk.join("traces.db");
    let store_arg = store.to_str().unwrap();
    env.write(
        "ok.yaml",
        "name: Fine\nsteps:\n  - { id: t, run: [\"true\"] }\n",
    );
    assert_exit(&env.run(&["--store", store_arg, "-q", "run", "ok.yaml"]), 0);

    // A store closed cleanly is one file: no -shm to read its WAL through, and none can be
    // made on a read-only mount.
    remount(&disk, "ro");
    let out = env.run(&["--store", store_arg, "list"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Fine"), "{}", stdout(&out));
    assert_exit(&env.run(&["--store", store_arg, "show", "last"]), 0);
    remount(&disk, "rw");

    // A run killed with -9 leaves its trace running, and its -wal and -shm behind.
    let mut child = env.spawn(&["--store", store_arg, "-q", "run", "slow.yaml"]);
    let killed = wait_listed(&env, store_arg, "Slow");
    child.kill().unwrap();
    child.wait().unwrap();
    remount(&disk, "ro");
    let out = env.run(&["--store", store_arg, "list", "--format", "json"]);
    assert_exit(&out, 0);
    let listed = parse_json(&out.stdout);
    let statuses: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["status"].as_str().unwrap()))
        .collect();
    // The dead run is known dead (its lock is free) and shown so, but not written.
    assert_eq!(statuses, [("Slow", "error"), ("Fine", "ok")]);
    let out = env.run(&["--store", store_arg, "show", &killed, "--format", "json"]);
    assert_exit(&out, 0);
    assert_eq!(parse_json(&out.stdout)["status"], "error");
    remount(&disk, "rw");
    assert_eq!(
        stored_status(&store, &killed),
        "running",
        "a read-only reader writes no verdict"
    );
}

/// Runs the binary as user `nobody` (tests run as root, whom permissions do not stop); `None`
/// when `setpriv` cannot do that here.
fn as_nobody(args: &[&str]) -> Option<std::process::Output> {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&out.stderr);
    (!err.starts_with("setpriv:")).then_some(out)
}

/// Hands the store and everything beside it to `nobody`, then takes away the write permission
/// of the directory and the files.
fn read_only_for_nobody(dir: &std::path::Path) {
    let ok = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn list_and_show_read_a_store_whose_file_and_directory_are_read_only() {
    let env = TestEnv::new()
        .workflow(
            "ok.yaml",
            "name: Fine\nsteps:\n  - { id: t, run: [\"true\"] }\n",
        )
        .workflow(
            "slow.yaml",
            "name: Slow\nsteps:\n  - { id: nap, run: [sleep, \"20\"] }\n",
        );
    let dir = env.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    let store = dir.join("traces.db");
    let store_arg = store.to_str().unwrap();
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_exit(&env.run(&["--store", store_arg, "-q", "run", "ok.yaml"]), 0);
    read_only_for_nobody(&dir);
    // A store closed cleanly: one file, and no -shm can be made beside it.
    let Some(out) = as_nobody(&["--store", store_arg, "list"]) else {
        eprintln!("note: setpriv cannot run as nobody here; skipping");
        return;
    };
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("Fine"), "{}", stderr(&out));
    assert_exit(
        &as_nobody(&["--store", store_arg, "show", "last"]).unwrap(),
        0,
    );

    // A run killed with -9 (its -wal and -shm stay behind).
    Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&dir)
        .status()
        .unwrap();
    let mut child = env.spawn(&["--store", store_arg, "-q", "run", "slow.yaml"]);
    let killed = wait_listed(&env, store_arg, "Slow");
    child.kill().unwrap();
    child.wait().unwrap();
    read_only_for_nobody(&dir);
    let out = as_nobody(&["--store", store_arg, "show", &killed, "--format", "json"]).unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        parse_json(&out.stdout)["status"],
        "error",
        "known dead: its lock is free"
    );
    let out = as_nobody(&["--store", store_arg, "list"]).unwrap();
    assert_exit(&out, 0);
    assert_eq!(
        stored_status(&store, &killed),
        "running",
        "a read-only reader writes no verdict"
    );
}

/// A trace's status as the store file holds it, read without agentrace (and without writing).
fn stored_status(store: &Path, trace_id: &str) -> String {
    rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row(
            "SELECT status FROM traces WHERE trace_id = ?1",
            [trace_id],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn the_store_is_created_private_at_the_given_path() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::sqlite().workflow("grouped.yaml", GROUPED);
    assert_exit(
        &env.run(&["run", "grouped.yaml", "--offline", "--format", "none"]),
        0,
    );
    let mode = std::fs::metadata(env.store()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "store file mode {mode:o}");
    let dir_mode = std::fs::metadata(env.store().parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "store dir mode {dir_mode:o}");

    // `--store` works as well as AGENTRACE_STORE.
    let other = env.path().join("other.db");
    let out = env.run_with(
        &[
            "--store",
            other.to_str().unwrap(),
            "run",
            "grouped.yaml",
            "--offline",
            "--format",
            "none",
        ],
        |c| {
            c.env_remove("AGENTRACE_STORE");
        },
    );
    assert_exit(&out, 0);
    assert!(other.exists());
    let listed = env.run_with(
        &[
            "--store",
            other.to_str().unwrap(),
            "list",
            "--format",
            "json",
        ],
        |c| {
            c.env_remove("AGENTRACE_STORE");
        },
    );
    assert_exit(&listed, 0);
    assert_eq!(parse_json(&listed.stdout).as_array().map(Vec::len), Some(1));
}

#[test]
fn eight_concurrent_runs_into_one_store_all_succeed_and_all_are_kept() {
    let env = TestEnv::new().workflow(
        "busy.yaml",
        r#"
name: Busy
model: gpt-4o-mini
agents:
  helper: { instructions: You help. }
steps:
  - span: Work
    events: [{ name: Started, attributes: {} }]
    steps:
      - { id: a, run: ["echo", "a"] }
      - { id: b, agent: helper, input: "b", mock: "B." }
      - { id: c, run: ["echo", "c"] }
"#,
    );
    let children: Vec<_> = (0..8)
        .map(|i| {
            env.spawn(&[
                "run",
                "busy.yaml",
                "--offline",
                "--format",
                "json",
                "--meta",
                &format!("n={i}"),
            ])
        })
        .collect();
    let mut ids = BTreeSet::new();
    for child in children {
        let out = wait_within(child, DEADLINE);
        assert_exit(&out, 0);
        let lines = parse_json_lines(&out.stdout);
        ids.insert(lines[0]["trace_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 8);

    let listed = env.list_json(&[]);
    assert_eq!(listed.len(), 8, "every trace is kept");
    for t in &listed {
        assert!(ids.contains(t["trace_id"].as_str().unwrap()));
        assert_eq!(t["status"], "ok");
        let trace = env.show_json(t["trace_id"].as_str().unwrap());
        assert_eq!(
            spans(&trace).len(),
            5,
            "every span is kept: {}",
            outline(&trace).join("\n")
        );
    }
}
