//! The OpenAI Responses API (`POST {base_url}/responses`) through async-openai, for providers
//! with `api: responses`.
//!
//! Calls are stateless: `store: false`, no `previous_response_id`, and the whole conversation
//! goes in `input` on every call, built from the same chat messages the engine keeps for Chat
//! Completions. That keeps one agent loop for both APIs, lets replay and `session:` work on the
//! recorded messages, and leaves nothing on the provider's side between calls. The HTTP client,
//! error classification, `Retry-After` and the handling of streams that break off are those of
//! the Chat Completions client ([`super::openai`]); what differs is the wire format: input items
//! and output items instead of messages, and typed server-sent events (`response.*`) instead of
//! chunks.
//!
//! The shapes follow openai-python's `types/responses` (`Response`, `ResponseUsage`,
//! `ResponseFunctionToolCall`, `ResponseReasoningItem`, the `Response*Event` types) as the
//! OpenAI Agents SDK's own test model (openai-agents-python `tests/fake_model.py`) emits them.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::openai::{
    Accumulate, Connection, Endpoint, estimate_usage, malformed, noting, text_of, token_details,
    truncate,
};
use super::{
    ChatRequest, ChatResponse, DeltaFn, Message, Model, ModelError, ModelFuture, ToolCall,
};
use crate::trace::Usage;

pub struct ResponsesModel {
    conn: Connection,
}

impl ResponsesModel {
    pub fn new(endpoint: &Endpoint) -> Result<ResponsesModel, ModelError> {
        Ok(ResponsesModel {
            conn: Connection::new(endpoint, "/responses")?,
        })
    }
}

/// The conversation as Responses API input: system messages become `instructions` (joined by a
/// blank line), the rest become input items.
pub fn input_items(messages: &[Message]) -> (Option<String>, Vec<Value>) {
    let mut instructions: Vec<&str> = Vec::new();
    let mut items = Vec::with_capacity(messages.len());
    for message in messages {
        match message {
            Message::System { content } => instructions.push(content),
            Message::User { content } => {
                items.push(json!({ "type": "message", "role": "user", "content": content }));
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                // An earlier answer goes back with plain text content (OpenAI's "easy" input
                // message), not as the `output_text` parts it came in: both are valid input, and
                // gateways that turn a Responses call into Chat Completions (LiteLLM) pass plain
                // text on as is, where parts become content parts that some servers refuse
                // for an assistant message (llama-cpp-python's).
                if !content.is_empty() || tool_calls.is_empty() {
                    items.push(
                        json!({ "type": "message", "role": "assistant", "content": content }),
                    );
                }
                for call in tool_calls {
                    items.push(json!({
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.function.name,
                        "arguments": call.function.arguments,
                    }));
                }
            }
            Message::Tool {
                tool_call_id,
                content,
            } => items.push(json!({
                "type": "function_call_output",
                "call_id": tool_call_id,
                "output": content,
            })),
        }
    }
    let instructions = (!instructions.is_empty()).then(|| instructions.join("\n\n"));
    (instructions, items)
}

