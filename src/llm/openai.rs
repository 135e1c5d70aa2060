//! Chat completions against any OpenAI-compatible server through async-openai.
//!
//! Requests and responses are raw JSON (async-openai's "bring your own types") so that servers
//! which differ in small ways from OpenAI (llama.cpp, vLLM, Ollama) are read leniently, and so
//! that the recorded request is exactly what was sent. async-openai's built-in retry layer is
//! left out: a retry is a decision the engine records on the span. Streamed calls are sent and
//! read here, on the same reqwest client: async-openai drops a stream's body at `[DONE]`, before
//! its end, which closes the connection, so every streamed call paid for a new one (and its TLS
//! handshake); read to the end, the body leaves its connection warm for the next call.

use std::borrow::Cow;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::{Config, OpenAIConfig};
use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use futures::StreamExt;
use serde_json::Value;

use super::offline::{count_request_tokens, count_tokens};
use super::{ChatRequest, ChatResponse, DeltaFn, Model, ModelError, ModelFuture, ToolCall};
use crate::trace::Usage;

/// The default endpoint when neither `OPENAI_BASE_URL` nor a provider names one.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How to reach one server. The key is held only in memory, for the `Authorization` header.
#[derive(Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: Option<String>,
    pub headers: Vec<(String, String)>,
    /// Stream unless the provider says `stream: false`.
    pub stream: bool,
    /// The most calls in flight at once; more wait their turn (see [`default_max_connections`]).
    pub max_connections: usize,
}

/// The most calls in flight to one server at once when its provider does not say
/// (`max_connections:`): 2000, and at most half of what the process's open-files limit
/// (`ulimit -n`) leaves beyond 32 for the rest of the process (the store, standard streams, the
/// runtime, MCP servers' pipes), so that a wide fan-out queues for a connection instead of
/// failing with "Too many open files" (which a 2000-wide fan-out under the common limit of
/// 1024 did: half its calls were retried). Measured (docs/benchmarks.md, "Connections per
/// host"), against the bench server at 100 ms, by turns: a 2000-wide fan-out took 381 ms at
/// 1000, 357 ms at 1500 and 358 ms at 2000; a 4000-wide one 630 ms at 1000, 557 ms at 2000 and
/// 542 ms at 4000. (The earlier default, 1000, was measured while every growth of the
/// descriptor table stalled the run for an RCU grace period, which made surplus connections
/// look dear; see `cli::reserve_fds`.) Below the width of the fan-out each halving costs a wave
/// of latency.
pub fn default_max_connections() -> usize {
    const MOST: usize = 2000;
    const KEPT: usize = 32;
    MOST.min(open_files_limit().saturating_sub(KEPT) / 2).max(1)
}

/// The process's open-files limit (the soft `ulimit -n`; 1024 when it cannot be read).
pub fn open_files_limit() -> usize {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| usize::try_from(soft).unwrap_or(usize::MAX))
        .unwrap_or(1024)
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &redact_url(&self.base_url))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("stream", &self.stream)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

pub struct OpenAiModel {
    conn: Connection,
    /// Cleared when the server turns out not to support `response_format: json_schema`.
    json_schema: AtomicBool,
}

static CRYPTO: Once = Once::new();

/// rustls needs a process-wide crypto provider before the first TLS client is built.
pub(crate) fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // An error only means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl OpenAiModel {
    pub fn new(endpoint: &Endpoint) -> Result<OpenAiModel, ModelError> {
        Ok(OpenAiModel {
            conn: Connection::new(endpoint, "/chat/completions")?,
            json_schema: AtomicBool::new(true),
        })
    }
}

/// What the Chat Completions and the Responses clients share: the HTTP client, the base URL as
/// recorded (no credentials), and whether the server streams.
pub(super) struct Connection {
    pub(super) client: Client<QueryConfig>,
    /// The HTTP client under `client`, and what it sends with every call, for streamed calls.
    http: reqwest::Client,
    config: QueryConfig,
    headers: reqwest::header::HeaderMap,
    /// Where streamed calls go (a connection serves one API, so one path), parsed once; `None`
    /// when it is not a URL, and then reqwest says why at the call, as for any call.
    stream_url: Option<reqwest::Url>,
    stream_to: String,
    pub(super) base_url: String,
    /// Cleared when the server turns out not to support streaming.
    stream: AtomicBool,
    /// A permit per call in flight, [`Endpoint::max_connections`] of them; a call waits its
    /// turn (first come, first served) for one and holds it until its answer is read whole,
    /// stream included, so that the connection it used is free for the next.
    slots: tokio::sync::Semaphore,
}

