//! The built-in offline model: deterministic, no network. It answers with the step's `mock:`
//! text when given, otherwise with a short text derived from the input, and computes token usage
//! from the text so that usage sums and budgets can be exercised without a server.

use super::{ChatRequest, ChatResponse, Model, ModelFuture};
use crate::trace::Usage;

pub struct OfflineModel;

/// A rough, stable token count: one token per four characters, at least one for non-empty text
/// (the usual rule of thumb for English with OpenAI tokenizers).
pub fn count_tokens(text: &str) -> u64 {
    let chars = text.chars().count() as u64;
    chars.div_ceil(4)
}

fn answer(request: &ChatRequest) -> String {
    if let Some(mock) = &request.mock {
        return mock.clone();
    }
    let input = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let words: Vec<&str> = input.split_whitespace().collect();
    let mut gist: String = words.iter().take(12).copied().collect::<Vec<_>>().join(" ");
    if words.len() > 12 {
        gist.push_str(" …");
    }
    format!("[offline answer] {} words received: {gist}", words.len())
}

impl Model for OfflineModel {
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> ModelFuture<'a> {
        Box::pin(async move {
            let text = answer(request);
            let input: u64 = request
                .messages
                .iter()
                .map(|m| count_tokens(&m.content))
                .sum();
            Ok(ChatResponse {
                usage: Usage::new(input, count_tokens(&text)),
                text,
                response_model: Some(request.model.clone()),
                finish_reason: Some("stop".into()),
                response_id: None,
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
    use crate::llm::Message;

    fn request(mock: Option<&str>) -> ChatRequest {
        ChatRequest {
            model: "gpt-4o-mini".into(),
            messages: vec![
                Message::system("Be brief."),
                Message::user("Research AI in healthcare"),
            ],
            temperature: None,
            max_tokens: None,
            mock: mock.map(String::from),
        }
    }

    #[tokio::test]
    async fn answers_deterministically_with_usage_from_the_text() {
        let a = OfflineModel.complete(&request(None)).await.unwrap();
        let b = OfflineModel.complete(&request(None)).await.unwrap();
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
    async fn mock_text_is_the_answer() {
        let r = OfflineModel
            .complete(&request(Some("Five bullets.")))
            .await
            .unwrap();
        assert_eq!(r.text, "Five bullets.");
        assert_eq!(r.usage.output_tokens, 4); // 13 characters
    }
}
