//! Run liveness on PostgreSQL: a run's writer connection holds a session advisory lock keyed
//! by its trace id from before the trace row is written until the row is closed. The server
//! drops the lock when the connection ends, however the run ends (`kill -9`, a lost runner, a
//! power cut), so a reader on any machine that can take the lock knows the run is gone and
//! closes its trace as "did not finish", as the SQLite backend does with lock files. A trace
//! without a writer pid (sent to `serve`) is never judged dead: its sender never says it ends.

use super::Store;
use crate::store::rows::{close_dead_run, dead_span_error};
use crate::store::writer::int;
use crate::trace::{Span, Status, Trace, TraceId};

/// The lock key of a trace: the low 64 bits of its id (the random part of a UUIDv7).
pub(super) fn key(id: TraceId) -> i64 {
    let text = id.to_string();
    let hex = text
        .get(text.len().saturating_sub(16)..)
        .unwrap_or_default();
    u64::from_str_radix(hex, 16).map_or(0, |n| n as i64)
}

impl Store {
    /// Takes the lock of the run that writes trace `id`. `false` when another session holds
    /// it (a live run, or a reader closing a dead one).
    pub(crate) fn hold_run(&self, id: TraceId) -> bool {
        let mut runs = self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if runs.contains(&id) {
            return true;
        }
        match self.try_lock(id) {
            Ok(true) => {
                runs.insert(id);
                true
            }
            Ok(false) => false,
            // Cannot tell: readers judge the trace alive, which is the safe side.
            Err(_) => true,
        }
    }

    /// Lets go of trace `id` once its closed row is committed.
    pub(crate) fn release_run(&self, id: TraceId) {
        let held = self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if held {
            self.unlock(id);
        }
    }

    /// Takes the session advisory lock of trace `id` if nobody holds it.
    fn try_lock(&self, id: TraceId) -> Result<bool, crate::store::StoreError> {
        self.read(|c| {
            c.query_one("SELECT pg_try_advisory_lock($1)", &[&key(id)])?
                .try_get::<_, bool>(0)
        })
    }

    /// Lets go of the advisory lock of trace `id` this session holds (best effort: the server
    /// drops it with the connection anyway).
    pub(super) fn unlock(&self, id: TraceId) {
        let _ = self.read(|c| c.execute("SELECT pg_advisory_unlock($1)", &[&key(id)]));
    }

    /// Whether the run of `trace` is certainly gone: a running trace with a writer pid whose
    /// lock this session can take. The lock is then held until [`Store::close_dead`] lets go.
    pub(super) fn is_dead(&self, trace: &Trace) -> bool {
        if trace.status != Status::Running || trace.pid.is_none() {
            return false;
        }
        if self
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&trace.trace_id)
        {
            return false;
        }
        self.try_lock(trace.trace_id).unwrap_or(false)
    }

    /// Closes the trace of a dead run (whose lock [`Store::is_dead`] took) in the store and in
    /// `trace` and `spans`; `false` when its run closed it meanwhile (read it again).
    pub(super) fn close_dead(&self, trace: &mut Trace, spans: &mut [Span]) -> bool {
        let ended = close_dead_run(trace, spans);
        let id = trace.trace_id.to_string();
        let error = serde_json::to_string(&trace.error).ok();
        let span_error = serde_json::to_string(&dead_span_error()).ok();
        let usage = trace.usage;
        let closed = self.with_write_tx(|tx| {
            let closed = tx.execute(
                "UPDATE traces SET status = 'error', ended_at = $2, input_tokens = $3,
                        output_tokens = $4, total_tokens = $5, error = $6
                 WHERE trace_id = $1 AND status = 'running'",
                &[
                    &id,
                    &ended.micros(),
                    &int(usage.input_tokens),
                    &int(usage.output_tokens),
                    &int(usage.total_tokens),
                    &error,
                ],
            )?;
            if closed == 0 {
                return Ok(false);
            }
            tx.execute(
                "UPDATE spans SET status = 'error', error = $3,
                        ended_at = greatest(coalesce(ended_at, $2), started_at)
                 WHERE trace_id = $1 AND status = 'running'",
                &[&id, &ended.micros(), &span_error],
            )?;
            Ok(true)
        });
        self.unlock(trace.trace_id);
        // A write that failed leaves the values patched: the reader still sees the truth.
        closed.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_for_ids_of_the_same_millisecond() {
        let a = TraceId::generate();
        let b = TraceId::generate();
        assert_ne!(key(a), key(b));
    }
}