/// The request body, exactly as sent. The Responses API has no `seed`: it is left out.
pub fn request_body(request: &ChatRequest, stream: bool) -> Value {
    let (instructions, input) = input_items(&request.messages);
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    if let Some(i) = instructions {
        body.insert("instructions".into(), json!(i));
    }
    body.insert("input".into(), Value::Array(input));
    // Stateless: the provider keeps nothing; the next call sends the conversation again.
    body.insert("store".into(), json!(false));
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(m) = request.max_tokens {
        body.insert("max_output_tokens".into(), json!(m));
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                // Not strict (the Responses API's default is strict): a workflow's schemas are
                // taken as written, as on Chat Completions.
                json!({
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                    "strict": false,
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some((name, schema)) = &request.output_schema {
        body.insert(
            "text".into(),
            json!({ "format": { "type": "json_schema", "name": name, "schema": schema, "strict": true } }),
        );
    }
    if let Some(r) = &request.reasoning {
        let mut reasoning = Map::new();
        if let Some(e) = &r.effort {
            reasoning.insert("effort".into(), json!(e));
        }
        if let Some(s) = &r.summary {
            reasoning.insert("summary".into(), json!(s));
        }
        body.insert("reasoning".into(), Value::Object(reasoning));
    }
    if stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

fn count(value: Option<&Value>) -> Option<u64> {
    value.and_then(Value::as_u64)
}

/// `usage` of a response: `input_tokens`, `output_tokens`, `total_tokens`, and the cached and
/// reasoning token counts of its `*_details`.
fn read_usage(response: &Value, into: &mut ChatResponse) -> bool {
    let Some(u) = response.get("usage").filter(|u| u.is_object()) else {
        return false;
    };
    let input = count(u.get("input_tokens")).unwrap_or(0);
    let output = count(u.get("output_tokens")).unwrap_or(0);
    into.usage = Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: count(u.get("total_tokens")).unwrap_or(input + output),
    };
    (into.cached_input_tokens, into.reasoning_tokens) =
        token_details(u, "input_tokens_details", "output_tokens_details");
    true
}

/// The reason a response stopped, in Chat Completions' words so that spans of both APIs read
/// alike: `tool_calls`, `stop`, or for an `incomplete` response `length` (out of output
/// tokens), `content_filter`, or the server's own reason.
fn finish_reason(response: &Value, has_calls: bool) -> Option<String> {
    match response.get("status").and_then(Value::as_str) {
        Some("incomplete") => Some(
            match response
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str)
            {
                Some("max_output_tokens") => "length".to_string(),
                Some(other) => other.to_string(),
                None => "incomplete".to_string(),
            },
        ),
        _ if has_calls => Some("tool_calls".into()),
        Some("completed") | None => Some("stop".into()),
        Some(other) => Some(other.to_string()),
    }
}

/// The texts of a reasoning item's `summary`, one paragraph each.
fn summary_texts(item: &Value) -> Vec<String> {
    item.get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| text_of(part.get("text")))
        .filter(|t| !t.is_empty())
        .collect()
}

/// A `function_call` output item as a tool call (its `call_id` is the id results answer to).
fn tool_call(item: &Value) -> ToolCall {
    let arguments = match item.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    };
    ToolCall::new(
        text_of(item.get("call_id"))
            .or_else(|| text_of(item.get("id")))
            .unwrap_or_default(),
        text_of(item.get("name")).unwrap_or_default(),
        arguments,
    )
}

/// An error the response itself reports (`status: failed`, a stream's `error` event): a
/// server error or a rate limit may pass, anything else will not.
fn reported_error(error: Option<&Value>, what: &str) -> ModelError {
    let error = error.unwrap_or(&Value::Null);
    let code = text_of(error.get("code")).or_else(|| text_of(error.get("type")));
    let detail = text_of(error.get("message")).unwrap_or_default();
    let mut message = format!("the model server reported {what}");
    if let Some(c) = &code {
        message.push_str(&format!(" ({c})"));
    }
    if !detail.trim().is_empty() {
        message.push_str(": ");
        message.push_str(&truncate(&detail, 300));
    }
    let passing = code.as_deref().is_some_and(|c| {
        matches!(
            c,
            "server_error" | "rate_limit_exceeded" | "rate_limit_error" | "overloaded_error"
        )
    });
    if passing {
        ModelError::transient(message)
    } else {
        ModelError::new(message)
    }
}

/// Reads a whole `response` object (a plain call's body, or a stream's `response.completed`).
pub fn parse_response(body: &Value) -> Result<ChatResponse, ModelError> {
    if body.get("status").and_then(Value::as_str) == Some("failed") {
        return Err(reported_error(body.get("error"), "a failed response"));
    }
    let output = body
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("a response without output", body))?;
    let mut r = ChatResponse::default();
    let mut summary: Vec<String> = Vec::new();
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                let parts = item.get("content").and_then(Value::as_array);
                for part in parts.into_iter().flatten() {
                    let text = match part.get("type").and_then(Value::as_str) {
                        Some("output_text") => part.get("text"),
                        Some("refusal") => part.get("refusal"),
                        _ => None,
                    };
                    if let Some(t) = text.and_then(Value::as_str) {
                        r.text.push_str(t);
                    }
                }
            }
            Some("function_call") => r.tool_calls.push(tool_call(item)),
            Some("reasoning") => summary.extend(summary_texts(item)),
            _ => {}
        }
    }
    read_usage(body, &mut r);
    r.reasoning_summary = (!summary.is_empty()).then(|| summary.join("\n\n"));
    r.finish_reason = finish_reason(body, !r.tool_calls.is_empty());
    r.response_model = text_of(body.get("model"));
    r.response_id = text_of(body.get("id"));
    Ok(r)
}

