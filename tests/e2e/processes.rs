//! Child processes of a run seen from outside: wait for the pid file a step writes, signal
//! the run, and check that a process is gone (interruption, cancellation, timeouts).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

pub(crate) fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.trim().is_empty()
        {
            return text.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Gone means no such process, or a zombie nobody has reaped yet.
pub(crate) fn process_is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

pub(crate) fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("send a signal");
}

/// Reads a pid that a script wrote to a file (waiting for it, bounded).
pub(crate) fn pid_from(env: &TestEnv, file: &str) -> i32 {
    wait_for_file(&env.path().join(file)).parse().unwrap()
}

/// Waits (bounded) for a process to be gone; kills it and fails the test if it outlives the wait.
#[track_caller]
pub(crate) fn assert_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_is_gone(pid) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{what} (pid {pid}) outlived agentrace: orphaned, not killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
