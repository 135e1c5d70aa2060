//! Placeholder: being written (self-contained HTML waterfall).
use crate::trace::TraceDoc;

pub fn render(_docs: &[TraceDoc]) -> String {
    String::new()
}
