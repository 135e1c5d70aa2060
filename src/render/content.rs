//! `--content`: the inputs and outputs a span recorded, wrapped under its line in the tree.

use serde_json::Value;

use super::line::{Line, wrap};
use super::theme::Style;
use super::width_of;
use crate::trace::Span;

/// The most lines of one input or output shown.
const CONTENT_LINES: usize = 8;
/// The narrowest a wrapped content column gets, however deep the span.
const CONTENT_MIN: usize = 20;

/// The inputs and outputs a span recorded, wrapped under it: `input`, `output`, and a command's
/// `stdout` and `stderr`; at most [`CONTENT_LINES`] lines each.
pub(crate) fn content_lines(span: &Span, prefix: &str, width: usize) -> Vec<Line> {
    const FIELDS: [(&str, &str); 4] = [
        ("input", "input "),
        ("output", "output"),
        ("stdout", "stdout"),
        ("stderr_tail", "stderr"),
    ];
    let mut lines = Vec::new();
    for (key, label) in FIELDS {
        let Some(value) = span.attributes.get(key) else {
            continue;
        };
        let text = content_text(value);
        if text.trim().is_empty() {
            continue;
        }
        let lead = width_of(prefix) + width_of(label) + 1;
        let wrapped = wrap(&text, width.saturating_sub(lead).max(CONTENT_MIN));
        let more = wrapped.len().saturating_sub(CONTENT_LINES);
        for (n, text) in wrapped.iter().take(CONTENT_LINES).enumerate() {
            let label = if n == 0 {
                label.to_string()
            } else {
                " ".repeat(width_of(label))
            };
            lines.push(
                Line::default()
                    .text(prefix, Style::Muted)
                    .text(&label, Style::Muted)
                    .text(" ", Style::Plain)
                    .flex(text, Style::Plain, 1)
                    .fit(width),
            );
        }
        if more > 0 {
            let noun = if more == 1 { "line" } else { "lines" };
            lines.push(
                Line::default()
                    .text(prefix, Style::Muted)
                    .text(&" ".repeat(width_of(label) + 1), Style::Plain)
                    .flex(&format!("… {more} more {noun}"), Style::Muted, 1)
                    .fit(width),
            );
        }
    }
    lines
}

/// A recorded input or output as text: strings as they are, a list of chat messages as
/// `role: content` lines, anything else as compact JSON.
fn content_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.iter().all(|m| m.get("role").is_some()) => items
            .iter()
            .map(|m| {
                let role = m["role"].as_str().unwrap_or("?");
                let content = match &m["content"] {
                    Value::String(s) => s.clone(),
                    Value::Null => m
                        .get("tool_calls")
                        .map(|c| format!("(tool calls) {c}"))
                        .unwrap_or_default(),
                    other => other.to_string(),
                };
                format!("{role}: {content}")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}