impl Connection {
    /// A connection to `endpoint` whose streamed calls go to `path` (`/chat/completions`,
    /// `/responses`).
    pub(super) fn new(endpoint: &Endpoint, path: &str) -> Result<Connection, ModelError> {
        let (client, http, config) = client(endpoint)?;
        let stream_to = config.url(path);
        let mut headers = config.headers();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        Ok(Connection {
            client,
            http,
            config,
            headers,
            stream_url: reqwest::Url::parse(&stream_to).ok(),
            stream_to,
            base_url: redact_url(&endpoint.base_url),
            stream: AtomicBool::new(endpoint.stream),
            slots: tokio::sync::Semaphore::new(endpoint.max_connections.max(1)),
        })
    }

    pub(super) fn streams(&self) -> bool {
        self.stream.load(Ordering::Relaxed)
    }

    /// A failed call as a model error, with what the HTTP layer saw of its response.
    pub(super) fn error(&self, e: OpenAIError) -> ModelError {
        to_model_error(e, &self.base_url, seen())
    }

    /// One call through `attempt(streaming)`: streamed when asked and the server streams. A
    /// server that refuses streaming is asked again without it (and not asked to stream again
    /// this run); an error `adapt` adapted to (and says so) is tried again too.
    pub(super) async fn call<F, Fut>(
        &self,
        request: &ChatRequest,
        mut attempt: F,
        mut adapt: impl FnMut(&ModelError) -> bool,
    ) -> Result<ChatResponse, ModelError>
    where
        F: FnMut(bool) -> Fut,
        Fut: Future<Output = Result<ChatResponse, ModelError>>,
    {
        let (_permit, queued) = match self.slots.try_acquire() {
            Ok(permit) => (permit, None),
            Err(_) => {
                let waiting = Instant::now();
                let permit = self.slots.acquire().await.map_err(|_| {
                    ModelError::new("the model client was shut down while the call waited")
                })?;
                (permit, Some(waiting.elapsed().as_secs_f64() * 1000.0))
            }
        };
        loop {
            let streaming = request.stream && self.streams();
            match attempt(streaming).await {
                Err(e) if streaming && refuses_streaming(&e) => {
                    self.stream.store(false, Ordering::Relaxed);
                }
                Err(e) if adapt(&e) => {}
                Ok(mut response) => {
                    response.queued_ms = queued;
                    return Ok(response);
                }
                other => return other,
            }
        }
    }

    /// Sends `body` asking for a stream, and reads the stream into `S`, showing the answer's
    /// text to `on_delta` as it comes.
    pub(super) async fn read_stream<S: Accumulate>(
        &self,
        request: &ChatRequest,
        on_delta: Option<&DeltaFn<'_>>,
        body: &(impl serde::Serialize + ?Sized),
    ) -> Result<ChatResponse, ModelError> {
        let started = Instant::now();
        let response = self.open_stream(body).await?;
        let mut state = S::default();
        drain(response, &self.base_url, |event| {
            if let Some(text) = state.add(event, started)?
                && let Some(f) = on_delta
            {
                f(&text);
            }
            Ok(())
        })
        .await?;
        state.finish(request)
    }

    /// POSTs `body` as async-openai would (its URL, query, headers and key), and returns the
    /// response once the server answered with a success; an error status becomes the error
    /// async-openai would have made of it.
    async fn open_stream(
        &self,
        body: &(impl serde::Serialize + ?Sized),
    ) -> Result<reqwest::Response, ModelError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| ModelError::new(format!("cannot encode the request: {e}")))?;
        let mut builder = match &self.stream_url {
            Some(url) => self.http.post(url.clone()),
            None => self.http.post(self.stream_to.as_str()),
        };
        if !self.config.query.is_empty() {
            builder = builder.query(&self.config.query());
        }
        let response = builder
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                to_model_error(OpenAIError::Reqwest(e), &self.base_url, Seen::default())
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let seen = Seen::of(&response);
        let error = match response.bytes().await {
            Ok(bytes) => error_of(status, &bytes),
            Err(e) => OpenAIError::Reqwest(e),
        };
        Err(to_model_error(error, &self.base_url, seen))
    }
}

/// The error async-openai makes of an error response (`read_error_response`): a 5xx body as
/// the message, an OpenAI error object as such, anything else as a body it could not read.
fn error_of(status: reqwest::StatusCode, bytes: &[u8]) -> OpenAIError {
    use async_openai::error::{ApiError, ApiErrorResponse, WrappedError};
    let text = || String::from_utf8_lossy(bytes).into_owned();
    let api_error = if status.is_server_error() {
        ApiError {
            message: text(),
            r#type: None,
            param: None,
            code: None,
            misalignment: None,
        }
    } else {
        match serde_json::from_slice::<WrappedError>(bytes) {
            Ok(wrapped) => wrapped.error,
            Err(e) => return OpenAIError::JSONDeserialize(e, text()),
        }
    };
    OpenAIError::ApiError(ApiErrorResponse {
        status_code: status,
        api_error,
    })
}

