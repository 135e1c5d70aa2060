//! Ingest: traces that other programs send to `agentrace serve`, turned into agentrace's model.
//!
//! Two wire formats arrive: the payload the OpenAI Agents SDK posts to its traces dashboard
//! (`openai`) and OTLP/HTTP trace exports, protobuf or JSON (`otlp`). Both are mapped onto the
//! same [`Trace`]/[`Span`] model that `run` records, so `show`, `list`, `stats`, `diff` and
//! `export` read ingested traces like any other. Parsing is pure: nothing here touches the store;
//! `Store::ingest` writes a parsed [`Ingest`] in one transaction.

pub mod openai;
pub mod otlp;

#[cfg(test)]
mod fuzz;

use serde_json::{Map, Value};

use crate::trace::bound::{bound_map, bound_value, truncate_str};
use crate::trace::{Span, Timestamp, TraceId};

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

/// "a string", "an object", …: what a refusal says it found.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn sdk(started: &str, ended: &str) -> Ingest {
        let body = json!({"data": [
            {"object": "trace", "id": "trace_0123456789abcdef0123456789abcdef",
             "workflow_name": "w"},
            {"object": "trace.span", "id": "span_0123456789abcdef01234567",
             "trace_id": "trace_0123456789abcdef0123456789abcdef",
             "started_at": started, "ended_at": ended,
             "span_data": {"type": "custom", "name": "step", "data": {}}},
        ]});
        openai::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn otlp_span(start: u64, end: u64) -> Ingest {
        let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0123456789abcdef0123456789abcdef", "spanId": "0123456789abcdef",
            "name": "step", "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": end.to_string()}]}]}]});
        otlp::parse_json(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    const NOW: Timestamp = Timestamp(1_796_083_200_000_000); // 2026-12-01T00:00:00Z

    #[test]
    fn times_no_clock_gives_are_refused_with_the_reason() {
        let ok = sdk("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z");
        ok.check_times(NOW).unwrap();
        // A few hours ahead is a clock that differs, not an attack.
        sdk("2026-12-01T12:00:00Z", "2026-12-01T12:00:01Z")
            .check_times(NOW)
            .unwrap();
        for (ingest, says) in [
            (
                sdk("2099-01-01T00:00:00Z", "2099-01-01T00:00:01Z"),
                "started_at 2099-01-01T00:00:00.000000Z is more than a day ahead",
            ),
            (
                sdk("2026-11-30T10:00:00Z", "2099-01-01T00:00:00Z"),
                "ended_at 2099",
            ),
            (
                sdk("1999-12-31T23:59:59Z", "2026-11-30T10:00:00Z"),
                "is before 2000-01-01",
            ),
            (
                sdk("2026-11-30T10:00:01Z", "2026-11-30T10:00:00Z"),
                "ended_at 2026-11-30T10:00:00.000000Z is before its started_at",
            ),
            (otlp_span(u64::MAX, u64::MAX), "2554"),
            (otlp_span(0, 1), "before 2000-01-01"),
            (
                otlp_span(1_795_990_000_000_000_000, 1_795_989_000_000_000_000),
                "is before its started_at",
            ),
        ] {
            let e = ingest.check_times(NOW).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
            assert!(e.contains("\"step\""), "names the span: {e}");
        }
        // An event at a time no clock gives is refused like a span.
        let mut with_event = ok.clone();
        with_event.spans[0].events.push(crate::trace::Event {
            name: "tick".into(),
            time: Timestamp(i64::MAX),
            attributes: Map::new(),
        });
        let e = with_event.check_times(NOW).unwrap_err().to_string();
        assert!(e.contains("event \"tick\" time"), "{e}");
    }

    #[test]
    fn names_metadata_and_attributes_are_cut_to_their_limits() {
        let mut ingest = sdk("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z");
        let big = "x".repeat(2 * MAX_VALUE);
        ingest.traces[0].name = "n".repeat(31 << 20);
        ingest.traces[0].group_id = Some("g".repeat(5000));
        ingest.traces[0]
            .metadata
            .insert("note".into(), Value::String(big.clone()));
        for i in 0..100 {
            ingest.traces[0]
                .metadata
                .insert(format!("k{i}"), Value::from(i));
        }
        ingest.spans[0].name = "s".repeat(5000);
        ingest.spans[0]
            .attributes
            .insert("input".into(), json!([{"content": big}, "short"]));
        ingest.spans[0].error = Some(crate::trace::ErrorInfo::new("e".repeat(10_000)));
        assert_eq!(ingest.bound(), 6);
        let header = &ingest.traces[0];
        assert!(header.name.len() < MAX_NAME + 64, "{}", header.name.len());
        assert!(header.name.ends_with("…[truncated: 32505856 bytes in all]"));
        assert!(header.group_id.as_ref().unwrap().len() < MAX_NAME + 64);
        assert!(header.metadata["note"].as_str().unwrap().len() < MAX_METADATA + 64);
        assert_eq!(header.metadata.len(), MAX_METADATA_ITEMS + 1);
        let span = &ingest.spans[0];
        assert!(span.name.len() < MAX_NAME + 64);
        let content = span.attributes["input"][0]["content"].as_str().unwrap();
        assert!(content.len() < MAX_VALUE + 64 && content.contains("truncated"));
        assert_eq!(span.attributes["input"][1], "short");
        assert!(span.error.as_ref().unwrap().message.len() < MAX_ERROR + 64);
        // Within the limits, nothing changes.
        let mut fine = sdk("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z");
        let before = fine.clone();
        assert_eq!(fine.bound(), 0);
        assert_eq!(fine, before);
    }
}
