//! Replay (`run --replay TRACE_ID`): a model that answers every call from the generation spans
//! of an earlier trace, with no server at all. A workflow of several `traces:` recorded one
//! trace each; `--replay` given once per trace pools their calls.
//!
//! A request is answered by the first not-yet-used recorded call whose `input` messages equal
//! the request's messages and whose model is the requested one: parallel branches that call in
//! another order still find their answers, and identical requests are answered in the order
//! they were first recorded. The answer reproduces the recorded text, tool calls, usage, response
//! model and finish reason. A request that matches nothing fails the call (not retryable) with
//! the closest recorded call's first difference, so a changed prompt is easy to find.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{
    ChatRequest, ChatResponse, DeltaFn, Message, Model, ModelError, ModelFuture, ToolCall,
};
use crate::trace::{SpanKind, TraceDoc, TraceId, Usage};

/// The longest excerpt of a message a mismatch report quotes.
const EXCERPT: usize = 60;

/// One model call of the recorded trace.
#[derive(Clone, Debug, PartialEq)]
struct RecordedCall {
    /// The agent whose span holds the generation (for the mismatch report).
    agent: Option<String>,
    model: String,
    messages: Vec<Message>,
    /// The reply, or the error message of a call that failed when it was recorded.
    answer: Result<ChatResponse, String>,
}

/// Why a trace cannot be replayed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "cannot replay {trace}: it was recorded with --no-content, and replay needs the content \
         of its model calls (requests and replies); record the run again without --no-content"
    )]
    NoContent { trace: String },
    #[error(
        "cannot replay {trace}: the recorded input of generation span {span} is not a list of \
         chat messages ({detail})"
    )]
    BadInput {
        trace: String,
        span: String,
        detail: String,
    },
}

/// The recorded model calls of one trace, shared by the replay models of every agent; each call
/// answers at most once.
#[derive(Debug)]
pub struct Recording {
    trace_ids: Vec<TraceId>,
    /// When the first recorded trace started: `session:` history is read as it stood then.
    started_at: Option<crate::trace::Timestamp>,
    calls: Vec<RecordedCall>,
    used: Mutex<Vec<bool>>,
}

impl Recording {
    /// Reads the generation spans of `doc`, in the order they started.
    pub fn from_trace(doc: &TraceDoc) -> Result<Recording, ReplayError> {
        Recording::from_traces(std::slice::from_ref(doc))
    }

    /// Pools the model calls of several traces (the traces of one multi-trace run): each
    /// trace's calls in the order they started, the traces in the order given.
    pub fn from_traces(docs: &[TraceDoc]) -> Result<Recording, ReplayError> {
        let mut calls = Vec::new();
        for doc in docs {
            calls.extend(recorded_calls(doc)?);
        }
        let used = Mutex::new(vec![false; calls.len()]);
        Ok(Recording {
            trace_ids: docs.iter().map(|d| d.trace.trace_id).collect(),
            started_at: docs.iter().map(|d| d.trace.started_at).min(),
            calls,
            used,
        })
    }

    /// The traces the answers come from.
    pub fn trace_ids(&self) -> &[TraceId] {
        &self.trace_ids
    }

    /// When the earliest of the recorded traces started.
    pub fn started_at(&self) -> Option<crate::trace::Timestamp> {
        self.started_at
    }

