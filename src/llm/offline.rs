//! The built-in offline model: deterministic, no network. It plays the step's scripted `mock:`
//! turns when given (text, tool calls, handoffs), otherwise answers with a short text derived
//! from the input, or, for agents with an `output_schema`, with a minimal JSON instance of it.
//! Token usage is computed from the text so that usage sums can be exercised without a server.

use serde_json::{Map, Value, json};

use super::{ChatRequest, ChatResponse, DeltaFn, Message, Model, ModelFuture, Scripted};
use crate::trace::Usage;

pub struct OfflineModel;

/// A rough, stable token count: one token per four characters (the usual rule of thumb for
/// English with OpenAI tokenizers).
pub fn count_tokens(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    chars.div_ceil(4)
}

/// Tokens of a whole request, as the offline model and usage estimates count them.
pub fn count_request_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|m| {
            let calls: u64 = match m {
                Message::Assistant { tool_calls, .. } => tool_calls
                    .iter()
                    .map(|c| count_tokens(&c.function.name) + count_tokens(&c.function.arguments))
                    .sum(),
                _ => 0,
            };
            count_tokens(m.content()) + calls
        })
        .sum()
}

fn default_answer(request: &ChatRequest) -> String {
    let input = request
        .messages
        .iter()
        .rev()
        .find(|m| matches!(m, Message::User { .. }))
        .map(Message::content)
        .unwrap_or("");
    let words: Vec<&str> = input.split_whitespace().collect();
    let mut gist: String = words.iter().take(12).copied().collect::<Vec<_>>().join(" ");
    if words.len() > 12 {
        gist.push_str(" …");
    }
    format!("[offline answer] {} words received: {gist}", words.len())
}

/// The smallest value that a (simple) JSON Schema accepts: every listed property present,
/// strings "offline", numbers 0, arrays at their minimum length.
pub fn minimal_instance(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return Value::Null;
    };
    if let Some(c) = obj.get("const") {
        return c.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = obj
            .get(key)
            .and_then(|e| e.as_array())
            .and_then(|e| e.first())
        {
            return minimal_instance(first);
        }
    }
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), minimal_instance(sub));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = obj
                .get("items")
                .map(minimal_instance)
                .unwrap_or(Value::Null);
            Value::Array((0..min).map(|_| item.clone()).collect())
        }
        "string" => {
            let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let mut s = String::from("offline");
            while s.len() < min {
                s.push('.');
            }
            Value::String(s)
        }
        "integer" | "number" => obj.get("minimum").cloned().unwrap_or(json!(0)),
        "boolean" => Value::Bool(false),
        _ => Value::Null,
    }
}

impl Model for OfflineModel {
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_delta: Option<&'a DeltaFn<'a>>,
    ) -> ModelFuture<'a> {
        Box::pin(async move {
            let (text, tool_calls) = match &request.scripted {
                Some(Scripted::Text(t)) => (t.clone(), Vec::new()),
                Some(Scripted::ToolCalls(calls)) => (String::new(), calls.clone()),
                None => match &request.output_schema {
                    Some((_, schema)) => (minimal_instance(schema).to_string(), Vec::new()),
                    None => (default_answer(request), Vec::new()),
                },
            };
            if let Some(f) = on_delta
                && !text.is_empty()
            {
                f(&text);
            }
            let output = count_tokens(&text)
                + tool_calls
                    .iter()
                    .map(|c| count_tokens(&c.function.name) + count_tokens(&c.function.arguments))
                    .sum::<u64>();
            Ok(ChatResponse {
                usage: Usage::new(count_request_tokens(&request.messages), output),
                finish_reason: Some(
                    if tool_calls.is_empty() {
                        "stop"
                    } else {
                        "tool_calls"
                    }
                    .into(),
                ),
                text,
                tool_calls,
                response_model: Some(request.model.clone()),
                ..ChatResponse::default()
            })
        })
    }

    fn is_offline(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolCall;

    fn request(scripted: Option<Scripted>) -> ChatRequest {
        ChatRequest {
            model: "gpt-4o-mini".into(),
            messages: vec![
                Message::system("Be brief."),
                Message::user("Research AI in healthcare"),
            ],
            temperature: None,
            max_tokens: None,
            seed: None,
            tools: Vec::new(),
            output_schema: None,
            stream: false,
            scripted,
            reasoning: None,
        }
    }

    #[tokio::test]
    async fn answers_deterministically_with_usage_from_the_text() {
        let a = OfflineModel.complete(&request(None), None).await.unwrap();
        let b = OfflineModel.complete(&request(None), None).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.text,
            "[offline answer] 4 words received: Research AI in healthcare"
        );
        // "Be brief." = 9 chars -> 3 tokens; 25 chars -> 7 tokens.
        assert_eq!(a.usage.input_tokens, 3 + 7);
        assert_eq!(a.usage.output_tokens, count_tokens(&a.text));
    }

    #[tokio::test]
    async fn scripted_text_and_tool_calls_are_played() {
        let r = OfflineModel
            .complete(&request(Some(Scripted::Text("Five bullets.".into()))), None)
            .await
            .unwrap();
        assert_eq!(r.text, "Five bullets.");
        assert_eq!(r.usage.output_tokens, 4); // 13 characters
        let call = ToolCall::new("call_1", "lookup", "{\"q\":1}");
        let r = OfflineModel
            .complete(
                &request(Some(Scripted::ToolCalls(vec![call.clone()]))),
                None,
            )
            .await
            .unwrap();
        assert_eq!(r.tool_calls, vec![call]);
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn minimal_instances_satisfy_simple_schemas() {
        let schema = json!({
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "points": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "confidence": {"type": "number", "minimum": 0.5},
                "level": {"enum": ["low", "high"]},
                "note": {"type": ["string", "null"]}
            },
            "required": ["title", "points", "confidence", "level", "note"]
        });
        let value = minimal_instance(&schema);
        assert_eq!(
            value,
            json!({"title": "offline", "points": ["offline"], "confidence": 0.5, "level": "low", "note": "offline"})
        );
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&value));
    }
}
