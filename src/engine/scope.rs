//! Cancellation scopes: a tree of cancellation tokens, each with the reason it was stopped.
//!
//! A run can be cut short for several reasons — Ctrl-C, a step's or the workflow's timeout, a
//! budget, a sibling branch failing under `fail_fast` — and the spans that were cut must say
//! which: an interrupted span is `cancelled`, a timed-out one is an `error` that says it timed
//! out. Work observes its scope's token; when it fires, [`Scope::failure`] names the reason of
//! the nearest stopped scope.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Failure;
use crate::trace::ErrorInfo;

/// Why a scope was stopped.
#[derive(Clone, Debug)]
pub(crate) enum Stop {
    /// SIGINT or SIGTERM.
    Interrupted,
    /// A sibling failed under `fail_fast` (or an earlier item of a loop failed).
    SiblingFailed,
    /// `what` ran longer than its `timeout`.
    TimedOut { what: String, after: Duration },
    /// A budget was crossed; the error names the limit.
    Budget(ErrorInfo),
    /// A sink can no longer record the run (the store cannot be written); the error says why.
    SinkFailed(ErrorInfo),
}

#[derive(Clone)]
pub(crate) struct Scope {
    token: CancellationToken,
    reason: Arc<OnceLock<Stop>>,
    parent: Option<Arc<Scope>>,
}

/// `1.5s`, `2m`, `250ms`: a duration as people write it in workflows.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

impl Scope {
    pub fn root(token: CancellationToken) -> Scope {
        Scope {
            token,
            reason: Arc::new(OnceLock::new()),
            parent: None,
        }
    }

    /// A scope stopped with this one, or on its own.
    pub fn child(&self) -> Scope {
        Scope {
            token: self.token.child_token(),
            reason: Arc::new(OnceLock::new()),
            parent: Some(Arc::new(self.clone())),
        }
    }

    /// Stops this scope and everything under it; the first reason given is kept.
    pub fn stop(&self, reason: Stop) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }

    /// The reason of the nearest stopped scope, this one first.
    pub fn reason(&self) -> Option<Stop> {
        let mut scope = Some(self);
        while let Some(s) = scope {
            if let Some(reason) = s.reason.get() {
                return Some(reason.clone());
            }
            scope = s.parent.as_deref();
        }
        self.is_cancelled().then_some(Stop::Interrupted)
    }

    /// What a step cut short by this scope reports.
    pub fn failure(&self) -> Failure {
        match self.reason() {
            None | Some(Stop::Interrupted) | Some(Stop::SiblingFailed) => Failure::cancelled(),
            Some(Stop::TimedOut { what, after }) => Failure::error(ErrorInfo::with_data(
                format!("{what} timed out after {}", human(after)),
                serde_json::json!({ "timeout_ms": after.as_millis() as u64 }),
            )),
            Some(Stop::Budget(error) | Stop::SinkFailed(error)) => Failure::error(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_reason_wins_and_interrupts_cancel() {
        let root = Scope::root(CancellationToken::new());
        let step = root.child();
        let inner = step.child();
        step.stop(Stop::TimedOut {
            what: "step `slow`".into(),
            after: Duration::from_secs(2),
        });
        assert!(inner.is_cancelled());
        assert!(!root.is_cancelled());
        let f = inner.failure();
        assert!(!f.cancelled);
        assert_eq!(f.error.message, "step `slow` timed out after 2s");

        root.stop(Stop::Interrupted);
        let other = root.child();
        assert!(other.failure().cancelled);
        // The step keeps its own, earlier reason.
        assert!(!inner.failure().cancelled);
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(30)), "30s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }
}