/// Accumulates a streamed answer event by event: Chat Completions chunks, Responses API events.
pub(super) trait Accumulate: Default {
    /// Adds one event (the JSON text of its `data:`); returns the answer text it carried, if
    /// any.
    fn add(&mut self, data: &str, started: Instant) -> Result<Option<String>, ModelError>;
    /// The whole response, or an error when the stream ended before the response did.
    fn finish(self, request: &ChatRequest) -> Result<ChatResponse, ModelError>;
}

/// A model call's future, with its own note of what the HTTP layer saw.
pub(super) fn noting<'a>(
    call: impl Future<Output = Result<ChatResponse, ModelError>> + Send + 'a,
) -> ModelFuture<'a> {
    Box::pin(SEEN.scope(Cell::new(Seen::default()), call))
}

/// An async-openai client for `endpoint`: its key, headers and base-URL query, timeouts, and
/// the HTTP layer that notes each response's status and `Retry-After`. Shared by the Chat
/// Completions and the Responses clients.
fn client(
    endpoint: &Endpoint,
) -> Result<(Client<QueryConfig>, reqwest::Client, QueryConfig), ModelError> {
    install_crypto_provider();
    // A query in the base URL (`…/v1?api-key=…`, as some gateways want) goes after the
    // path of each call, not before it.
    let (base, query) = match endpoint.base_url.split_once('?') {
        Some((base, query)) => (base, crate::query::pairs(Some(query))),
        None => (endpoint.base_url.as_str(), Vec::new()),
    };
    let mut config = OpenAIConfig::new()
        .with_api_base(base.trim_end_matches('/'))
        .with_api_key(endpoint.api_key.clone().unwrap_or_default());
    for (name, value) in &endpoint.headers {
        let header = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ModelError::new(format!("invalid provider header name `{name}`: {e}")))?;
        config = config
            .with_header(header, value.clone())
            .map_err(|e| ModelError::new(format!("invalid provider header `{name}`: {e}")))?;
    }
    let mut http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600));
    if endpoint.base_url.starts_with("http://") {
        // A plain-HTTP endpoint (a local model server) never does TLS: skip reading and
        // parsing the system's root certificates, a few milliseconds of every start-up.
        http = http.tls_certs_only([]);
    }
    let http = http.build().map_err(|e| {
        ModelError::new(format!(
            "cannot build the HTTP client: {}",
            crate::causes::chain(&e)
        ))
    })?;
    // `Client::build`, not `with_config`: the latter makes a default reqwest client of its own
    // (reading the system's root certificates) only to have it replaced.
    let config = QueryConfig { config, query };
    let client = Client::build(http.clone(), config.clone())
        .with_http_service(Noting(ReqwestService::new(http.clone())));
    Ok((client, http, config))
}

/// async-openai's OpenAI configuration plus the base URL's query parameters, sent with every
/// call.
#[derive(Clone)]
pub(super) struct QueryConfig {
    config: OpenAIConfig,
    query: Vec<(String, String)>,
}

impl Config for QueryConfig {
    fn headers(&self) -> reqwest::header::HeaderMap {
        self.config.headers()
    }
    fn url(&self, path: &str) -> String {
        self.config.url(path)
    }
    fn query(&self) -> Vec<(&str, &str)> {
        self.query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
    fn api_base(&self) -> &str {
        self.config.api_base()
    }
    fn api_key(&self) -> &secrecy::SecretString {
        self.config.api_key()
    }
}

/// A URL without user name, password or credential query values, safe to record.
pub fn redact_url(url: &str) -> String {
    crate::trace::redact::url(url)
}

/// A Chat Completions request body, serialized straight from the request: no JSON tree in
/// between (a wide fan-out sends thousands of them). Its keys are in this order, each left out
/// when it has nothing to say.
#[derive(serde::Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [super::Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    /// Chat Completions takes the effort alone; validation keeps `summary` off this API.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(serde::Serialize)]
struct ToolBody<'a> {
    r#type: &'static str,
    function: FunctionBody<'a>,
}

#[derive(serde::Serialize)]
struct FunctionBody<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

/// The output schema: strict `json_schema`, or `json_object` with the schema beside it for a
/// server that refused the strict form.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseFormat<'a> {
    JsonSchema { json_schema: JsonSchemaBody<'a> },
    JsonObject { schema: &'a Value },
}

#[derive(serde::Serialize)]
struct JsonSchemaBody<'a> {
    name: &'a str,
    schema: &'a Value,
    strict: bool,
}

