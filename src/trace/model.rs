//! The trace model: plain data that every other part of agentrace passes around.
//!
//! It mirrors the OpenAI Agents SDK's tracing model (a trace of nested spans with events, a group
//! id and metadata) and knows nothing of SQLite, terminals or OTLP, so that the store, the
//! renderers and the exporters can all be written against it.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::id::{SpanId, TraceId};

/// A point in time, in microseconds since the Unix epoch (UTC).
///
/// Stored as an integer so that SQLite can sort and filter on it; rendered as RFC 3339 with
/// microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(jiff::Timestamp::now().as_microsecond())
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// RFC 3339, UTC, always six fractional digits: `2026-11-24T22:19:34.123456Z`.
    pub fn to_rfc3339(self) -> String {
        match jiff::Timestamp::from_microsecond(self.0) {
            Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            Err(_) => String::from("invalid-time"),
        }
    }

    /// Milliseconds from `self` to `later`, with microsecond precision.
    pub fn ms_until(self, later: Timestamp) -> f64 {
        (later.0 - self.0) as f64 / 1000.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ts: jiff::Timestamp = s.parse().map_err(serde::de::Error::custom)?;
        Ok(Timestamp(ts.as_microsecond()))
    }
}

/// The name of the tool that hands a conversation to another agent is this prefix and the
/// agent's name (`transfer_to_billing`), as in the Agents SDK: the engine offers such tools, the
/// workflow format reserves the names, and the exports and ingest recognise them.
pub const HANDOFF_PREFIX: &str = "transfer_to_";

/// What a span stands for. The names match the Agents SDK's `span_data.type` values where one
/// exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// A business span from a `span:` block.
    Custom,
    /// One agent run.
    Agent,
    /// One model call.
    Generation,
    /// One tool call.
    Function,
    /// A handoff from one agent to another.
    Handoff,
    /// A `run:` step: one process.
    Command,
    /// One scorer of `scores:`: its result is the evaluation event on it; a judge's model call
    /// is its child.
    Score,
    /// The tools one MCP server offered to one agent run (the Agents SDK's `mcp_tools`): named
    /// after the server, a child of the `agent` span. Its calls are `function` spans that carry
    /// `mcp.server`.
    #[serde(rename = "mcp_tools")]
    McpTools,
}

impl SpanKind {
    pub const ALL: [SpanKind; 8] = [
        SpanKind::Custom,
        SpanKind::Agent,
        SpanKind::Generation,
        SpanKind::Function,
        SpanKind::Handoff,
        SpanKind::Command,
        SpanKind::Score,
        SpanKind::McpTools,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Custom => "custom",
            SpanKind::Agent => "agent",
            SpanKind::Generation => "generation",
            SpanKind::Function => "function",
            SpanKind::Handoff => "handoff",
            SpanKind::Command => "command",
            SpanKind::Score => "score",
            SpanKind::McpTools => "mcp_tools",
        }
    }

    pub fn parse(s: &str) -> Option<SpanKind> {
        SpanKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of a trace or a span. `Skipped` applies to spans only; `Running` to anything that
/// has not ended yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Ok,
    Error,
    Cancelled,
    Skipped,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Running,
        Status::Ok,
        Status::Error,
        Status::Cancelled,
        Status::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Cancelled => "cancelled",
            Status::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token usage of one model call, or a sum of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(input_tokens: u64, output_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            total_tokens: input_tokens + output_tokens,
        }
    }

    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.total_tokens += other.total_tokens;
    }

    pub fn is_zero(&self) -> bool {
        self.total_tokens == 0 && self.input_tokens == 0 && self.output_tokens == 0
    }

    /// Reads the `usage` attribute of a generation span: all three counts, whole and not
    /// negative, or none. Read in place (every model call adds to its agent span's).
    pub fn from_attributes(attributes: &Map<String, Value>) -> Option<Usage> {
        let usage = attributes.get("usage")?.as_object()?;
        let count = |key: &str| usage.get(key)?.as_u64();
        Some(Usage {
            input_tokens: count("input_tokens")?,
            output_tokens: count("output_tokens")?,
            total_tokens: count("total_tokens")?,
        })
    }

    /// The usage as its serialized form, built directly.
    pub fn to_value(self) -> Value {
        let mut map = Map::with_capacity(3);
        map.insert("input_tokens".into(), self.input_tokens.into());
        map.insert("output_tokens".into(), self.output_tokens.into());
        map.insert("total_tokens".into(), self.total_tokens.into());
        Value::Object(map)
    }
}

/// The message of a span whose run died while it was open. Such a span ends at the last record
/// of its run, so its duration is the time known to have elapsed, not its length.
pub const DID_NOT_FINISH: &str = "did not finish";

/// An error recorded on a span or a trace: `{"message": "...", "data": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub message: String,
    #[serde(default)]
    pub data: Value,
}

impl ErrorInfo {
    pub fn new(message: impl Into<String>) -> Self {
        ErrorInfo {
            message: message.into(),
            data: Value::Object(Map::new()),
        }
    }

    pub fn with_data(message: impl Into<String>, data: Value) -> Self {
        ErrorInfo {
            message: message.into(),
            data,
        }
    }

    /// The error of a span whose run died before it ended: [`DID_NOT_FINISH`], and
    /// `data.unfinished` for readers that do not match on messages.
    pub fn did_not_finish() -> Self {
        let mut data = Map::new();
        data.insert("unfinished".into(), Value::Bool(true));
        ErrorInfo::with_data(DID_NOT_FINISH, Value::Object(data))
    }
}

