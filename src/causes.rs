//! An error and its causes as one line, for messages that must say what really failed.
//!
//! A leaf of its own (like `query`): the model client (`llm`) and the exporters both use it, and
//! neither should import the other, or reach up to the top-level `error`, to get it.

/// `e` and each of its causes, `: `-separated: "builder error" alone does not say that a
/// certificate file could not be read.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Some errors repeat their cause in their own message.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}
