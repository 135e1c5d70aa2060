//! Ingest: traces that other programs send to `agentrace serve`, turned into agentrace's model.
//!
//! Two wire formats arrive: the payload the OpenAI Agents SDK posts to its traces dashboard
//! (`openai`) and OTLP/HTTP trace exports, protobuf or JSON (`otlp`). Both are mapped onto the
//! same [`Trace`](crate::trace::Trace)/[`Span`](crate::trace::Span) model that `run` records,
//! so `show`, `list`, `stats`, `diff` and `export` read ingested traces like any other. Parsing
//! is pure: nothing here touches the store; `Store::ingest` writes a parsed [`Ingest`] in one
//! transaction.

pub mod openai;
pub mod otlp;

#[cfg(test)]
mod fuzz;

use serde_json::Value;

pub use crate::trace::ingest::{
    AHEAD_MICROS, EARLIEST, Ingest, IngestError, MAX_ERROR, MAX_METADATA, MAX_METADATA_ITEMS,
    MAX_NAME, MAX_VALUE, TraceHeader,
};
pub(crate) use crate::trace::json_kind;

/// A token count as senders write it: a non-negative integer, an integral double, or a string
/// of one.
fn token_count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::trace::Timestamp;

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