/// Something that happened at a point in time within a span.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    pub time: Timestamp,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// One span, flat: the tree is rebuilt from `parent_id` only where it is rendered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub span_id: SpanId,
    pub trace_id: TraceId,
    pub parent_id: Option<SpanId>,
    pub kind: SpanKind,
    pub name: String,
    pub status: Status,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub attributes: Map<String, Value>,
    pub events: Vec<Event>,
    pub error: Option<ErrorInfo>,
}

impl Span {
    pub fn duration_ms(&self) -> Option<f64> {
        self.ended_at.map(|end| self.started_at.ms_until(end))
    }

    /// Whether the span's run died while it was open (closed as "did not finish" since): its
    /// duration is then only the time known to have elapsed. Stores from before
    /// `data.unfinished` are told by the message.
    pub fn did_not_finish(&self) -> bool {
        self.status == Status::Error
            && self.error.as_ref().is_some_and(|e| {
                e.data.get("unfinished") == Some(&Value::Bool(true)) || e.message == DID_NOT_FINISH
            })
    }

    /// The usage of a generation span (its `usage` attribute), or the summed usage an agent span
    /// carries; `None` for spans without tokens.
    pub fn usage(&self) -> Option<Usage> {
        Usage::from_attributes(&self.attributes)
    }
}

/// The metadata key that marks a trace whose model calls the built-in offline model answered
/// (`run --offline`, `eval --offline`): its tokens are estimates, its cost is zero, and `stats`
/// leaves it out unless asked. Kept in the metadata, as the trace context is
/// ([`super::context`]), rather than in a new store column: the mark then survives every store
/// backend, export and ingest unchanged, and older binaries read such a store as before.
pub const META_OFFLINE: &str = "agentrace.offline";

/// The trace row: everything about a run except its spans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub trace_id: TraceId,
    /// The trace's own name (the workflow name unless the file holds several `traces:`).
    pub name: String,
    /// The workflow file's top-level `name`.
    pub workflow: String,
    pub group_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub status: Status,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub usage: Usage,
    /// The summed `cost_usd` of its generation spans; `None` when none had a known price.
    pub cost_usd: Option<f64>,
    pub error: Option<ErrorInfo>,
    /// The process that writes this trace, so that a later reader can tell a live run from one
    /// that was killed.
    pub pid: Option<u32>,
}

impl Trace {
    /// A trace that this process starts now: running, with no group, metadata or usage yet.
    pub fn running(
        trace_id: TraceId,
        name: impl Into<String>,
        workflow: impl Into<String>,
    ) -> Trace {
        Trace {
            trace_id,
            name: name.into(),
            workflow: workflow.into(),
            group_id: None,
            metadata: Map::new(),
            status: Status::Running,
            started_at: Timestamp::now(),
            ended_at: None,
            usage: Usage::default(),
            cost_usd: None,
            error: None,
            pid: Some(std::process::id()),
        }
    }

    /// A finished, empty trace for tests: id `[1; 16]`, from 0 to 100 µs.
    #[cfg(test)]
    pub(crate) fn sample(name: &str) -> Trace {
        Trace {
            trace_id: TraceId([1; 16]),
            name: name.into(),
            workflow: name.into(),
            group_id: None,
            metadata: Map::new(),
            status: Status::Ok,
            started_at: Timestamp(0),
            ended_at: Some(Timestamp(100)),
            usage: Usage::default(),
            cost_usd: None,
            error: None,
            pid: None,
        }
    }

    pub fn duration_ms(&self) -> Option<f64> {
        self.ended_at.map(|end| self.started_at.ms_until(end))
    }

    /// Whether the offline model answered this trace's model calls ([`META_OFFLINE`]).
    pub fn is_offline(&self) -> bool {
        matches!(self.metadata.get(META_OFFLINE), Some(Value::Bool(true)))
    }
}

/// A trace with its spans, in tree order (parents before children, siblings in start order).
#[derive(Clone, Debug, PartialEq)]
pub struct TraceDoc {
    pub trace: Trace,
    pub spans: Vec<Span>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_reads_back_as_its_serde_form_and_only_when_whole() {
        let u = Usage::new(12, 4);
        assert_eq!(u.to_value(), serde_json::to_value(u).unwrap());
        assert_eq!(
            serde_json::to_string(&u.to_value()).unwrap(),
            serde_json::to_string(&u).unwrap()
        );
        let attrs = |v: Value| Map::from_iter([("usage".to_string(), v)]);
        assert_eq!(Usage::from_attributes(&attrs(u.to_value())), Some(u));
        for bad in [
            serde_json::json!({"input_tokens": 1, "output_tokens": 2}),
            serde_json::json!({"input_tokens": 1.5, "output_tokens": 2, "total_tokens": 3}),
            serde_json::json!({"input_tokens": -1, "output_tokens": 2, "total_tokens": 1}),
            serde_json::json!("12"),
        ] {
            assert_eq!(Usage::from_attributes(&attrs(bad.clone())), None, "{bad}");
            assert!(serde_json::from_value::<Usage>(bad).is_err());
        }
        assert_eq!(Usage::from_attributes(&Map::new()), None);
    }

    #[test]
    fn timestamps_render_with_microseconds() {
        let ts = Timestamp(1_795_990_774_123_456);
        assert_eq!(ts.to_rfc3339(), "2026-11-29T22:19:34.123456Z");
        let back: Timestamp = serde_json::from_value(serde_json::json!(ts.to_rfc3339())).unwrap();
        assert_eq!(back, ts);
    }

    #[test]
    fn usage_sums() {
        let mut u = Usage::new(1, 2);
        u.add(Usage::new(10, 20));
        assert_eq!(u, Usage::new(11, 22));
        assert_eq!(u.total_tokens, 33);
    }
}
