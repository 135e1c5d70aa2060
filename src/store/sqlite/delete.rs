//! `agentrace rm` and `agentrace prune`: deleting traces with everything that hangs off them.
//!
//! A trace goes with its spans and events in one write transaction; the full-text index rows
//! follow by trigger (see [`super::schema`]). The conversation memory of `session:` steps is
//! kept: it belongs to the session, and a later run of it still needs it.
//!
//! The file does not shrink: SQLite keeps the freed pages and reuses them for later runs. A
//! `VACUUM` would rewrite the whole file while holding the write lock against every running
//! `agentrace run`, which is not cheap, and `PRAGMA incremental_vacuum` does nothing on a store
//! that was not created with `auto_vacuum = INCREMENTAL`.

use rusqlite::params;

use super::{Store, StoreError};
use crate::trace::TraceId;

impl Store {
    /// Deletes the traces `ids` with their spans and events, all or nothing. Returns how many
    /// traces were deleted (ids that are not in the store count for nothing).
    pub fn delete(&self, ids: &[TraceId]) -> Result<usize, StoreError> {
        self.delete_traces(ids, false)
    }

    /// Deletes the finished traces among `ids`; a trace still running is left alone even if it
    /// is listed. Returns how many were deleted.
    pub fn prune(&self, ids: &[TraceId]) -> Result<usize, StoreError> {
        self.delete_traces(ids, true)
    }

    fn delete_traces(&self, ids: &[TraceId], finished_only: bool) -> Result<usize, StoreError> {
        // The status check is repeated inside the transaction: the run could have written its
        // trace since it was listed.
        let guard = if finished_only {
            " AND NOT EXISTS (SELECT 1 FROM traces WHERE trace_id = ?1 AND status = 'running')"
        } else {
            ""
        };
        let events = format!("DELETE FROM events WHERE trace_id = ?1{guard}");
        let spans = format!("DELETE FROM spans WHERE trace_id = ?1{guard}");
        let traces = format!(
            "DELETE FROM traces WHERE trace_id = ?1{}",
            if finished_only {
                " AND status != 'running'"
            } else {
                ""
            }
        );
        self.with_write_tx(|tx| {
            let mut deleted = 0;
            for id in ids {
                let id = id.to_string();
                tx.prepare_cached(&events)?.execute(params![id])?;
                tx.prepare_cached(&spans)?.execute(params![id])?;
                deleted += tx.prepare_cached(&traces)?.execute(params![id])?;
            }
            Ok(deleted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ListFilter;
    use crate::store::sqlite::stats::tests::Fixture;
    use crate::trace::{Event, SpanKind};
    use crate::trace::{Status, Timestamp};

    const DAY: i64 = 86_400_000_000;

    fn count(store: &crate::store::Store, table: &str) -> i64 {
        store
            .as_sqlite()
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn rm_takes_spans_events_and_nothing_else() {
        let mut f = Fixture::new();
        for name in ["one", "two"] {
            let t = f.trace(name, "W", 0, Status::Ok);
            let parent = f.span(&t, None, SpanKind::Custom, "phase", 0, 10, Status::Ok);
            let mut child = f.span(
                &t,
                Some(&parent),
                SpanKind::Command,
                "cmd",
                1,
                9,
                Status::Ok,
            );
            child.events.push(Event {
                name: "done".into(),
                time: child.started_at,
                attributes: Default::default(),
            });
            f.add(t, vec![parent, child]);
        }
        f.write();
        let store = f.open();
        assert_eq!(store.delete(&[f.ids[0]]).unwrap(), 1);
        assert_eq!(count(&store, "traces"), 1);
        assert_eq!(count(&store, "spans"), 2);
        assert_eq!(count(&store, "events"), 1);
        assert!(matches!(
            store.load(f.ids[0]),
            Err(StoreError::NotFound { .. })
        ));
        assert_eq!(store.load(f.ids[1]).unwrap().spans.len(), 2);
        // Already gone: nothing more to delete.
        assert_eq!(store.delete(&[f.ids[0]]).unwrap(), 0);
    }

    #[test]
    fn prune_keeps_recent_and_running_traces() {
        let mut f = Fixture::new();
        let now = f.t0 + 40 * DAY;
        let ages = [
            ("old", 0, Status::Ok),
            ("old-failed", DAY, Status::Error),
            ("old-running", 2 * DAY, Status::Running),
            ("recent", 35 * DAY, Status::Ok),
        ];
        for (name, start, status) in ages {
            let t = f.trace(name, "W", start, status);
            let s = f.span(&t, None, SpanKind::Command, "cmd", 0, 10, status);
            f.add(t, vec![s]);
        }
        // A run that died long ago (its pid is gone): closed as an error, so it can go.
        let mut dead = f.trace("old-dead", "W", 3 * DAY, Status::Running);
        dead.pid = Some(i32::MAX as u32 - 7);
        f.add(dead, vec![]);
        f.write();

        let store = f.open();
        let cutoff = Timestamp(now - 30 * DAY);
        let names: Vec<String> = store
            .prunable(cutoff)
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(names, ["old", "old-failed", "old-dead"]);
        let ids: Vec<TraceId> = store
            .prunable(cutoff)
            .unwrap()
            .iter()
            .map(|t| t.trace_id)
            .collect();
        // The running trace is never deleted, even when asked to.
        let mut asked = ids.clone();
        asked.push(f.ids[2]);
        assert_eq!(store.prune(&asked).unwrap(), 3);
        let left: Vec<String> = store
            .list(&ListFilter::default())
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(left, ["recent", "old-running"]);
        assert_eq!(count(&store, "spans"), 2);
    }
}