#[derive(serde::Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl<'a> ChatBody<'a> {
    /// `json_schema`: whether the server takes a strict `json_schema` response format.
    fn new(request: &'a ChatRequest, stream: bool, json_schema: bool) -> ChatBody<'a> {
        ChatBody {
            model: &request.model,
            messages: &request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            seed: request.seed,
            reasoning_effort: request.reasoning.as_ref().and_then(|r| r.effort.as_deref()),
            tools: request
                .tools
                .iter()
                .map(|t| ToolBody {
                    r#type: "function",
                    function: FunctionBody {
                        name: &t.name,
                        description: &t.description,
                        parameters: &t.parameters,
                    },
                })
                .collect(),
            response_format: request.output_schema.as_ref().map(|(name, schema)| {
                if json_schema {
                    ResponseFormat::JsonSchema {
                        json_schema: JsonSchemaBody {
                            name,
                            schema,
                            strict: true,
                        },
                    }
                } else {
                    ResponseFormat::JsonObject { schema }
                }
            }),
            stream: stream.then_some(true),
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }
}

/// A server's text cut for an error message (trimmed first: bodies often end in a newline).
pub(super) fn truncate(s: &str, max: usize) -> String {
    crate::trace::bound::truncate(s.trim(), max)
}

/// The message inside an OpenAI error body, when a server sent one as text.
fn inner_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("error").unwrap_or(&value);
    error
        .get("message")
        .or_else(|| error.get("detail"))
        .and_then(|m| m.as_str())
        .map(String::from)
}

/// What the HTTP layer saw of the last response of a call: its status and `Retry-After`.
/// async-openai turns error responses into errors without their headers (and, for bodies it
/// cannot parse, without their status), so a layer under it notes them for this task.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl Seen {
    fn of(response: &reqwest::Response) -> Seen {
        Seen {
            status: Some(response.status().as_u16()),
            retry_after: response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        }
    }
}

tokio::task_local! {
    static SEEN: Cell<Seen>;
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let secs = when.as_second() - jiff::Timestamp::now().as_second();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// The HTTP service under async-openai: plain reqwest (no retries: the engine retries and
/// records each attempt), noting what it saw in [`SEEN`].
#[derive(Clone)]
struct Noting(ReqwestService);

impl tower::Service<HttpRequestFactory> for Noting {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = Pin<Box<dyn Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), OpenAIError>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let call = self.0.call(request);
        Box::pin(async move {
            let response = call.await?;
            let seen = Seen::of(&response);
            // Outside a scope (no call of ours) there is nothing to note.
            let _ = SEEN.try_with(|cell| cell.set(seen));
            Ok(response)
        })
    }
}

fn to_model_error(error: OpenAIError, base_url: &str, seen: Seen) -> ModelError {
    let mut e = match error {
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
            ModelError::http(status, message)
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
            let message = format!("{what} at {base_url}: {root}");
            match e.status() {
                Some(status) => ModelError::http(status.as_u16(), message),
                // A certificate that is not trusted will not be trusted on the next attempt.
                None if is_tls_error(&e) => ModelError::new(message),
                None => ModelError::transient(message),
            }
        }
        OpenAIError::JSONDeserialize(e, body) => match seen.status.filter(|s| *s >= 400) {
            // An error body in a shape async-openai does not know (`{"detail": ...}`).
            Some(status) => {
                let detail = inner_message(&body).unwrap_or_else(|| truncate(&body, 300));
                let mut message = format!("model server answered HTTP {status}");
                if !detail.trim().is_empty() {
                    message.push_str(": ");
                    message.push_str(&detail);
                }
                ModelError::http(status, message)
            }
            None => ModelError::new(format!(
                "malformed response from the model server: {e} (body starts: {:?})",
                truncate(&body, 80)
            )),
        },
        OpenAIError::StreamError(e) => {
            ModelError::transient(format!("the response stream from {base_url} failed: {e}"))
        }
        other => ModelError::new(format!("the model call failed: {other}")),
    };
    e.retry_after = seen.retry_after;
    e
}

/// Whether the TLS handshake failed (an untrusted or invalid certificate, no common protocol).
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        // An `io::Error` that wraps an error reports that error's source, not the error itself.
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

pub(super) fn malformed(what: &str, value: &Value) -> ModelError {
    ModelError::new(format!(
        "malformed response from the model server: {what} (body starts: {:?})",
        truncate(&value.to_string(), 80)
    ))
}

/// The cached input and reasoning token counts of a `usage` object (Chat Completions'
/// `prompt_tokens_details` and `completion_tokens_details`), each only when above zero.
pub(super) fn token_details(
    usage: &Value,
    input: &str,
    output: &str,
) -> (Option<u64>, Option<u64>) {
    let count = |details: &str, field: &str| {
        usage
            .get(details)
            .and_then(|d| d.get(field))
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
    };
    (
        count(input, "cached_tokens"),
        count(output, "reasoning_tokens"),
    )
}

/// The `usage` object of a chat completion or chunk, when it has one.
fn usage_in(value: &Value) -> Option<&Value> {
    value.get("usage").filter(|u| u.is_object())
}

fn chat_token_details(u: &Value, into: &mut ChatResponse) {
    (into.cached_input_tokens, into.reasoning_tokens) =
        token_details(u, "prompt_tokens_details", "completion_tokens_details");
}

/// The token counts of a chat `usage` object.
fn chat_usage(u: &Value) -> Usage {
    let input = u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
    let output = u
        .get("completion_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let total = u
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(input + output);
    Usage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: total,
    }
}

