//! The trace document as JSON: the object `show --format json` prints, serve's
//! `GET /api/traces/{id}` answers and the HTML export embeds for its front-end (docs/contract.md,
//! "JSON shapes"). It lives with the trace model so that every layer that hands a trace to a
//! reader (render, serve, export) gives the same keys in the same order, built key by key
//! (serde_json keeps insertion order). Additive changes only: scripts depend on it.

use serde_json::{Value, json};

use crate::trace::{ErrorInfo, Event, Span, Timestamp, TraceDoc};

/// Milliseconds rounded to microseconds, or `null` when the thing has not ended.
pub(crate) fn duration(ms: Option<f64>) -> Value {
    match ms {
        Some(ms) if ms.is_finite() => json!((ms * 1000.0).round() / 1000.0),
        _ => Value::Null,
    }
}

pub(crate) fn time(ts: Option<Timestamp>) -> Value {
    ts.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

pub(crate) fn error(e: Option<&ErrorInfo>) -> Value {
    e.map_or(
        Value::Null,
        |e| json!({"message": e.message, "data": e.data}),
    )
}

pub(crate) fn optional(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_string()))
}

/// `show --format json` without building the document in memory first: the same keys in the
/// same order as [`trace_doc_json`], serialized straight from the stored spans (a trace of
/// 100,000 spans would otherwise be copied twice before a byte is written).
pub struct DocJson<'a>(pub &'a TraceDoc);

struct SpanJson<'a>(&'a Span);

struct EventJson<'a>(&'a Event);

struct ErrorJson<'a>(Option<&'a ErrorInfo>);

impl serde::Serialize for ErrorJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            None => s.serialize_none(),
            Some(e) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("message", &e.message)?;
                m.serialize_entry("data", &e.data)?;
                m.end()
            }
        }
    }
}

impl serde::Serialize for EventJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("name", &e.name)?;
        m.serialize_entry("time", &e.time.to_rfc3339())?;
        m.serialize_entry("attributes", &e.attributes)?;
        m.end()
    }
}

impl serde::Serialize for SpanJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let sp = self.0;
        let mut m = s.serialize_map(Some(11))?;
        m.serialize_entry("span_id", &sp.span_id.to_string())?;
        m.serialize_entry("parent_id", &sp.parent_id.map(|p| p.to_string()))?;
        m.serialize_entry("kind", sp.kind.as_str())?;
        m.serialize_entry("name", &sp.name)?;
        m.serialize_entry("status", sp.status.as_str())?;
        m.serialize_entry("started_at", &sp.started_at.to_rfc3339())?;
        m.serialize_entry("ended_at", &time(sp.ended_at))?;
        m.serialize_entry("duration_ms", &duration(sp.duration_ms()))?;
        m.serialize_entry("attributes", &sp.attributes)?;
        let events: Vec<EventJson<'_>> = sp.events.iter().map(EventJson).collect();
        m.serialize_entry("events", &events)?;
        m.serialize_entry("error", &ErrorJson(sp.error.as_ref()))?;
        m.end()
    }
}

impl serde::Serialize for DocJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let t = &self.0.trace;
        let mut m = s.serialize_map(Some(15))?;
        m.serialize_entry("trace_id", &t.trace_id.to_string())?;
        m.serialize_entry("name", &t.name)?;
        m.serialize_entry("workflow", &t.workflow)?;
        m.serialize_entry("group_id", &t.group_id)?;
        m.serialize_entry("metadata", &t.metadata)?;
        m.serialize_entry("status", t.status.as_str())?;
        m.serialize_entry("started_at", &t.started_at.to_rfc3339())?;
        m.serialize_entry("ended_at", &time(t.ended_at))?;
        m.serialize_entry("duration_ms", &duration(t.duration_ms()))?;
        m.serialize_entry("usage", &t.usage)?;
        m.serialize_entry("cost_usd", &t.cost_usd)?;
        m.serialize_entry("offline", &t.is_offline())?;
        m.serialize_entry("error", &ErrorJson(t.error.as_ref()))?;
        let spans: Vec<SpanJson<'_>> = self.0.spans.iter().map(SpanJson).collect();
        m.serialize_entry("spans", &spans)?;
        m.end()
    }
}

/// `show --format json`: one trace with its spans in tree order, as a value (serve's API, the
/// HTML export). The same serializer as the streamed [`DocJson`], so the two cannot drift apart.
pub fn trace_doc_json(doc: &TraceDoc) -> Value {
    // Cannot fail: every map key is a string and every number is finite or null.
    serde_json::to_value(DocJson(doc)).unwrap_or(Value::Null)
}
