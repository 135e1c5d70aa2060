//! W3C trace context (`traceparent`, `tracestate`): what `run` joins when `TRACEPARENT` is set,
//! and what every process the engine starts receives for its own span.
//!
//! The context a run joined is kept in the trace's metadata under reserved keys
//! ([`META_TRACEPARENT`], [`META_TRACESTATE`]) rather than in new store columns: older binaries
//! read such a store unchanged, the row and the `Trace` type keep their shape, and `show` prints
//! where the trace came from. The exporter reads them back: when the stored trace id is the
//! parent's, the root span's parent is the given span; when it is not (the id was already taken
//! in this store), the parent becomes a span link.
//!
//! It lives with the trace model, not in `export/otlp`, because both the engine (which joins the
//! context and passes it to child processes) and the exporter (which reads it back) need it.

use serde_json::{Map, Value};

use crate::trace::{SpanId, TraceId};

/// The `traceparent` header the run joined, as received.
pub const META_TRACEPARENT: &str = "agentrace.traceparent";
/// The `tracestate` header that came with it.
pub const META_TRACESTATE: &str = "agentrace.tracestate";

/// A parsed `traceparent`: version 00, or a later version read as 00 (as the spec asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub flags: u8,
}

fn hex_byte(s: &str) -> Option<u8> {
    (s.len() == 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl TraceParent {
    /// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; all-zero ids, upper-case hex and
    /// version `ff` are invalid.
    pub fn parse(header: &str) -> Option<TraceParent> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = hex_byte(parts.next()?)?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        if version == 0xff
            || (version == 0 && rest.is_some())
            || !lower_hex(trace, 32)
            || !lower_hex(span, 16)
        {
            return None;
        }
        let flags = hex_byte(flags)?;
        Some(TraceParent {
            trace_id: TraceId::parse(trace)?,
            span_id: SpanId::parse(span)?,
            flags,
        })
    }

    /// The header a child of `span` in `trace` receives (always sampled: agentrace records
    /// every span).
    pub fn header(trace: TraceId, span: SpanId) -> String {
        format!("00-{}-{}-01", trace.hex(), span.hex())
    }
}

/// A `tracestate` worth passing on: at most 512 characters of printable ASCII, list members
/// `key=value`. Anything else is dropped, as the spec allows.
pub fn valid_tracestate(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 512
        && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && s.split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .all(|m| {
                m.split_once('=')
                    .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
            });
    ok.then(|| s.to_string())
}

/// The trace context a run joins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub parent: TraceParent,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// From `TRACEPARENT` and `TRACESTATE`; `None` when TRACEPARENT is unset or invalid.
    pub fn from_env() -> Option<TraceContext> {
        let parent = TraceParent::parse(&std::env::var("TRACEPARENT").ok()?)?;
        let tracestate = std::env::var("TRACESTATE")
            .ok()
            .and_then(|s| valid_tracestate(&s));
        Some(TraceContext { parent, tracestate })
    }

    /// The normalised `traceparent` header.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.parent.trace_id.hex(),
            self.parent.span_id.hex(),
            self.parent.flags
        )
    }

    /// Records this context in trace metadata (replacing anything under the reserved keys).
    pub fn record(&self, metadata: &mut Map<String, Value>) {
        metadata.insert(
            META_TRACEPARENT.to_string(),
            Value::String(self.traceparent()),
        );
        match &self.tracestate {
            Some(state) => {
                metadata.insert(META_TRACESTATE.to_string(), Value::String(state.clone()));
            }
            None => {
                metadata.remove(META_TRACESTATE);
            }
        }
    }

    /// The context recorded in trace metadata, if any.
    pub fn recorded(metadata: &Map<String, Value>) -> Option<TraceContext> {
        let parent = TraceParent::parse(metadata.get(META_TRACEPARENT)?.as_str()?)?;
        let tracestate = metadata
            .get(META_TRACESTATE)
            .and_then(Value::as_str)
            .and_then(valid_tracestate);
        Some(TraceContext { parent, tracestate })
    }
}

/// Whether a metadata key is one of the reserved trace-context keys (not exported as metadata).
pub fn is_reserved(key: &str) -> bool {
    key == META_TRACEPARENT || key == META_TRACESTATE
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example() {
        let p = TraceParent::parse(TP).unwrap();
        assert_eq!(p.trace_id.hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.span_id.hex(), "00f067aa0ba902b7");
        assert_eq!(p.flags, 1);
        assert_eq!(TraceParent::header(p.trace_id, p.span_id), TP);
    }

    #[test]
    fn rejects_invalid_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
                .is_some()
        );
    }

    #[test]
    fn tracestate_is_checked() {
        assert_eq!(
            valid_tracestate("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7").as_deref(),
            Some("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
        );
        assert!(valid_tracestate("no-equals").is_none());
        assert!(valid_tracestate("a=\u{7f}").is_none());
        assert!(valid_tracestate(&format!("a={}", "x".repeat(600))).is_none());
    }

    #[test]
    fn round_trips_through_metadata() {
        let ctx = TraceContext {
            parent: TraceParent::parse(TP).unwrap(),
            tracestate: Some("k=v".into()),
        };
        let mut meta = Map::new();
        ctx.record(&mut meta);
        assert_eq!(meta[META_TRACEPARENT], TP);
        assert_eq!(TraceContext::recorded(&meta), Some(ctx));
    }
}
