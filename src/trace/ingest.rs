//! What a sender of traces hands to the store: trace headers and spans ([`Ingest`]), their
//! limits and the checks every ingest passes before it is written.
//!
//! These types are shared by the wire formats that produce them (`crate::ingest`) and by the
//! store that writes them (`Store::ingest`); they live in the trace model so that the store
//! depends on the model only, not on the parsers.

use serde_json::{Map, Value};

use crate::trace::bound::{bound_map, bound_value, truncate_str};
use crate::trace::{Span, Timestamp, Trace, TraceId};

/// The root-span attribute under which a pushing run (`AGENTRACE_REMOTE`) sends its trace row
/// as JSON text: the row as the run has it, which ingest writes as it is instead of deriving it
/// from the spans (a run knows why it failed, what its judges cost, when it started and ended;
/// its spans alone do not say).
pub const TRACE_ROW_ATTRIBUTE: &str = "agentrace.trace.row";

/// The longest trace, workflow, group, span or event name kept, in bytes; longer ones are cut
/// with a marker. Names are in every list row, tree and table.
pub const MAX_NAME: usize = 1024;
/// The longest metadata key or string value kept (metadata is in every list row), in bytes.
pub const MAX_METADATA: usize = 1024;
/// The most metadata entries kept (per object, at any depth).
pub const MAX_METADATA_ITEMS: usize = 64;
/// The longest string kept anywhere in a span's or event's attributes or error data, in bytes:
/// room for a long prompt, not for a body-sized blob.
pub const MAX_VALUE: usize = 256 * 1024;
/// The longest error message kept, in bytes.
pub const MAX_ERROR: usize = 4096;

/// The earliest time an ingested span or event may carry: 2000-01-01T00:00:00Z.
pub const EARLIEST: Timestamp = Timestamp(946_684_800_000_000);
/// How far past this server's clock an ingested time may be (clocks differ a little), in µs.
pub const AHEAD_MICROS: i64 = 24 * 3600 * 1_000_000;

/// What one request carried. Spans may belong to traces whose header came in an earlier request
/// (or has not come yet), and may arrive before their parents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingest {
    pub traces: Vec<TraceHeader>,
    pub spans: Vec<Span>,
    /// Trace rows as the run that records them has them ([`TRACE_ROW_ATTRIBUTE`]): written as
    /// they are rather than derived from the spans. Never owned by a local writer (`pid` is
    /// dropped).
    pub rows: Vec<Trace>,
}

impl Ingest {
    /// Cuts every name, metadata entry, attribute string and error message a sender may make
    /// arbitrarily long down to its limit (the `MAX_*` constants), with a marker; returns how
    /// many fields were cut.
    pub fn bound(&mut self) -> usize {
        let mut cut = 0;
        let mut count = |was_cut: bool| cut += usize::from(was_cut);
        for header in &mut self.traces {
            count(truncate_str(&mut header.name, MAX_NAME));
            count(truncate_str(&mut header.workflow, MAX_NAME));
            if let Some(group) = &mut header.group_id {
                count(truncate_str(group, MAX_NAME));
            }
            count(bound_map(
                &mut header.metadata,
                MAX_METADATA,
                MAX_METADATA_ITEMS,
            ));
        }
        for row in &mut self.rows {
            count(truncate_str(&mut row.name, MAX_NAME));
            count(truncate_str(&mut row.workflow, MAX_NAME));
            if let Some(group) = &mut row.group_id {
                count(truncate_str(group, MAX_NAME));
            }
            count(bound_map(
                &mut row.metadata,
                MAX_METADATA,
                MAX_METADATA_ITEMS,
            ));
            if let Some(error) = &mut row.error {
                count(truncate_str(&mut error.message, MAX_ERROR));
                count(bound_value(&mut error.data, MAX_VALUE, usize::MAX));
            }
        }
        for span in &mut self.spans {
            count(truncate_str(&mut span.name, MAX_NAME));
            count(bound_map(&mut span.attributes, MAX_VALUE, usize::MAX));
            for event in &mut span.events {
                count(truncate_str(&mut event.name, MAX_NAME));
                count(bound_map(&mut event.attributes, MAX_VALUE, usize::MAX));
            }
            if let Some(error) = &mut span.error {
                count(truncate_str(&mut error.message, MAX_ERROR));
                count(bound_value(&mut error.data, MAX_VALUE, usize::MAX));
            }
        }
        cut
    }

    /// Refuses times no real clock gives: before [`EARLIEST`], more than [`AHEAD_MICROS`] past
    /// `now`, or a span that ends before it starts. Refused, not clamped, like any other bad
    /// field: a clamped time would be a made-up one, and a sender with a broken clock should
    /// hear about it. A sender choosing its times also chose where its trace sorts.
    pub fn check_times(&self, now: Timestamp) -> Result<(), IngestError> {
        let latest = Timestamp(now.micros().saturating_add(AHEAD_MICROS));
        let check = |what: &str, t: Timestamp| {
            if t.micros() < EARLIEST.micros() {
                Err(IngestError::new(format!(
                    "{what} {} is before 2000-01-01",
                    t.to_rfc3339()
                )))
            } else if t.micros() > latest.micros() {
                Err(IngestError::new(format!(
                    "{what} {} is more than a day ahead of this server's clock ({})",
                    t.to_rfc3339(),
                    now.to_rfc3339()
                )))
            } else {
                Ok(())
            }
        };
        for row in &self.rows {
            let at = format!("trace {}", row.trace_id);
            check(&format!("{at}: started_at"), row.started_at)?;
            if let Some(end) = row.ended_at {
                check(&format!("{at}: ended_at"), end)?;
                if end.micros() < row.started_at.micros() {
                    return Err(IngestError::new(format!(
                        "{at}: ended_at {} is before its started_at {}",
                        end.to_rfc3339(),
                        row.started_at.to_rfc3339()
                    )));
                }
            }
        }
        for span in &self.spans {
            let at = format!("span {} ({:?})", span.span_id, short(&span.name));
            check(&format!("{at}: started_at"), span.started_at)?;
            if let Some(end) = span.ended_at {
                check(&format!("{at}: ended_at"), end)?;
                if end.micros() < span.started_at.micros() {
                    return Err(IngestError::new(format!(
                        "{at}: ended_at {} is before its started_at {}",
                        end.to_rfc3339(),
                        span.started_at.to_rfc3339()
                    )));
                }
            }
            for event in &span.events {
                check(
                    &format!("{at}: event {:?} time", short(&event.name)),
                    event.time,
                )?;
            }
        }
        Ok(())
    }
}

/// The start of a name, for a message.
fn short(name: &str) -> String {
    let mut s = name.to_string();
    truncate_str(&mut s, 60);
    s
}

/// What a sender says about a trace itself. Its times, status and usage are not sent by either
/// format: the store derives them from the trace's spans.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceHeader {
    pub trace_id: TraceId,
    /// The trace's name (the Agents SDK's `workflow_name`; for OTLP the root span's name).
    pub name: String,
    /// The workflow it belongs to; `list --workflow` filters on it. Usually the same as `name`.
    pub workflow: String,
    pub group_id: Option<String>,
    pub metadata: Map<String, Value>,
}

/// Why a payload was refused: the server answers 400 with this message and stores nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestError(pub String);

impl IngestError {
    pub fn new(message: impl Into<String>) -> Self {
        IngestError(message.into())
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IngestError {}
