//! The fake server's OpenAI Responses API (`POST /v1/responses`): the same scripted replies as
//! Chat Completions (text, tool calls, the error and broken-stream cases), in the Responses wire
//! format.
//!
//! Shapes: openai-python's `types/responses` (`Response`, `ResponseOutputMessage` with
//! `output_text` parts, `ResponseFunctionToolCall` with `call_id`, `ResponseReasoningItem` with
//! `summary_text` parts, `ResponseUsage` with `input_tokens_details.cached_tokens` and
//! `output_tokens_details.reasoning_tokens`), streamed in the order the OpenAI Agents SDK's own
//! test model emits them (openai-agents-python `tests/fake_model.py`, `stream_response`):
//! `response.created`, `response.in_progress`, then per output item `response.output_item.added`,
//! its deltas (`response.reasoning_summary_text.delta`, `response.output_text.delta`,
//! `response.function_call_arguments.delta`) and their `.done` events,
//! `response.output_item.done`, and last `response.completed` carrying the whole response.
//! Each event is sent as OpenAI sends it, `event: TYPE` then `data: {json}` with a
//! `sequence_number`.
//!
//! When the request asks for a reasoning summary (`reasoning.summary`), the answer starts with
//! a reasoning item whose summary is `Thinking about: <last user message>`, and the usage counts
//! [`REASONING_TOKENS`] reasoning tokens.

use serde_json::{Value, json};

use super::fake_openai::{Answer, Ending, Recorded, pieces};

/// The id of every fake response.
pub const RESPONSE_ID: &str = "resp_fake0001";

/// Reasoning tokens reported when a summary was asked for.
pub const REASONING_TOKENS: u64 = 4;

/// Input tokens reported as served from the prompt cache (on every answer with usage).
pub const CACHED_TOKENS: u64 = 2;

const CREATED: u64 = 1_764_000_000;

/// The reasoning summary the fake gives for `request`, if it asked for one.
pub(super) fn summary_for(request: &Recorded, last_user: &str) -> Option<String> {
    request.body["reasoning"]["summary"]
        .is_string()
        .then(|| format!("Thinking about: {last_user}"))
}

/// The output items of `answer`, complete (as in the final response).
fn output_items(answer: &Answer, summary: Option<&str>) -> Vec<Value> {
    let mut items = Vec::new();
    if let Some(s) = summary {
        items.push(json!({
            "type": "reasoning", "id": "rs_fake0001",
            "summary": [{"type": "summary_text", "text": s}]
        }));
    }
    if let Some(content) = answer
        .content
        .as_ref()
        .filter(|_| answer.tool_calls.is_empty())
    {
        items.push(json!({
            "type": "message", "id": "msg_fake0001", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": content, "annotations": []}]
        }));
    }
    for (id, name, arguments) in &answer.tool_calls {
        items.push(json!({
            "type": "function_call", "id": format!("fc_{id}"), "call_id": id,
            "name": name, "arguments": arguments, "status": "completed"
        }));
    }
    items
}

fn usage(answer: &Answer, summary: bool) -> Option<Value> {
    answer.usage.map(|(input, output)| {
        json!({
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": CACHED_TOKENS},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": if summary { REASONING_TOKENS } else { 0 }},
            "total_tokens": input + output,
        })
    })
}

/// The `response` object: `status` and `output` as given.
fn response(request: &Recorded, status: &str, output: Vec<Value>, usage: Option<Value>) -> Value {
    json!({
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "model": request.model(),
        "output": output,
        "parallel_tool_calls": true,
        "store": false,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    })
}

/// The body of a plain (not streamed) answer.
pub(super) fn body(answer: &Answer, request: &Recorded, summary: Option<&str>) -> Value {
    let items = output_items(answer, summary);
    response(
        request,
        "completed",
        items,
        usage(answer, summary.is_some()),
    )
}

