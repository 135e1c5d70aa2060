//! One failure, recorded once: where it happened.
//!
//! A failing step fails every span around it, up to the trace (status filters and the exports
//! rely on that: see docs/contract.md). The engine hands each enclosing span the same error it
//! got from below; recorded as it is, one failure would read four times in the tree, the JUnit
//! report and the CI summary. The recorder keeps the failures of the spans that ended, and a
//! span that ends with the error of one of its descendants records a pointer instead: status
//! `error`, message `failed because step `boom` failed`, and `data.caused_by`, the id of the
//! span where the failure happened. Readers follow [`caused_by`] to the real message.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::id::SpanId;
use super::model::{ErrorInfo, Span, SpanKind};

/// The key of an error's data that points at the span where its failure happened.
pub const CAUSED_BY: &str = "caused_by";

/// The span where the failure that `error` reports happened, when it happened below the span
/// that carries it.
pub fn caused_by(error: &ErrorInfo) -> Option<SpanId> {
    error
        .data
        .get(CAUSED_BY)
        .and_then(Value::as_str)
        .and_then(SpanId::parse)
}

/// What a span is called in a cause: "step `boom`" (by its id, as the CI reports name it: an
/// agent step's span is named after its agent), "model call `gpt-4o-mini`".
fn label(span: &Span) -> String {
    let (what, name) = match span.kind {
        SpanKind::Generation => ("model call", None),
        SpanKind::Function => ("tool call", None),
        SpanKind::Handoff => ("handoff", None),
        SpanKind::Score => ("score", None),
        SpanKind::McpTools => ("MCP server", None),
        SpanKind::Custom | SpanKind::Agent | SpanKind::Command => (
            "step",
            span.attributes.get("step_id").and_then(Value::as_str),
        ),
    };
    format!("{what} `{}`", name.unwrap_or(&span.name))
}

/// A span that ended with an error: the error it was handed (before any rewriting), and where
/// that failure happened.
struct Failed {
    span_id: SpanId,
    error: ErrorInfo,
    origin: SpanId,
    origin_label: String,
}

/// The failures of a trace's spans so far, and each span's parent (to tell a descendant).
#[derive(Default)]
pub(crate) struct Failures {
    parents: HashMap<SpanId, Option<SpanId>>,
    failed: Vec<Failed>,
}

impl Failures {
    pub(crate) fn started(&mut self, span: SpanId, parent: Option<SpanId>) {
        self.parents.insert(span, parent);
    }

    /// Whether `ancestor` encloses `span` (the span itself does not count).
    fn encloses(&self, ancestor: SpanId, span: SpanId) -> bool {
        let mut current = self.parents.get(&span).copied().flatten();
        // A cycle cannot be built through the recorder; the bound is only a guard.
        for _ in 0..self.parents.len() {
            match current {
                Some(id) if id == ancestor => return true,
                Some(id) => current = self.parents.get(&id).copied().flatten(),
                None => return false,
            }
        }
        false
    }

    /// The error `span` records when it ends with `error`: a pointer when a span inside it
    /// already failed with the same error, the error itself otherwise.
    pub(crate) fn ended(&mut self, span: &Span, error: ErrorInfo) -> ErrorInfo {
        let below = self
            .failed
            .iter()
            .rev()
            .find(|f| f.error == error && self.encloses(span.span_id, f.span_id))
            .map(|f| (f.origin, f.origin_label.clone()));
        let (origin, origin_label, recorded) = match below {
            Some((origin, origin_label)) => {
                let pointer = ErrorInfo::with_data(
                    format!("failed because {origin_label} failed"),
                    json!({ CAUSED_BY: origin.to_string() }),
                );
                (origin, origin_label, pointer)
            }
            None => (span.span_id, label(span), error.clone()),
        };
        self.failed.push(Failed {
            span_id: span.span_id,
            error,
            origin,
            origin_label,
        });
        recorded
    }

    /// Where the failure that `error` reports happened ("step `boom`"), when a span ended
    /// with it.
    pub(crate) fn origin_of(&self, error: &ErrorInfo) -> Option<String> {
        self.failed
            .iter()
            .rev()
            .find(|f| &f.error == error)
            .map(|f| f.origin_label.clone())
    }
}