pub(super) fn text_of(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(String::from)
}

/// Reads a non-streamed `chat.completion`.
pub fn parse_completion(body: &Value) -> Result<ChatResponse, ModelError> {
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| malformed("no choices", body))?;
    let message = choice
        .get("message")
        .ok_or_else(|| malformed("a choice without a message", body))?;
    let tool_calls = match message.get("tool_calls") {
        Some(Value::Array(calls)) => calls
            .iter()
            .map(|c| {
                let function = c.get("function").unwrap_or(&Value::Null);
                let arguments = match function.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) if !other.is_null() => other.to_string(),
                    _ => String::new(),
                };
                ToolCall::new(
                    text_of(c.get("id")).unwrap_or_default(),
                    text_of(function.get("name")).unwrap_or_default(),
                    arguments,
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let usage = usage_in(body);
    let mut response = ChatResponse {
        text: text_of(message.get("content")).unwrap_or_default(),
        tool_calls,
        usage: usage.map(chat_usage).unwrap_or_default(),
        response_model: text_of(body.get("model")),
        finish_reason: text_of(choice.get("finish_reason")),
        response_id: text_of(body.get("id")),
        ..ChatResponse::default()
    };
    if let Some(u) = usage {
        chat_token_details(u, &mut response);
    }
    Ok(response)
}

/// Accumulates a streamed response chunk by chunk.
#[derive(Default)]
pub struct StreamState {
    response: ChatResponse,
    /// Tool calls by their index in the stream.
    calls: Vec<ToolCall>,
    saw_usage: bool,
}

impl Accumulate for StreamState {
    fn add(&mut self, data: &str, started: Instant) -> Result<Option<String>, ModelError> {
        // Read straight into the few fields that matter (no map of every key); a chunk whose
        // fields have unexpected types is read leniently from its JSON instead.
        let text = match serde_json::from_str::<Chunk<'_>>(data) {
            Ok(chunk) => self.push_chunk(&chunk, started),
            Err(_) => self.push(&parse_event(data)?, started),
        };
        Ok(text)
    }

    fn finish(self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        StreamState::finish(self, request)
    }
}

/// What a Chat Completions chunk says, of what is read from it. Strings are borrowed from the
/// event's text when they hold no escapes.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    usage: Option<Value>,
    #[serde(borrow)]
    choices: Vec<ChunkChoice<'a>>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct ChunkChoice<'a> {
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    delta: Option<ChunkDelta<'a>>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct ChunkDelta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ChunkCall<'a>>>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct ChunkCall<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<ChunkFunction<'a>>,
}

#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct ChunkFunction<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

