//! Chat completions against any OpenAI-compatible server through async-openai.

use std::sync::Once;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
};

use super::{ChatRequest, ChatResponse, Model, ModelError, ModelFuture};
use crate::trace::Usage;

/// The default endpoint when neither `OPENAI_BASE_URL` nor a provider names one.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How to reach one server. The key is held only in memory, for the `Authorization` header.
#[derive(Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

pub struct OpenAiModel {
    client: Client<OpenAIConfig>,
    base_url: String,
}

static CRYPTO: Once = Once::new();

/// rustls needs a process-wide crypto provider before the first TLS client is built.
fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // An error only means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl OpenAiModel {
    pub fn new(endpoint: &Endpoint) -> Result<OpenAiModel, ModelError> {
        install_crypto_provider();
        let mut config = OpenAIConfig::new()
            .with_api_base(endpoint.base_url.trim_end_matches('/'))
            .with_api_key(endpoint.api_key.clone().unwrap_or_default());
        for (name, value) in &endpoint.headers {
            config = config
                .with_header(
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                        ModelError {
                            message: format!("invalid provider header name `{name}`: {e}"),
                            status: None,
                        }
                    })?,
                    value.clone(),
                )
                .map_err(|e| ModelError {
                    message: format!("invalid provider header `{name}`: {e}"),
                    status: None,
                })?;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| ModelError {
                message: format!("cannot build the HTTP client: {e}"),
                status: None,
            })?;
        Ok(OpenAiModel {
            client: Client::with_config(config).with_http_client(http),
            base_url: redact_url(&endpoint.base_url),
        })
    }
}

/// A URL without user name or password, safe to record.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if !userinfo.contains('/') => format!("{scheme}://{host}"),
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn to_request(request: &ChatRequest) -> CreateChatCompletionRequest {
    let messages = request
        .messages
        .iter()
        .map(|m| match m.role {
            "system" => ChatCompletionRequestMessage::System(
                ChatCompletionRequestSystemMessage::from(m.content.as_str()),
            ),
            _ => ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(
                m.content.as_str(),
            )),
        })
        .collect();
    CreateChatCompletionRequest {
        model: request.model.clone(),
        messages,
        temperature: request.temperature.map(|t| t as f32),
        #[allow(deprecated)]
        max_tokens: request.max_tokens,
        ..Default::default()
    }
}

fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// The message inside an OpenAI error body, when a server sent one as text.
fn inner_message(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value.get("error").unwrap_or(&value);
    error
        .get("message")
        .or_else(|| error.get("detail"))
        .and_then(|m| m.as_str())
        .map(String::from)
}

fn to_model_error(error: OpenAIError, base_url: &str) -> ModelError {
    match error {
        OpenAIError::ApiError(response) => {
            let status = response.status_code.as_u16();
            let api = response.api_error;
            let detail = inner_message(&api.message).unwrap_or(api.message);
            let mut message = format!("model server answered HTTP {status}");
            if let Some(kind) = api.r#type.filter(|t| !t.is_empty()) {
                message.push_str(&format!(" ({kind})"));
            }
            if !detail.trim().is_empty() {
                message.push_str(": ");
                message.push_str(&truncate(&detail, 300));
            }
            ModelError {
                message,
                status: Some(status),
            }
        }
        OpenAIError::Reqwest(e) => {
            let what = if e.is_connect() {
                "cannot connect to the model server"
            } else if e.is_timeout() {
                "the model call timed out"
            } else {
                "the model call failed"
            };
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut root = e.to_string();
            while let Some(err) = source {
                root = err.to_string();
                source = err.source();
            }
            ModelError {
                message: format!("{what} at {base_url}: {root}"),
                status: e.status().map(|s| s.as_u16()),
            }
        }
        OpenAIError::JSONDeserialize(e, body) => ModelError {
            message: format!(
                "malformed response from the model server: {e} (body starts: {:?})",
                truncate(&body, 80)
            ),
            status: None,
        },
        other => ModelError {
            message: format!("the model call failed: {other}"),
            status: None,
        },
    }
}

impl Model for OpenAiModel {
    fn complete<'a>(&'a self, request: &'a ChatRequest) -> ModelFuture<'a> {
        Box::pin(async move {
            let response = self
                .client
                .chat()
                .create(to_request(request))
                .await
                .map_err(|e| to_model_error(e, &self.base_url))?;
            let choice = response
                .choices
                .into_iter()
                .next()
                .ok_or_else(|| ModelError {
                    message: "the model server returned no choices".into(),
                    status: None,
                })?;
            let usage = response
                .usage
                .map(|u| Usage {
                    input_tokens: u64::from(u.prompt_tokens),
                    output_tokens: u64::from(u.completion_tokens),
                    total_tokens: u64::from(u.total_tokens),
                })
                .unwrap_or_default();
            let finish_reason = choice
                .finish_reason
                .and_then(|r| serde_json::to_value(r).ok())
                .and_then(|v| v.as_str().map(String::from));
            Ok(ChatResponse {
                text: choice.message.content.unwrap_or_default(),
                usage,
                response_model: Some(response.model),
                finish_reason,
                response_id: Some(response.id),
            })
        })
    }

    fn endpoint(&self) -> Option<String> {
        Some(self.base_url.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(redact_url("http://u:p@host:1/v1"), "http://host:1/v1");
        assert_eq!(redact_url("http://host/v1"), "http://host/v1");
    }

    #[test]
    fn endpoint_debug_hides_the_key() {
        let e = Endpoint {
            base_url: "http://x".into(),
            api_key: Some("sk-secret".into()),
            headers: vec![],
        };
        assert!(!format!("{e:?}").contains("sk-secret"));
    }

    #[test]
    fn error_bodies_are_unwrapped() {
        assert_eq!(
            inner_message(r#"{"error":{"message":"boom","type":"x"}}"#).as_deref(),
            Some("boom")
        );
        assert_eq!(
            inner_message(r#"{"detail":"Invalid API key"}"#).as_deref(),
            Some("Invalid API key")
        );
        assert_eq!(inner_message("Internal Server Error"), None);
    }
}