/// The events of a streamed answer (`Err`: the connection drops there).
pub(super) fn stream_events(
    answer: &Answer,
    request: &Recorded,
    ending: Ending,
    summary: Option<&str>,
) -> Vec<Result<String, std::io::Error>> {
    let mut seq = 0u64;
    let mut event = |mut v: Value| -> String {
        v["sequence_number"] = json!(seq);
        seq += 1;
        format!("event: {}\ndata: {v}\n\n", v["type"].as_str().unwrap_or(""))
    };
    let started = response(request, "in_progress", Vec::new(), None);
    let mut out = vec![
        event(json!({"type": "response.created", "response": started})),
        event(json!({"type": "response.in_progress", "response": started})),
    ];
    // The deltas, counted so that a broken stream stops after the first two.
    let mut deltas = 0usize;
    let items = output_items(answer, summary);
    for (index, item) in items.iter().enumerate() {
        let id = item["id"].clone();
        let mut opening = item.clone();
        match item["type"].as_str() {
            Some("reasoning") => opening["summary"] = json!([]),
            Some("message") => {
                opening["content"] = json!([]);
                opening["status"] = json!("in_progress");
            }
            _ => {
                opening["arguments"] = json!("");
                opening["status"] = json!("in_progress");
            }
        }
        out.push(event(
            json!({"type": "response.output_item.added", "output_index": index, "item": opening}),
        ));
        let mut body: Vec<String> = Vec::new();
        match item["type"].as_str() {
            Some("reasoning") => {
                let text = item["summary"][0]["text"].as_str().unwrap_or_default();
                let part = json!({"type": "summary_text", "text": ""});
                body.push(event(json!({"type": "response.reasoning_summary_part.added", "item_id": id, "output_index": index, "summary_index": 0, "part": part})));
                for piece in pieces(text, 2) {
                    body.push(event(json!({"type": "response.reasoning_summary_text.delta", "item_id": id, "output_index": index, "summary_index": 0, "delta": piece})));
                }
                body.push(event(json!({"type": "response.reasoning_summary_text.done", "item_id": id, "output_index": index, "summary_index": 0, "text": text})));
                body.push(event(json!({"type": "response.reasoning_summary_part.done", "item_id": id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}})));
            }
            Some("message") => {
                let text = item["content"][0]["text"].as_str().unwrap_or_default();
                let part = json!({"type": "output_text", "text": "", "annotations": []});
                body.push(event(json!({"type": "response.content_part.added", "item_id": id, "output_index": index, "content_index": 0, "part": part})));
                for piece in pieces(text, 3) {
                    deltas += 1;
                    body.push(event(json!({"type": "response.output_text.delta", "item_id": id, "output_index": index, "content_index": 0, "delta": piece, "logprobs": []})));
                    if ending != Ending::Complete && deltas == 2 {
                        out.append(&mut body);
                        return broken(out, ending);
                    }
                }
                body.push(event(json!({"type": "response.output_text.done", "item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []})));
                body.push(event(json!({"type": "response.content_part.done", "item_id": id, "output_index": index, "content_index": 0, "part": item["content"][0]})));
            }
            _ => {
                let arguments = item["arguments"].as_str().unwrap_or_default();
                for piece in pieces(arguments, 3) {
                    body.push(event(json!({"type": "response.function_call_arguments.delta", "item_id": id, "output_index": index, "delta": piece})));
                }
                body.push(event(json!({"type": "response.function_call_arguments.done", "item_id": id, "output_index": index, "name": item["name"], "arguments": arguments})));
            }
        }
        out.extend(body);
        out.push(event(
            json!({"type": "response.output_item.done", "output_index": index, "item": item}),
        ));
    }
    let done = response(
        request,
        "completed",
        items,
        usage(answer, summary.is_some()),
    );
    out.push(event(
        json!({"type": "response.completed", "response": done}),
    ));
    out.into_iter().map(Ok).collect()
}

/// The events so far, then a dropped connection ([`Ending::Cut`]) or a body that just ends.
fn broken(events: Vec<String>, ending: Ending) -> Vec<Result<String, std::io::Error>> {
    let mut out: Vec<Result<String, std::io::Error>> = events.into_iter().map(Ok).collect();
    if ending == Ending::Cut {
        out.push(Err(std::io::Error::other(
            "the fake server cuts the stream",
        )));
    }
    out
}