    /// How many model calls the traces recorded.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Takes the first unused recorded call that matches, or says why none does.
    fn answer(&self, agent: &str, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let matches = |c: &RecordedCall| c.model == request.model && c.messages == request.messages;
        let found = self
            .calls
            .iter()
            .enumerate()
            .find(|(i, c)| !used[*i] && matches(c));
        if let Some((i, call)) = found {
            used[i] = true;
            return match &call.answer {
                Ok(response) => Ok(response.clone()),
                Err(message) => Err(ModelError::new(format!(
                    "replay: the recorded model call for this request failed (agent `{agent}`, \
                     model {}): {message}",
                    request.model
                ))),
            };
        }
        let head = format!(
            "replay: no recorded model call matches this request (agent `{agent}`, model {}, {} \
             message{}",
            request.model,
            request.messages.len(),
            if request.messages.len() == 1 { "" } else { "s" }
        );
        let reason = if self.calls.is_empty() {
            let ids: Vec<String> = self.trace_ids.iter().map(ToString::to_string).collect();
            format!("; {} recorded no model calls", ids.join(", "))
        } else if self.calls.iter().any(matches) {
            let n = self.calls.iter().filter(|c| matches(c)).count();
            format!(
                "; the {} recorded call{} with these messages {} already answered",
                n,
                if n == 1 { "" } else { "s" },
                if n == 1 { "was" } else { "were all" }
            )
        } else {
            // The closest recording: an unused one if possible, the same agent, the same model,
            // then the longest run of equal messages.
            let closest = self
                .calls
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| {
                    (
                        !used[*i],
                        c.agent.as_deref() == Some(agent),
                        c.model == request.model,
                        common_prefix(&c.messages, &request.messages),
                        std::cmp::Reverse(*i),
                    )
                })
                .map(|(_, c)| c);
            match closest {
                Some(c) => format!("; first difference: {}", first_difference(request, c)),
                None => String::new(),
            }
        };
        Err(ModelError::new(format!("{head}{reason})")))
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_string)
}

