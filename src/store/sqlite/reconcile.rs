//! Closing the traces of runs that died without closing them.
//!
//! A run killed with `kill -9` (or by the OOM killer, or a power cut) leaves its trace `running`
//! forever. Every read asks first whether the running traces' runs are alive (by the lock each
//! run holds: see [`super::lock`]); a trace whose run is certainly gone is closed as `error`
//! ("did not finish") in the store, so that `show`, `list`, `stats` and the exports all agree
//! about it. A store that cannot be written is patched in the values returned only.

use rusqlite::params;

use super::Store;
use super::lock::DeadRun;
use crate::store::rows::{close_dead_run, dead_span_error};
use crate::store::writer::{error_json, int};
use crate::trace::{Span, Trace};

/// What closing a dead run did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reconciled {
    /// Written to the store (and `trace` and `spans` patched).
    Written,
    /// Patched in `trace` and `spans` only: the store cannot be written.
    InMemory,
    /// Nothing: the trace was closed in the store meanwhile (its run finished after it was
    /// read); read it again.
    Stale,
}

impl Store {
    /// Closes a dead run: the trace and its running spans become `error`. `dead` is the run's
    /// lock, held until the store says so and then removed.
    pub(super) fn reconcile(
        &self,
        trace: &mut Trace,
        spans: &mut [Span],
        dead: Option<DeadRun>,
    ) -> Reconciled {
        let ended = close_dead_run(trace, spans);
        let span_error = dead_span_error();
        if self.read_only {
            return Reconciled::InMemory;
        }
        let trace_id = trace.trace_id.to_string();
        let written = self.with_write_tx(|tx| {
            let closed = tx.execute(
                "UPDATE traces SET status = 'error', ended_at = ?2, input_tokens = ?3,
                        output_tokens = ?4, total_tokens = ?5, error = ?6
                 WHERE trace_id = ?1 AND status = 'running'",
                params![
                    trace_id,
                    ended.micros(),
                    int(trace.usage.input_tokens),
                    int(trace.usage.output_tokens),
                    int(trace.usage.total_tokens),
                    error_json(trace.error.as_ref()),
                ],
            )?;
            if closed == 0 {
                return Ok(false);
            }
            tx.execute(
                "UPDATE spans SET status = 'error', error = ?3,
                        ended_at = max(coalesce(ended_at, ?2), started_at)
                 WHERE trace_id = ?1 AND status = 'running'",
                params![trace_id, ended.micros(), error_json(Some(&span_error))],
            )?;
            Ok(true)
        });
        match written {
            Ok(true) => {
                if let Some(dead) = dead {
                    dead.remove();
                }
                Reconciled::Written
            }
            Ok(false) => Reconciled::Stale,
            Err(_) => Reconciled::InMemory,
        }
    }
}
