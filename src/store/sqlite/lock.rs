//! Run locks: how a reader knows that the run writing a `running` trace is still alive.
//!
//! A pid says nothing to a reader in another PID namespace (`unshare`, a container sharing the
//! store) and can be reused by an unrelated process. So a run holds an exclusive `flock` on
//! `<store>.locks/<trace id>.lock` from before its trace row is written until the row is
//! closed; the kernel drops the lock when the process dies, however it dies. A reader that can
//! take the lock knows the run is gone; one that cannot, or cannot tell, leaves the trace
//! alone. The lock file of a finished run is removed by the run, that of a dead run by the
//! reader that closed its trace. Traces without a lock file (written by an older agentrace)
//! fall back to the pid, as before.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::Store;
use crate::trace::{Status, Trace, TraceId};

/// The run locks this process holds, by trace.
#[derive(Default)]
pub(super) struct RunLocks(Mutex<HashMap<TraceId, Flock<File>>>);

impl RunLocks {
    fn held(&self) -> MutexGuard<'_, HashMap<TraceId, Flock<File>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a reader can tell about the run of a `running` trace.
pub(super) enum Liveness {
    /// Its run holds the lock (or this process writes it), or nothing can be told: leave it.
    Alive,
    /// Its run is gone. The lock, if there is one, is held until the trace is closed, so that
    /// no claim of the id slips in between.
    Dead(Option<DeadRun>),
}

/// The lock of a dead run, taken by the reader that closes its trace.
pub(super) struct DeadRun {
    path: PathBuf,
    _lock: Flock<File>,
}

impl DeadRun {
    /// Removes the lock file once the trace is closed in the store.
    pub(super) fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `<store>.locks`, next to the store (and its `-wal` and `-shm` files).
fn lock_dir(store: &Path) -> PathBuf {
    let mut dir = store.as_os_str().to_owned();
    dir.push(".locks");
    PathBuf::from(dir)
}

fn lock_path(store: &Path, id: TraceId) -> PathBuf {
    lock_dir(store).join(format!("{id}.lock"))
}

impl Store {
    /// Takes the lock of the run that writes trace `id`, before its row is written. `false`
    /// when another process holds it (a live run, or a reader closing a dead one). A lock that
    /// cannot be made (no room for the file) is not an error: readers then judge the trace by
    /// its pid.
    pub(crate) fn hold_run(&self, id: TraceId) -> bool {
        let mut held = self.locks.held();
        if held.contains_key(&id) {
            return true;
        }
        let path = lock_path(&self.path, id);
        let dir = lock_dir(&self.path);
        let _ = DirBuilder::new().mode(0o700).create(&dir);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => file,
            Err(_) => return true,
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                held.insert(id, lock);
                true
            }
            Err((_, Errno::EWOULDBLOCK)) => false,
            Err(_) => true,
        }
    }

    /// Lets go of trace `id` once its closed row is committed: the lock file goes first, then
    /// the lock, so that a reader never takes a lock whose run has not closed the trace.
    pub(crate) fn release_run(&self, id: TraceId) {
        if let Some(lock) = self.locks.held().remove(&id) {
            let _ = std::fs::remove_file(lock_path(&self.path, id));
            drop(lock);
        }
    }

    /// Lets go of trace `id` without removing its lock file: a claim that lost.
    pub(super) fn drop_run(&self, id: TraceId) {
        self.locks.held().remove(&id);
    }

    /// Whether the run of `trace` is alive. Only a `running` trace can be dead, and only when
    /// that is certain: its lock is free, or (no lock file: an older writer) its pid is gone
    /// from this PID namespace.
    pub(super) fn liveness(&self, trace: &Trace) -> Liveness {
        if trace.status != Status::Running || self.locks.held().contains_key(&trace.trace_id) {
            return Liveness::Alive;
        }
        let path = lock_path(&self.path, trace.trace_id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return if legacy_run_is_dead(trace) {
                    Liveness::Dead(None)
                } else {
                    Liveness::Alive
                };
            }
            Err(_) => return Liveness::Alive,
        };
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Liveness::Dead(Some(DeadRun { path, _lock: lock })),
            Err(_) => Liveness::Alive,
        }
    }
}

/// A running trace without a lock file, written by an agentrace from before run locks: its
/// writer is gone if its pid is. Never this process, never a trace without a pid.
fn legacy_run_is_dead(trace: &Trace) -> bool {
    match trace.pid {
        Some(pid) if pid != std::process::id() => process_is_gone(pid),
        _ => false,
    }
}

/// Whether process `pid` has exited: `/proc/<pid>` is missing or is a zombie. Without `/proc`,
/// a null signal tells (EPERM means it exists but belongs to someone else).
fn process_is_gone(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    if Path::new("/proc/self/stat").exists() {
        return match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => {
                // The state follows the command name, which is in parentheses and may itself
                // contain spaces and parentheses.
                let state = stat
                    .rfind(')')
                    .and_then(|i| stat.get(i + 1..))
                    .and_then(|rest| rest.trim_start().chars().next());
                matches!(state, Some('Z' | 'X'))
            }
            Err(e) => e.kind() == ErrorKind::NotFound,
        };
    }
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}