/// Accumulates a streamed response event by event. The `response.completed` event carries the
/// whole response, which is what is kept; the deltas before it feed the terminal, time to first
/// token, and the answer of a server whose final event leaves the output out.
#[derive(Default)]
pub struct ResponsesStream {
    text: String,
    /// Function calls by output index.
    calls: Vec<(u64, ToolCall)>,
    /// Reasoning summary parts by (output index, summary index).
    summary: Vec<((u64, u64), String)>,
    response_id: Option<String>,
    response_model: Option<String>,
    time_to_first_token_ms: Option<f64>,
    /// The final response object (`response.completed` or `response.incomplete`).
    done: Option<Value>,
}

impl ResponsesStream {
    fn call_at(&mut self, index: u64) -> &mut ToolCall {
        let at = match self.calls.iter().position(|(i, _)| *i == index) {
            Some(at) => at,
            None => {
                self.calls.push((index, ToolCall::new("", "", "")));
                self.calls.len() - 1
            }
        };
        &mut self.calls[at].1
    }

    fn first_token(&mut self, started: Instant) {
        if self.time_to_first_token_ms.is_none() {
            self.time_to_first_token_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        }
    }

    /// Adds one event; returns the answer text it carried, if any.
    pub fn push(&mut self, event: &Value, started: Instant) -> Result<Option<String>, ModelError> {
        let index = count(event.get("output_index")).unwrap_or(0);
        match event.get("type").and_then(Value::as_str).unwrap_or("") {
            "response.created" | "response.in_progress" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                if self.response_id.is_none() {
                    self.response_id = text_of(response.get("id"));
                }
                if self.response_model.is_none() {
                    self.response_model = text_of(response.get("model"));
                }
            }
            "response.output_text.delta" => {
                let delta = text_of(event.get("delta")).filter(|d| !d.is_empty());
                if let Some(d) = &delta {
                    self.text.push_str(d);
                    self.first_token(started);
                }
                return Ok(delta);
            }
            "response.output_item.added" | "response.output_item.done" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    let done = event.get("type").and_then(Value::as_str)
                        == Some("response.output_item.done");
                    let call = tool_call(item);
                    let slot = self.call_at(index);
                    if done || slot.id.is_empty() {
                        slot.id = call.id;
                        slot.function.name = call.function.name;
                    }
                    // The finished item's arguments are the whole of them.
                    if done || !call.function.arguments.is_empty() {
                        slot.function.arguments = call.function.arguments;
                    }
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(d) = text_of(event.get("delta")) {
                    self.call_at(index).function.arguments.push_str(&d);
                    self.first_token(started);
                }
            }
            "response.function_call_arguments.done" => {
                if let Some(args) = text_of(event.get("arguments")) {
                    self.call_at(index).function.arguments = args;
                }
            }
            "response.reasoning_summary_text.delta" => {
                let key = (index, count(event.get("summary_index")).unwrap_or(0));
                let delta = text_of(event.get("delta")).unwrap_or_default();
                match self.summary.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, text)) => text.push_str(&delta),
                    None => self.summary.push((key, delta)),
                }
            }
            "response.completed" | "response.incomplete" => {
                self.done = Some(event.get("response").cloned().unwrap_or(Value::Null));
            }
            "response.failed" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                return Err(reported_error(response.get("error"), "a failed response"));
            }
            "error" => {
                // `{"type": "error", "code", "message", "param"}`; some servers nest it.
                return Err(reported_error(
                    Some(event.get("error").unwrap_or(event)),
                    "an error in the response stream",
                ));
            }
            _ => {}
        }
        Ok(None)
    }

    /// The whole response, or an error when the stream ended before its last event.
    pub fn finish(self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let Some(done) = self.done else {
            return Err(ModelError::transient(
                "the response stream ended before the response was complete (no response.completed)",
            ));
        };
        let mut r = match done.get("output").and_then(Value::as_array) {
            Some(output) if !output.is_empty() => parse_response(&done)?,
            // A final event without the output: what the deltas said is the answer.
            _ => {
                let mut r = ChatResponse {
                    text: self.text,
                    tool_calls: self.calls.into_iter().map(|(_, c)| c).collect(),
                    ..ChatResponse::default()
                };
                let summary: Vec<String> = self
                    .summary
                    .into_iter()
                    .map(|(_, t)| t)
                    .filter(|t| !t.is_empty())
                    .collect();
                r.reasoning_summary = (!summary.is_empty()).then(|| summary.join("\n\n"));
                read_usage(&done, &mut r);
                r.finish_reason = finish_reason(&done, !r.tool_calls.is_empty());
                r.response_model = text_of(done.get("model"));
                r.response_id = text_of(done.get("id"));
                r
            }
        };
        if done.get("usage").is_none_or(|u| !u.is_object()) {
            estimate_usage(&mut r, request);
        }
        r.response_id = r.response_id.or(self.response_id);
        r.response_model = r.response_model.or(self.response_model);
        r.time_to_first_token_ms = self.time_to_first_token_ms;
        r.streamed = true;
        Ok(r)
    }
}

