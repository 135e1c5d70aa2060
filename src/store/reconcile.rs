//! Closing the traces of runs that died without closing them.
//!
//! A run killed with `kill -9` (or by the OOM killer, or a power cut) leaves its trace `running`
//! forever. Every read looks at the running traces' writer pids first; a trace whose process is
//! gone is closed as `error` ("did not finish") in the store, so that `show`, `list`, `stats`
//! and the exports all agree about it. A store that cannot be written is patched in the values
//! returned only.

use std::path::Path;

use rusqlite::params;

use super::Store;
use super::writer::{error_json, int};
use crate::trace::{ErrorInfo, Span, SpanKind, Status, Trace, Usage};

impl Store {
    /// Closes a dead run: the trace and its running spans become `error`. Written to the store
    /// when possible; `trace` and `spans` are patched either way. Returns whether the store was
    /// updated.
    pub(super) fn reconcile(&self, trace: &mut Trace, spans: &mut [Span]) -> bool {
        let pid = trace.pid.unwrap_or_default();
        let ended = spans
            .iter()
            .map(|s| s.ended_at.unwrap_or(s.started_at).max(s.started_at))
            .max()
            .unwrap_or(trace.started_at)
            .max(trace.started_at);
        let mut usage = Usage::default();
        for span in spans.iter() {
            if span.kind == SpanKind::Generation
                && let Some(u) = span.usage()
            {
                usage.add(u);
            }
        }
        let trace_error = ErrorInfo::new(format!(
            "did not finish: the run (pid {pid}) ended without closing its trace"
        ));
        let span_error = ErrorInfo::new("did not finish");
        trace.status = Status::Error;
        trace.ended_at = Some(ended);
        trace.usage = usage;
        trace.error = Some(trace_error);
        for span in spans.iter_mut().filter(|s| s.status == Status::Running) {
            span.status = Status::Error;
            span.ended_at = Some(span.ended_at.unwrap_or(ended).max(span.started_at));
            span.error = Some(span_error.clone());
        }
        if self.read_only {
            return false;
        }
        let trace_id = trace.trace_id.to_string();
        self.with_write_tx(|tx| {
            tx.execute(
                "UPDATE traces SET status = 'error', ended_at = ?2, input_tokens = ?3,
                        output_tokens = ?4, total_tokens = ?5, error = ?6
                 WHERE trace_id = ?1 AND status = 'running'",
                params![
                    trace_id,
                    ended.micros(),
                    int(usage.input_tokens),
                    int(usage.output_tokens),
                    int(usage.total_tokens),
                    error_json(trace.error.as_ref()),
                ],
            )?;
            tx.execute(
                "UPDATE spans SET status = 'error', error = ?3,
                        ended_at = max(coalesce(ended_at, ?2), started_at)
                 WHERE trace_id = ?1 AND status = 'running'",
                params![trace_id, ended.micros(), error_json(Some(&span_error))],
            )?;
            Ok(())
        })
        .is_ok()
    }
}

/// A running trace whose writer process is gone. Never this process, never a live one, never a
/// trace without a pid.
pub(super) fn is_dead_run(trace: &Trace) -> bool {
    match trace.pid {
        Some(pid) if trace.status == Status::Running && pid != std::process::id() => {
            process_is_gone(pid)
        }
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
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
    }
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}
