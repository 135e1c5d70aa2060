//! `--content`: the inputs and outputs a span recorded, wrapped under its line in the tree.
//!
//! A model call records its whole request, so each call of an agent repeats the system prompt
//! and everything said before it. What a reader wants under each call is what is *new* in it:
//! for the first call of an agent run its system prompt and the new user message, for the later
//! ones the tool results that came back (everything after the previous reply), and then the
//! reply itself, text or tool calls. Each message is cut on its own, so a long system prompt
//! never hides the user message after it. `--full` shows every message, uncut.

use serde_json::Value;

use super::line::{Line, wrap};
use super::theme::Style;
use super::width_of;
use crate::trace::{Span, SpanKind};

/// The most lines of one message, input or output shown (without `--full`).
const CONTENT_LINES: usize = 8;
/// The narrowest a wrapped content column gets, however deep the span.
const CONTENT_MIN: usize = 20;

/// How much of a span's content to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ContentView {
    /// Every message of a model call's input and every line, not only what is new, cut.
    pub(crate) full: bool,
    /// The span is a model call after the first of its agent run: its input repeats the
    /// system prompt and the earlier turns.
    pub(crate) later_call: bool,
}

/// One labelled field under a span: its pieces (messages, tool calls, a text) are wrapped and
/// cut one by one.
struct Field {
    label: &'static str,
    pieces: Vec<(String, Style)>,
}

/// The inputs and outputs a span recorded, wrapped under it: `input` (of a model call, what is
/// new in it), `calls` (the tool calls a model call made), the `tools` an MCP server listed,
/// `reason` (a reasoning model's summary of its reasoning), `output`, and a command's (or a
/// failed MCP server's) `stdout` and `stderr`; at most [`CONTENT_LINES`] lines per message or
/// text unless `view.full`.
pub(crate) fn content_lines(
    span: &Span,
    view: ContentView,
    prefix: &str,
    width: usize,
) -> Vec<Line> {
    let a = &span.attributes;
    let mut fields = Vec::new();
    if let Some(input) = a.get("input") {
        let pieces = match input {
            Value::Array(items) if is_chat(items) => {
                let first_call = span.kind != SpanKind::Generation || !view.later_call;
                chat_pieces(items, first_call, view.full)
            }
            other => vec![(content_text(other), Style::Plain)],
        };
        fields.push(Field {
            label: "input ",
            pieces,
        });
    }
    if let Some(Value::Array(calls)) = a.get("tool_calls") {
        fields.push(Field {
            label: "calls ",
            pieces: calls
                .iter()
                .map(|c| (call_text(c, "name", "arguments"), Style::Plain))
                .collect(),
        });
    }
    if span.kind == SpanKind::McpTools {
        let names = span.mcp_tool_names();
        if !names.is_empty() {
            fields.push(Field {
                label: "tools ",
                pieces: vec![(names.join(", "), Style::Plain)],
            });
        }
    }
    for (key, label) in [
        ("reasoning_summary", "reason"),
        ("output", "output"),
        ("stdout", "stdout"),
        ("stderr_tail", "stderr"),
    ] {
        if let Some(value) = a.get(key) {
            fields.push(Field {
                label,
                pieces: vec![(content_text(value), Style::Plain)],
            });
        }
    }
    let mut lines = Vec::new();
    for field in fields {
        field_lines(&field, view.full, prefix, width, &mut lines);
    }
    lines
}

/// A field's pieces, wrapped to the width left after the label and cut one by one; the label
/// on the field's first line only.
fn field_lines(field: &Field, full: bool, prefix: &str, width: usize, lines: &mut Vec<Line>) {
    let blank = " ".repeat(width_of(field.label));
    let lead = width_of(prefix) + width_of(field.label) + 1;
    let column = width.saturating_sub(lead).max(CONTENT_MIN);
    let mut first = true;
    let mut push = |text: &str, style: Style| {
        let label = if std::mem::take(&mut first) {
            field.label
        } else {
            blank.as_str()
        };
        lines.push(
            Line::default()
                .text(prefix, Style::Muted)
                .text(label, Style::Muted)
                .text(" ", Style::Plain)
                .flex(text, style, 1)
                .fit(width),
        );
    };
    for (text, style) in &field.pieces {
        if text.trim().is_empty() {
            continue;
        }
        let wrapped = wrap(text, column);
        let shown = if full {
            wrapped.len()
        } else {
            wrapped.len().min(CONTENT_LINES)
        };
        for line in &wrapped[..shown] {
            push(line, *style);
        }
        let more = wrapped.len() - shown;
        if more > 0 {
            let noun = if more == 1 { "line" } else { "lines" };
            push(&format!("… {more} more {noun}"), Style::Muted);
        }
    }
}

/// Whether a list is chat messages (every item has a `role`).
fn is_chat(items: &[Value]) -> bool {
    items.iter().all(|m| m.get("role").is_some())
}

fn role(message: &Value) -> &str {
    message["role"].as_str().unwrap_or("?")
}

