//! The trace model, ids, and the recorder that turns a running workflow into spans for sinks.

pub mod id;
pub mod model;
pub mod recorder;

pub use id::{SpanId, TraceId};
pub use model::{ErrorInfo, Event, Span, SpanKind, Status, Timestamp, Trace, TraceDoc, Usage};
pub use recorder::{Alarm, Recorder, Sink, SpanHandle};