/// The `tool_calls` attribute of a generation span: `[{id, name, arguments}]`.
fn recorded_tool_calls(value: Option<&Value>) -> Vec<ToolCall> {
    value
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .map(|c| {
                    ToolCall::new(
                        c["id"].as_str().unwrap_or_default(),
                        c["name"].as_str().unwrap_or_default(),
                        c["arguments"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn common_prefix(a: &[Message], b: &[Message]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The first way `request` differs from `recorded`, said for a person (messages count from 1).
fn first_difference(request: &ChatRequest, recorded: &RecordedCall) -> String {
    if recorded.model != request.model {
        return format!("model {} vs recorded {}", request.model, recorded.model);
    }
    let n = common_prefix(&recorded.messages, &request.messages);
    let at = n + 1;
    match (request.messages.get(n), recorded.messages.get(n)) {
        (Some(ours), Some(theirs)) => {
            if ours.role() != theirs.role() {
                return format!(
                    "message {at} role {} vs recorded {}",
                    ours.role(),
                    theirs.role()
                );
            }
            if ours.content() != theirs.content() {
                let (a, b) = excerpts(ours.content(), theirs.content());
                return format!("message {at} content {a:?} vs recorded {b:?}");
            }
            match (ours, theirs) {
                (
                    Message::Assistant { tool_calls: a, .. },
                    Message::Assistant { tool_calls: b, .. },
                ) => format!(
                    "message {at} tool calls {} vs recorded {}",
                    describe_calls(a),
                    describe_calls(b)
                ),
                (
                    Message::Tool {
                        tool_call_id: a, ..
                    },
                    Message::Tool {
                        tool_call_id: b, ..
                    },
                ) => format!("message {at} tool_call_id {a:?} vs recorded {b:?}"),
                _ => format!("message {at} differs"),
            }
        }
        (Some(ours), None) => format!(
            "message {at} ({}) is not in the recorded request, which has {} message{}",
            ours.role(),
            recorded.messages.len(),
            if recorded.messages.len() == 1 {
                ""
            } else {
                "s"
            }
        ),
        (None, Some(theirs)) => format!(
            "the recorded request goes on with message {at} ({}), this one has {} message{}",
            theirs.role(),
            request.messages.len(),
            if request.messages.len() == 1 { "" } else { "s" }
        ),
        (None, None) => "none in the messages".to_string(),
    }
}

fn describe_calls(calls: &[ToolCall]) -> String {
    let parts: Vec<String> = calls
        .iter()
        .map(|c| format!("{}({})", c.function.name, c.function.arguments))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Excerpts of two texts around their first differing character, at most [`EXCERPT`] characters
/// each, with `…` where they were cut.
fn excerpts(a: &str, b: &str) -> (String, String) {
    let same = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let start = same.saturating_sub(EXCERPT / 4);
    (cut(a, start), cut(b, start))
}

fn cut(s: &str, start: usize) -> String {
    let total = s.chars().count();
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(s.chars().skip(start).take(EXCERPT));
    if start + EXCERPT < total {
        out.push('…');
    }
    out
}

/// The replay model of one agent.
pub struct ReplayModel {
    recording: Arc<Recording>,
    agent: String,
}

impl ReplayModel {
    pub fn new(recording: Arc<Recording>, agent: impl Into<String>) -> Self {
        ReplayModel {
            recording,
            agent: agent.into(),
        }
    }
}

impl Model for ReplayModel {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_delta: Option<&'a DeltaFn<'a>>,
    ) -> ModelFuture<'a> {
        Box::pin(async move {
            let response = self.recording.answer(&self.agent, request)?;
            // A streamed answer is replayed as one delta.
            if let Some(f) = on_delta
                && !response.text.is_empty()
            {
                f(&response.text);
            }
            Ok(response)
        })
    }
}

/// The model calls of one trace's generation spans, in the order they started.
fn recorded_calls(doc: &TraceDoc) -> Result<Vec<RecordedCall>, ReplayError> {
    let trace = doc.trace.trace_id.to_string();
    let mut generations: Vec<_> = doc
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Generation)
        .collect();
    // Tree order keeps siblings in start order; across branches, start time decides.
    generations.sort_by_key(|s| s.started_at);
    let mut calls = Vec::with_capacity(generations.len());
    for span in generations {
        let attrs = &span.attributes;
        let Some(input) = attrs.get("input") else {
            return Err(ReplayError::NoContent { trace });
        };
        let messages: Vec<Message> =
            serde_json::from_value(input.clone()).map_err(|e| ReplayError::BadInput {
                trace: trace.clone(),
                span: span.span_id.to_string(),
                detail: e.to_string(),
            })?;
        let agent = span
            .parent_id
            .and_then(|p| doc.spans.iter().find(|s| s.span_id == p))
            .filter(|p| p.kind == SpanKind::Agent)
            .map(|p| p.name.clone());
        let model = text(attrs.get("model")).unwrap_or_else(|| span.name.clone());
        let answer = match Usage::from_attributes(attrs) {
            // Only a call that answered has a usage.
            Some(usage) => Ok(ChatResponse {
                text: text(attrs.get("output")).unwrap_or_default(),
                tool_calls: recorded_tool_calls(attrs.get("tool_calls")),
                usage,
                usage_estimated: attrs
                    .get("usage_estimated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                response_model: text(attrs.get("response_model")),
                finish_reason: text(attrs.get("finish_reason")),
                response_id: text(attrs.get("response_id")),
                time_to_first_token_ms: None,
                // A replayed call waits for no connection.
                queued_ms: None,
                streamed: false,
                reasoning_summary: text(attrs.get("reasoning_summary")),
                cached_input_tokens: attrs.get("cached_input_tokens").and_then(Value::as_u64),
                reasoning_tokens: attrs.get("reasoning_tokens").and_then(Value::as_u64),
            }),
            None => Err(span
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| format!("it ended {}", span.status))),
        };
        calls.push(RecordedCall {
            agent,
            model,
            messages,
            answer,
        });
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::fixture::{bare_span, obj};
    use crate::trace::{Span, SpanId, Trace};
    use serde_json::json;

    fn span(kind: SpanKind, parent: Option<SpanId>, name: &str, at: i64, attrs: Value) -> Span {
        Span {
            attributes: obj(attrs),
            ..bare_span(parent, kind, name, at, at + 1)
        }
    }

    fn doc(spans: Vec<Span>) -> TraceDoc {
        TraceDoc {
            trace: Trace::sample("t"),
            spans,
        }
    }

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: "gpt-4o-mini".into(),
            messages,
            temperature: None,
            max_tokens: None,
            seed: None,
            tools: Vec::new(),
            output_schema: None,
            stream: false,
            scripted: None,
            reasoning: None,
        }
    }

    fn generation(parent: &Span, at: i64, user: &str, attrs: Value) -> Span {
        let mut attrs = attrs;
        attrs["model"] = json!("gpt-4o-mini");
        attrs["input"] =
            json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": user}]);
        span(
            SpanKind::Generation,
            Some(parent.span_id),
            "gpt-4o-mini",
            at,
            attrs,
        )
    }

    fn messages(user: &str) -> Vec<Message> {
        vec![Message::system("Be brief."), Message::user(user)]
    }

    fn recording() -> Recording {
        let agent = span(SpanKind::Agent, None, "writer", 1, json!({}));
        let a = generation(
            &agent,
            2,
            "first",
            json!({"output": "one", "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
                   "response_model": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"}),
        );
        let b = generation(
            &agent,
            3,
            "second",
            json!({"tool_calls": [{"id": "call_9", "name": "lookup", "arguments": "{\"q\":1}"}],
                   "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
                   "finish_reason": "tool_calls"}),
        );
        let c = generation(
            &agent,
            4,
            "first",
            json!({"output": "one again", "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}}),
        );
        Recording::from_trace(&doc(vec![agent, a, b, c])).unwrap()
    }

    #[test]
    fn answers_in_any_order_and_identical_requests_in_recorded_order() {
        let rec = recording();
        assert_eq!(rec.len(), 3);
        let second = rec.answer("writer", &request(messages("second"))).unwrap();
        assert_eq!(second.text, "");
        assert_eq!(
            second.tool_calls,
            vec![ToolCall::new("call_9", "lookup", "{\"q\":1}")]
        );
        assert_eq!(second.finish_reason.as_deref(), Some("tool_calls"));
        let first = rec.answer("writer", &request(messages("first"))).unwrap();
        assert_eq!(first.text, "one");
        assert_eq!(first.usage, Usage::new(3, 1));
        assert_eq!(
            first.response_model.as_deref(),
            Some("gpt-4o-mini-2024-07-18")
        );
        let again = rec.answer("writer", &request(messages("first"))).unwrap();
        assert_eq!(again.text, "one again");
        let e = rec
            .answer("writer", &request(messages("first")))
            .unwrap_err();
        assert!(!e.retryable);
        assert!(e.message.contains("already answered"), "{}", e.message);
    }

    #[test]
    fn a_mismatch_names_the_first_difference() {
        let rec = recording();
        let e = rec
            .answer("writer", &request(messages("fist")))
            .unwrap_err();
        assert!(!e.retryable);
        assert_eq!(
            e.message,
            "replay: no recorded model call matches this request (agent `writer`, model \
             gpt-4o-mini, 2 messages; first difference: message 2 content \"fist\" vs recorded \
             \"first\")"
        );
        let mut other = request(messages("first"));
        other.model = "gpt-4o".into();
        let e = rec.answer("writer", &other).unwrap_err();
        assert!(
            e.message
                .ends_with("first difference: model gpt-4o vs recorded gpt-4o-mini)"),
            "{}",
            e.message
        );
        let mut longer = messages("first");
        longer.push(Message::assistant("x"));
        let e = rec.answer("writer", &request(longer)).unwrap_err();
        assert!(
            e.message
                .contains("message 3 (assistant) is not in the recorded request"),
            "{}",
            e.message
        );
    }

    #[test]
    fn long_texts_are_quoted_around_the_difference() {
        let a = format!("{}X{}", "a".repeat(100), "b".repeat(100));
        let b = format!("{}Y{}", "a".repeat(100), "b".repeat(100));
        let (x, y) = excerpts(&a, &b);
        assert!(x.starts_with('…') && x.ends_with('…'), "{x}");
        assert!(x.contains("aX") && y.contains("aY"), "{x} / {y}");
        assert_eq!(x.chars().count(), EXCERPT + 2);
    }

    #[test]
    fn a_trace_without_content_cannot_be_replayed() {
        let agent = span(SpanKind::Agent, None, "writer", 1, json!({}));
        let gen_span = span(
            SpanKind::Generation,
            Some(agent.span_id),
            "gpt-4o-mini",
            2,
            json!({"model": "gpt-4o-mini", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}),
        );
        let e = Recording::from_trace(&doc(vec![agent, gen_span])).unwrap_err();
        assert!(matches!(e, ReplayError::NoContent { .. }));
        assert!(e.to_string().contains("--no-content"));
    }

    #[tokio::test]
    async fn a_streamed_answer_is_one_delta() {
        let rec = Arc::new(recording());
        let model = ReplayModel::new(rec, "writer");
        let seen = Mutex::new(Vec::new());
        let f = |d: &str| seen.lock().unwrap().push(d.to_string());
        let r = model
            .complete(&request(messages("first")), Some(&f))
            .await
            .unwrap();
        assert_eq!(r.text, "one");
        assert_eq!(*seen.lock().unwrap(), vec!["one".to_string()]);
        assert!(!model.is_offline());
        assert!(model.endpoint().is_none());
    }
}