impl Accumulate for ResponsesStream {
    fn add(&mut self, data: &str, started: Instant) -> Result<Option<String>, ModelError> {
        self.push(&super::openai::parse_event(data)?, started)
    }

    fn finish(self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        ResponsesStream::finish(self, request)
    }
}

impl ResponsesModel {
    async fn complete_once(
        &self,
        request: &ChatRequest,
        on_delta: Option<&DeltaFn<'_>>,
        streaming: bool,
    ) -> Result<ChatResponse, ModelError> {
        if streaming {
            let body = request_body(request, true);
            return self
                .conn
                .read_stream::<ResponsesStream>(request, on_delta, &body)
                .await;
        }
        let body: Value = self
            .conn
            .client
            .responses()
            .create_byot(request_body(request, false))
            .await
            .map_err(|e| self.conn.error(e))?;
        parse_response(&body)
    }
}

/// A 404 from a server that speaks Chat Completions only (llama.cpp's Python server answers
/// `{"detail": "Not Found"}`) says what to do about it.
fn hint_not_found(mut e: ModelError) -> ModelError {
    if e.status == Some(404) {
        e.message.push_str(
            " (this server may not implement the Responses API; `api: chat` on the provider uses /chat/completions)",
        );
    }
    e
}

impl Model for ResponsesModel {
    /// One call, falling back (once per run) to a plain request when the server cannot stream.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_delta: Option<&'a DeltaFn<'a>>,
    ) -> ModelFuture<'a> {
        noting(async move {
            self.conn
                .call(
                    request,
                    move |streaming| self.complete_once(request, on_delta, streaming),
                    |_| false,
                )
                .await
                .map_err(hint_not_found)
        })
    }

    fn endpoint(&self) -> Option<String> {
        Some(self.conn.base_url.clone())
    }

    fn streams(&self) -> bool {
        self.conn.streams()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Reasoning, ToolSpec};

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![
                Message::system("Be brief."),
                Message::user("hi"),
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall::new("call_1", "get", "{\"a\":1}")],
                },
                Message::Tool {
                    tool_call_id: "call_1".into(),
                    content: "r".into(),
                },
                Message::assistant("done"),
            ],
            temperature: Some(0.5),
            max_tokens: Some(10),
            seed: Some(7),
            tools: vec![ToolSpec {
                name: "get".into(),
                description: "Get it".into(),
                parameters: json!({"type": "object"}),
            }],
            output_schema: Some(("a_output".into(), json!({"type": "object"}))),
            stream: true,
            scripted: None,
            reasoning: Some(Reasoning {
                effort: Some("low".into()),
                summary: Some("auto".into()),
            }),
        }
    }

    #[test]
    fn the_request_is_stateless_and_carries_the_conversation_as_input_items() {
        assert_eq!(
            request_body(&request(), true),
            json!({
                "model": "m",
                "instructions": "Be brief.",
                "input": [
                    {"type": "message", "role": "user", "content": "hi"},
                    {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": "{\"a\":1}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "r"},
                    {"type": "message", "role": "assistant", "content": "done"}
                ],
                "store": false,
                "temperature": 0.5,
                "max_output_tokens": 10,
                "tools": [{"type": "function", "name": "get", "description": "Get it", "parameters": {"type": "object"}, "strict": false}],
                "text": {"format": {"type": "json_schema", "name": "a_output", "schema": {"type": "object"}, "strict": true}},
                "reasoning": {"effort": "low", "summary": "auto"},
                "stream": true
            })
        );
        assert!(request_body(&request(), false).get("stream").is_none());
    }

    fn completed() -> Value {
        json!({
            "id": "resp_1", "object": "response", "model": "gpt-5-mini", "status": "completed",
            "output": [
                {"type": "reasoning", "id": "rs_1", "summary": [
                    {"type": "summary_text", "text": "Looked it up."},
                    {"type": "summary_text", "text": "Then answered."}
                ]},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "Hello", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get", "arguments": "{\"a\": 1}", "status": "completed"}
            ],
            "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12,
                      "input_tokens_details": {"cached_tokens": 2},
                      "output_tokens_details": {"reasoning_tokens": 3}}
        })
    }

    #[test]
    fn a_response_gives_text_calls_summary_and_usage() {
        let r = parse_response(&completed()).unwrap();
        assert_eq!(r.text, "Hello");
        assert_eq!(r.tool_calls, [ToolCall::new("call_9", "get", "{\"a\": 1}")]);
        assert_eq!(
            r.reasoning_summary.as_deref(),
            Some("Looked it up.\n\nThen answered.")
        );
        assert_eq!(r.usage, Usage::new(5, 7));
        assert_eq!(
            (r.cached_input_tokens, r.reasoning_tokens),
            (Some(2), Some(3))
        );
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
        assert_eq!(r.response_id.as_deref(), Some("resp_1"));
        assert_eq!(r.response_model.as_deref(), Some("gpt-5-mini"));

        let cut = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []});
        assert_eq!(
            parse_response(&cut).unwrap().finish_reason.as_deref(),
            Some("length")
        );
        assert!(parse_response(&json!({"id": "x"})).is_err());
        let failed = json!({"status": "failed", "error": {"code": "server_error", "message": "boom"}, "output": []});
        let e = parse_response(&failed).unwrap_err();
        assert!(e.retryable && e.message.contains("boom"), "{e:?}");
    }

    #[test]
    fn a_stream_feeds_deltas_and_keeps_the_completed_response() {
        let started = Instant::now();
        let mut s = ResponsesStream::default();
        let events = [
            json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_1", "model": "gpt-5-mini", "status": "in_progress", "output": []}}),
            json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "Looked"}),
            json!({"type": "response.output_item.added", "output_index": 1, "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}}),
            json!({"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "Hel"}),
            json!({"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "lo"}),
            json!({"type": "response.output_item.added", "output_index": 2, "item": {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "get", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{\"a\""}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": ": 1}"}),
            json!({"type": "response.completed", "response": completed()}),
        ];
        let mut texts = Vec::new();
        for e in &events {
            if let Some(t) = s.push(e, started).unwrap() {
                texts.push(t);
            }
        }
        assert_eq!(texts, ["Hel", "lo"]);
        let r = s.finish(&request()).unwrap();
        assert_eq!(r.text, "Hello");
        assert_eq!(r.tool_calls, [ToolCall::new("call_9", "get", "{\"a\": 1}")]);
        assert!(r.streamed && r.time_to_first_token_ms.is_some() && !r.usage_estimated);
        assert_eq!(r.usage, Usage::new(5, 7));
    }

    #[test]
    fn a_final_event_without_output_keeps_what_the_deltas_said() {
        let started = Instant::now();
        let mut s = ResponsesStream::default();
        for e in [
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 0, "delta": "Thought."}),
            json!({"type": "response.output_item.added", "output_index": 1, "item": {"type": "function_call", "call_id": "call_1", "name": "get", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{\"a\""}),
            json!({"type": "response.function_call_arguments.done", "output_index": 1, "arguments": "{\"a\": 2}"}),
            json!({"type": "response.completed", "response": {"id": "resp_2", "status": "completed", "output": []}}),
        ] {
            s.push(&e, started).unwrap();
        }
        let r = s.finish(&request()).unwrap();
        assert_eq!(r.tool_calls, [ToolCall::new("call_1", "get", "{\"a\": 2}")]);
        assert_eq!(r.reasoning_summary.as_deref(), Some("Thought."));
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
        assert!(r.usage_estimated, "no usage in the final event: estimated");
        assert_eq!(r.response_id.as_deref(), Some("resp_2"));
    }

    #[test]
    fn failed_and_cut_streams_are_errors() {
        let started = Instant::now();
        let mut s = ResponsesStream::default();
        let e = s
            .push(
                &json!({"type": "error", "code": "invalid_prompt", "message": "bad", "param": null}),
                started,
            )
            .unwrap_err();
        assert!(
            !e.retryable && e.message.contains("invalid_prompt"),
            "{e:?}"
        );
        let e = s
            .push(
                &json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "server_error", "message": "oops"}}}),
                started,
            )
            .unwrap_err();
        assert!(e.retryable, "{e:?}");

        let mut cut = ResponsesStream::default();
        cut.push(
            &json!({"type": "response.output_text.delta", "output_index": 0, "delta": "Hel"}),
            started,
        )
        .unwrap();
        let e = cut.finish(&request()).unwrap_err();
        assert!(e.retryable && e.message.contains("stream ended"), "{e:?}");
    }
}