impl<'a> Chunk<'a> {
    /// The chunk in `value`, read leniently: a field of an unexpected type counts as absent.
    fn of(value: &'a Value) -> Chunk<'a> {
        let text = |v: Option<&'a Value>| v.and_then(Value::as_str).map(Cow::Borrowed);
        let choices = value
            .get("choices")
            .and_then(Value::as_array)
            .map(|choices| {
                choices
                    .iter()
                    .map(|choice| ChunkChoice {
                        finish_reason: text(choice.get("finish_reason")),
                        delta: choice.get("delta").map(|delta| ChunkDelta {
                            content: text(delta.get("content")),
                            tool_calls: delta.get("tool_calls").and_then(Value::as_array).map(
                                |calls| {
                                    calls
                                        .iter()
                                        .map(|call| {
                                            let function = call.get("function");
                                            ChunkCall {
                                                index: call.get("index").and_then(Value::as_u64),
                                                id: text(call.get("id")),
                                                function: function.map(|f| ChunkFunction {
                                                    name: text(f.get("name")),
                                                    arguments: text(f.get("arguments")),
                                                }),
                                            }
                                        })
                                        .collect()
                                },
                            ),
                        }),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Chunk {
            id: text(value.get("id")),
            model: text(value.get("model")),
            usage: value.get("usage").filter(|u| u.is_object()).cloned(),
            choices,
        }
    }
}

impl StreamState {
    /// Adds one chunk; returns the text delta it carried, if any.
    pub fn push(&mut self, chunk: &Value, started: Instant) -> Option<String> {
        self.push_chunk(&Chunk::of(chunk), started)
    }

    fn push_chunk(&mut self, chunk: &Chunk<'_>, started: Instant) -> Option<String> {
        let r = &mut self.response;
        if r.response_id.is_none() {
            r.response_id = chunk.id.as_deref().map(String::from);
        }
        if r.response_model.is_none() {
            r.response_model = chunk.model.as_deref().map(String::from);
        }
        if let Some(usage) = chunk.usage.as_ref().filter(|u| u.is_object()) {
            r.usage = chat_usage(usage);
            chat_token_details(usage, r);
            self.saw_usage = true;
        }
        let choice = chunk.choices.first()?;
        if let Some(reason) = &choice.finish_reason {
            r.finish_reason = Some(reason.to_string());
        }
        let delta = choice.delta.as_ref()?;
        let mut first = false;
        let text = delta
            .content
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(String::from);
        if let Some(t) = &text {
            r.text.push_str(t);
            first = true;
        }
        for (position, call) in delta.tool_calls.iter().flatten().enumerate() {
            let index = call.index.map_or(position, |i| i as usize);
            while self.calls.len() <= index {
                self.calls.push(ToolCall::new("", "", ""));
            }
            let slot = &mut self.calls[index];
            // Some servers (llama.cpp) repeat the id and name in every chunk: they are set
            // once, only the arguments accumulate.
            if slot.id.is_empty()
                && let Some(id) = &call.id
            {
                slot.id = id.to_string();
            }
            let function = call.function.as_ref();
            if slot.function.name.is_empty()
                && let Some(name) = function.and_then(|f| f.name.as_deref())
            {
                slot.function.name = name.to_string();
            }
            if let Some(args) = function.and_then(|f| f.arguments.as_deref()) {
                slot.function.arguments.push_str(args);
            }
            first = true;
        }
        if first && r.time_to_first_token_ms.is_none() {
            r.time_to_first_token_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        }
        text
    }

    /// The whole response, or an error when the stream ended early.
    pub fn finish(mut self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        if self.response.finish_reason.is_none() {
            return Err(ModelError::transient(
                "the response stream ended before the response was complete (no finish_reason)",
            ));
        }
        self.response.tool_calls = self.calls;
        self.response.streamed = true;
        if !self.saw_usage {
            estimate_usage(&mut self.response, request);
        }
        Ok(self.response)
    }
}

/// Counts a response's tokens the offline model's way, for a server that sent no usage.
pub(super) fn estimate_usage(response: &mut ChatResponse, request: &ChatRequest) {
    let output = count_tokens(&response.text)
        + response
            .tool_calls
            .iter()
            .map(|c| count_tokens(&c.function.arguments))
            .sum::<u64>();
    response.usage = Usage::new(count_request_tokens(&request.messages), output);
    response.usage_estimated = true;
}

/// A failure before the first event: what the server sent is not a stream, and will not
/// become one if asked again (unless it is an HTTP error status, which keeps its own verdict).
fn not_a_stream(mut e: ModelError) -> ModelError {
    if e.status.is_none() {
        e.retryable = false;
    }
    e
}

/// Whether an error says the server cannot stream (so a plain request may work).
fn refuses_streaming(error: &ModelError) -> bool {
    matches!(error.status, Some(400 | 404 | 405 | 415 | 422 | 501))
        && error.message.to_ascii_lowercase().contains("stream")
}

/// Whether an error says the server does not know `response_format: json_schema` (llama.cpp
/// knows only `json_object` with a `schema`).
fn refuses_json_schema(error: &ModelError) -> bool {
    let m = error.message.to_ascii_lowercase();
    matches!(error.status, Some(400..=599))
        && (m.contains("json_schema") || m.contains("response_format") || m.contains("json_object"))
}

/// How long the rest of a body may take once its stream said `[DONE]`: a server that keeps
/// the body open after it is left, and its connection closed.
const TAIL: Duration = Duration::from_secs(1);

/// Hands each event of a response stream to `each`, in order, and reads the body to its end
/// (past `[DONE]`), so that its connection can carry the next call. A connection that breaks
/// after the first event is a stream that ended early (worth another try); a failure before it,
/// or a 200 with no event at all, is a server that does not stream this way (not worth one).
async fn drain(
    response: reqwest::Response,
    base_url: &str,
    mut each: impl FnMut(&str) -> Result<(), ModelError>,
) -> Result<(), ModelError> {
    let mut body = response.bytes_stream();
    let mut parser = super::sse::Parser::default();
    let mut events = 0usize;
    let mut done = false;
    let broke = |e: &dyn std::fmt::Display, events: usize| {
        let broke = format!("the response stream from {base_url} failed: {e}");
        if events > 0 {
            ModelError::transient(format!(
                "the response stream ended before the response was complete: {broke}"
            ))
        } else {
            not_a_stream(ModelError::transient(broke))
        }
    };
    loop {
        loop {
            let event = match parser.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                // What follows `[DONE]` is read only to reach the end; a fault there loses
                // nothing.
                Err(_) if done => break,
                Err(e) => return Err(broke(&e, events)),
            };
            if done || event.event == "keepalive" {
                continue;
            }
            if event.data == "[DONE]" {
                done = true;
                continue;
            }
            events += 1;
            each(&event.data)?;
        }
        let next = if done {
            match tokio::time::timeout(TAIL, body.next()).await {
                Ok(next) => next,
                Err(_) => break,
            }
        } else {
            body.next().await
        };
        match next {
            Some(Ok(bytes)) => parser.feed(&bytes),
            None => break,
            Some(Err(_)) if done => break,
            Some(Err(e)) => return Err(broke(&e, events)),
        }
    }
    if events == 0 {
        // A 200 whose body holds no event at all: the server answered, but not with a
        // stream. Asking again would get the same answer.
        return Err(ModelError::new(
            "malformed response from the model server: a streamed request got no events",
        ));
    }
    Ok(())
}

/// A streamed event's JSON.
pub(super) fn parse_event(data: &str) -> Result<Value, ModelError> {
    serde_json::from_str(data).map_err(|e| {
        ModelError::new(format!(
            "malformed response from the model server: {e} (body starts: {:?})",
            truncate(data, 80)
        ))
    })
}

/// What this task's HTTP layer saw last.
fn seen() -> Seen {
    SEEN.try_with(Cell::get).unwrap_or_default()
}

impl OpenAiModel {
    fn body<'a>(&self, request: &'a ChatRequest, stream: bool) -> ChatBody<'a> {
        ChatBody::new(request, stream, self.json_schema.load(Ordering::Relaxed))
    }

    async fn complete_once(
        &self,
        request: &ChatRequest,
        on_delta: Option<&DeltaFn<'_>>,
        streaming: bool,
    ) -> Result<ChatResponse, ModelError> {
        if streaming {
            let body = self.body(request, true);
            return self
                .conn
                .read_stream::<StreamState>(request, on_delta, &body)
                .await;
        }
        let body: Value = self
            .conn
            .client
            .chat()
            .create_byot(self.body(request, false))
            .await
            .map_err(|e| self.conn.error(e))?;
        parse_completion(&body)
    }
}

impl Model for OpenAiModel {
    /// One call, falling back (once per run) to what the server supports: no streaming, or
    /// `json_object` with a schema instead of `json_schema`.
    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_delta: Option<&'a DeltaFn<'a>>,
    ) -> ModelFuture<'a> {
        noting(self.conn.call(
            request,
            move |streaming| self.complete_once(request, on_delta, streaming),
            |e| {
                let adapt = request.output_schema.is_some()
                    && self.json_schema.load(Ordering::Relaxed)
                    && refuses_json_schema(e);
                if adapt {
                    self.json_schema.store(false, Ordering::Relaxed);
                }
                adapt
            },
        ))
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
    use crate::llm::{Message, ToolSpec};
    use serde_json::json;

    /// The body for `request` as JSON, to a server that takes a strict `json_schema`.
    fn request_body(request: &ChatRequest, stream: bool) -> Value {
        serde_json::to_value(ChatBody::new(request, stream, true)).unwrap()
    }

    #[test]
    fn server_text_in_errors_is_trimmed_and_cut_to_the_limit_with_the_ellipsis() {
        assert_eq!(truncate(" ok\n", 80), "ok");
        let cut = truncate(&"x".repeat(500), 80);
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with('…'), "{cut}");
    }

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
            stream: true,
            max_connections: 1,
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

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![Message::user("hi")],
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
            reasoning: None,
        }
    }

    #[test]
    fn request_bodies_carry_tools_schema_and_stream_options() {
        let body = request_body(&request(), true);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.5,
                "max_tokens": 10,
                "seed": 7,
                "tools": [{"type": "function", "function": {"name": "get", "description": "Get it", "parameters": {"type": "object"}}}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "a_output", "schema": {"type": "object"}, "strict": true}},
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        assert!(request_body(&request(), false).get("stream").is_none());
    }

    #[test]
    fn a_request_body_is_sent_in_order_and_falls_back_to_json_object_with_its_schema() {
        let r = request();
        assert_eq!(
            serde_json::to_string(&ChatBody::new(&r, true, true)).unwrap(),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"max_tokens":10,"seed":7,"tools":[{"type":"function","function":{"name":"get","description":"Get it","parameters":{"type":"object"}}}],"response_format":{"type":"json_schema","json_schema":{"name":"a_output","schema":{"type":"object"},"strict":true}},"stream":true,"stream_options":{"include_usage":true}}"#
        );
        let fallback = serde_json::to_value(ChatBody::new(&r, false, false)).unwrap();
        assert_eq!(
            fallback["response_format"],
            json!({"type": "json_object", "schema": {"type": "object"}})
        );
        let mut bare = request();
        (bare.temperature, bare.max_tokens, bare.seed) = (None, None, None);
        (bare.tools, bare.output_schema) = (Vec::new(), None);
        assert_eq!(
            serde_json::to_string(&ChatBody::new(&bare, false, true)).unwrap(),
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
        );
    }

    #[test]
    fn a_reasoning_effort_goes_to_chat_completions_as_reasoning_effort() {
        let mut r = request();
        r.reasoning = Some(crate::llm::Reasoning {
            effort: Some("high".into()),
            summary: None,
        });
        assert_eq!(request_body(&r, false)["reasoning_effort"], json!("high"));
        assert!(
            request_body(&request(), false)
                .get("reasoning_effort")
                .is_none()
        );
    }

    #[test]
    fn cached_and_reasoning_tokens_are_kept_when_there_are_any() {
        let body = |cached: u64, reasoning: u64| {
            json!({
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
                          "prompt_tokens_details": {"cached_tokens": cached},
                          "completion_tokens_details": {"reasoning_tokens": reasoning}}
            })
        };
        let r = parse_completion(&body(3, 4)).unwrap();
        assert_eq!(
            (r.cached_input_tokens, r.reasoning_tokens),
            (Some(3), Some(4))
        );
        let r = parse_completion(&body(0, 0)).unwrap();
        assert_eq!((r.cached_input_tokens, r.reasoning_tokens), (None, None));
    }

    #[test]
    fn completions_with_tool_calls_are_read_leniently() {
        let body = json!({
            "id": "chatcmpl-1", "model": "smollm2",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "function_call": {"name": "get:", "arguments": "{}"},
                "tool_calls": [{"id": "call_0", "type": "function", "function": {"name": "get", "arguments": "{ \"a\": 1 }"}}]
            }}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
        });
        let r = parse_completion(&body).unwrap();
        assert_eq!(r.text, "");
        assert_eq!(
            r.tool_calls,
            vec![ToolCall::new("call_0", "get", "{ \"a\": 1 }")]
        );
        assert_eq!(r.usage, Usage::new(5, 7));
        assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
        assert!(parse_completion(&json!({"choices": []})).is_err());
    }

    #[test]
    fn streams_accumulate_text_tool_calls_and_usage() {
        let started = Instant::now();
        let mut s = StreamState::default();
        let chunks = [
            json!({"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
            // llama.cpp style: id and name repeated in every chunk.
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get", "arguments": "{\"a\""}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "get", "arguments": ": 1}"}}]}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}),
        ];
        let mut texts = Vec::new();
        for c in &chunks {
            if let Some(t) = s.push(c, started) {
                texts.push(t);
            }
        }
        assert_eq!(texts, ["Hel", "lo"]);
        let r = s.finish(&request()).unwrap();
        assert_eq!(r.text, "Hello");
        assert_eq!(
            r.tool_calls,
            vec![ToolCall::new("call_1", "get", "{\"a\": 1}")]
        );
        assert_eq!(r.usage, Usage::new(3, 4));
        assert!(!r.usage_estimated);
        assert!(r.time_to_first_token_ms.is_some());
        assert_eq!(r.response_id.as_deref(), Some("c1"));
    }

    #[test]
    fn chunks_read_from_their_text_and_from_json_give_the_same_answer() {
        let started = Instant::now();
        let chunks = [
            // An id of an unexpected type: this chunk is read leniently, the id left out.
            json!({"id": 7, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hé\"l"}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "get", "arguments": "{}"}}]}}], "usage": null}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": null, "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 2}}}),
        ];
        let mut from_text = StreamState::default();
        let mut from_json = StreamState::default();
        let mut texts = Vec::new();
        for c in &chunks {
            texts.push(from_text.add(&c.to_string(), started).unwrap());
            from_json.push(c, started);
        }
        assert_eq!(texts, [Some("Hé\"l".into()), Some("lo".into()), None, None]);
        let (a, b) = (
            from_text.finish(&request()).unwrap(),
            from_json.finish(&request()).unwrap(),
        );
        assert_eq!(a.text, "Hé\"llo");
        assert_eq!(a.response_id.as_deref(), Some("c1"));
        assert_eq!(a.tool_calls[1], ToolCall::new("call_2", "get", "{}"));
        assert_eq!(
            (a.usage, a.cached_input_tokens),
            (Usage::new(3, 4), Some(2))
        );
        assert_eq!(
            (
                a.text,
                a.tool_calls,
                a.usage,
                a.response_id,
                a.finish_reason
            ),
            (
                b.text,
                b.tool_calls,
                b.usage,
                b.response_id,
                b.finish_reason
            )
        );
        let mut bad = StreamState::default();
        let err = bad.add("{not json", started).unwrap_err();
        assert!(err.message.contains("malformed"), "{}", err.message);
    }

    #[test]
    fn a_stream_without_usage_is_estimated_and_a_cut_stream_is_an_error() {
        let started = Instant::now();
        let mut s = StreamState::default();
        s.push(
            &json!({"choices": [{"index": 0, "delta": {"content": "Hello there"}}]}),
            started,
        );
        s.push(
            &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            started,
        );
        let r = s.finish(&request()).unwrap();
        assert!(r.usage_estimated);
        assert_eq!(r.usage.output_tokens, 3);
        assert!(r.usage.input_tokens > 0);

        let mut cut = StreamState::default();
        cut.push(
            &json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
            started,
        );
        let err = cut.finish(&request()).unwrap_err();
        assert!(err.message.contains("stream ended"), "{}", err.message);
    }
}
