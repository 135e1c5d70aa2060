//! The trace model, ids, the W3C trace context a run joins, and the recorder that turns a
//! running workflow into spans for sinks.

pub mod bound;
pub mod context;
pub mod id;
pub mod ingest;
pub mod model;
pub mod recorder;
pub mod redact;
pub mod stats;

pub use id::{SpanId, TraceId};
pub use model::{ErrorInfo, Event, Span, SpanKind, Status, Timestamp, Trace, TraceDoc, Usage};
pub use recorder::{Alarm, Recorder, Sink, SpanHandle};