/// The messages of a model call's input worth showing, one piece each: all of them with
/// `full`; otherwise those after the last assistant message (the tool results and user
/// messages that answer the previous reply), led on an agent run's first call by the system
/// prompt, with a muted count of the messages left out.
fn chat_pieces(items: &[Value], first_call: bool, full: bool) -> Vec<(String, Style)> {
    let text = |m: &Value| (message_text(m, items), Style::Plain);
    if full {
        return items.iter().map(text).collect();
    }
    let after = items
        .iter()
        .rposition(|m| role(m) == "assistant")
        .map_or(0, |i| i + 1);
    let system = if first_call {
        items.iter().take_while(|m| role(m) == "system").count()
    } else {
        0
    }
    .min(after);
    // The system prompt, then a count of what is left out where it was, then what is new.
    let mut pieces: Vec<(String, Style)> = items[..system].iter().map(text).collect();
    let left_out = after - system;
    if left_out > 0 {
        let noun = if left_out == 1 { "message" } else { "messages" };
        pieces.push((format!("… {left_out} earlier {noun}"), Style::Muted));
    }
    pieces.extend(items[after..].iter().map(text));
    pieces
}

/// One chat message as `role: content`; a tool result is named after the call it answers, and
/// an assistant message lists the tool calls it made.
fn message_text(message: &Value, items: &[Value]) -> String {
    let content = match &message["content"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match role(message) {
        "tool" => {
            let name = message["tool_call_id"]
                .as_str()
                .and_then(|id| called_name(items, id));
            match name {
                Some(name) => format!("tool {name}: {content}"),
                None => format!("tool: {content}"),
            }
        }
        "assistant" => {
            let calls: Vec<String> = message["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| format!("→ {}", call_text(&c["function"], "name", "arguments")))
                .collect();
            let mut text = format!("assistant: {content}");
            for call in calls {
                if !content.is_empty() {
                    text.push('\n');
                }
                text.push_str(&call);
            }
            text
        }
        role => format!("{role}: {content}"),
    }
}

/// The name of the tool an assistant message of `items` called with id `id`.
fn called_name<'a>(items: &'a [Value], id: &str) -> Option<&'a str> {
    items
        .iter()
        .filter_map(|m| m["tool_calls"].as_array())
        .flatten()
        .find(|c| c["id"].as_str() == Some(id))
        .and_then(|c| c["function"]["name"].as_str())
}

/// A tool call as `name(arguments)`, the arguments as compact JSON (as the model wrote them
/// when they are not JSON); just `name` when they were not recorded.
fn call_text(call: &Value, name: &str, arguments: &str) -> String {
    let name = call[name].as_str().unwrap_or("?");
    let args = match &call[arguments] {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) if map.is_empty() => String::new(),
            Ok(v) => v.to_string(),
            Err(_) => s.clone(),
        },
        Value::Null => return name.to_string(),
        Value::Object(map) if map.is_empty() => String::new(),
        other => other.to_string(),
    };
    format!("{name}({args})")
}

/// A recorded input or output as text: strings as they are, a list of chat messages as
/// `role: content` lines, anything else as compact JSON.
pub(crate) fn content_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) if is_chat(items) => items
            .iter()
            .map(|m| message_text(m, items))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn texts(pieces: Vec<(String, Style)>) -> Vec<String> {
        pieces.into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn a_reasoning_summary_shows_before_the_answer() {
        let mut span = crate::trace::fixture::bare_span(None, SpanKind::Generation, "m", 0, 1);
        span.attributes
            .insert("reasoning_summary".into(), json!("Checked the stock."));
        span.attributes.insert("output".into(), json!("In stock."));
        let view = ContentView {
            full: false,
            later_call: false,
        };
        let lines: Vec<String> = content_lines(&span, view, "", 80)
            .iter()
            .map(|l| {
                l.paint(&crate::render::theme::Theme::plain())
                    .trim_end()
                    .to_string()
            })
            .collect();
        assert_eq!(lines, ["reason Checked the stock.", "output In stock."]);
    }

    #[test]
    fn a_call_shows_what_is_new_in_it_and_full_shows_everything() {
        // The first call of a run that continues a session: the system prompt, then the count
        // of the earlier turns where they were, then the new user message.
        let session = [
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Where is my order?"}),
            json!({"role": "assistant", "content": "On its way."}),
            json!({"role": "user", "content": "Refund it."}),
        ];
        assert_eq!(
            texts(chat_pieces(&session, true, false)),
            [
                "system: Be brief.",
                "… 2 earlier messages",
                "user: Refund it."
            ]
        );
        // A later call: the tool results after the previous reply, named after their tool.
        let later = [
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Weather?"}),
            json!({"role": "assistant", "content": "", "tool_calls": [{"id": "call_0",
                "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "call_0", "content": "sunny"}),
        ];
        assert_eq!(
            texts(chat_pieces(&later, false, false)),
            ["… 3 earlier messages", "tool weather: sunny"]
        );
        assert_eq!(
            texts(chat_pieces(&later, false, true)),
            [
                "system: Be brief.",
                "user: Weather?",
                "assistant: → weather()",
                "tool weather: sunny"
            ]
        );
        let call = json!({"name": "lookup", "arguments": "{\"sku\": \"SKU-1\"}"});
        assert_eq!(
            call_text(&call, "name", "arguments"),
            "lookup({\"sku\":\"SKU-1\"})"
        );
        let unparsed = json!({"name": "lookup", "arguments": "sku=1"});
        assert_eq!(call_text(&unparsed, "name", "arguments"), "lookup(sku=1)");
        assert_eq!(
            call_text(&json!({"name": "lookup"}), "name", "arguments"),
            "lookup"
        );
    }
}
