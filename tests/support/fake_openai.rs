//! A real HTTP fake of the OpenAI chat completions API.
//!
//! The binary under test talks to it over TCP exactly as it would talk to OpenAI, so the tests
//! see the requests after templating (model, messages, headers) and can script every way the
//! server may answer: text with usage, HTTP errors, a body that is not JSON, or no answer at all.

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener as StdListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// How the fake answers one request.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub enum Reply {
    /// A normal `chat.completion` with this text and this usage.
    Text {
        content: String,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// An HTTP status with a literal body (sent as `application/json`).
    Status(u16, String),
    /// 200 with a body that is not JSON.
    Malformed,
    /// Never answers: the request stays open until the client gives up or dies.
    Hang,
    /// Waits, then answers as the inner reply.
    Delay(u64, Box<Reply>),
    /// The default: `echo: <last user message>` with usage 10 + 5.
    Echo,
}

#[allow(dead_code)]
impl Reply {
    pub fn text(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Reply {
        Reply::Text {
            content: content.to_string(),
            prompt_tokens,
            completion_tokens,
        }
    }

    /// The body OpenAI sends with a 401 for a wrong key.
    pub fn unauthorized() -> Reply {
        Reply::Status(
            401,
            json!({"error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "param": null,
                "code": "invalid_api_key"
            }})
            .to_string(),
        )
    }

    pub fn server_error() -> Reply {
        Reply::Status(
            500,
            json!({"error": {
                "message": "The server had an error while processing your request",
                "type": "server_error",
                "param": null,
                "code": null
            }})
            .to_string(),
        )
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct Recorded {
    pub path: String,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
}

#[allow(dead_code)]
impl Recorded {
    pub fn model(&self) -> &str {
        self.body["model"].as_str().unwrap_or_default()
    }

    /// The `content` of the first message with this role.
    pub fn message(&self, role: &str) -> Option<String> {
        self.body["messages"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == role)
            .map(|m| content_text(&m["content"]))
    }

    /// `[(role, content)]` of every message.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        (
                            m["role"].as_str().unwrap_or_default().to_string(),
                            content_text(&m["content"]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Message content is a string or a list of `{type: text, text}` parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

#[derive(Default)]
struct Shared {
    queue: VecDeque<Reply>,
    default: Option<Reply>,
    requests: Vec<Recorded>,
}

/// The running fake. It lives on its own thread with its own runtime until the test process
/// ends.
#[derive(Clone)]
pub struct FakeOpenAI {
    addr: std::net::SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

#[allow(dead_code)]
impl FakeOpenAI {
    pub fn start() -> FakeOpenAI {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind the fake OpenAI server");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let addr = listener.local_addr().expect("fake server address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        std::thread::Builder::new()
            .name("fake-openai".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("tokio listener for the fake server");
                    let app = Router::new()
                        .route("/v1/chat/completions", post(handle))
                        .route("/chat/completions", post(handle))
                        .with_state(state);
                    axum::serve(listener, app).await.expect("fake server");
                });
            })
            .expect("spawn the fake server thread");
        FakeOpenAI { addr, shared }
    }

    /// `http://127.0.0.1:PORT`, without `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `OPENAI_BASE_URL` should be.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.url())
    }

    /// Queues a reply; replies are used in order, then the default.
    pub fn push(&self, reply: Reply) -> &Self {
        self.lock().queue.push_back(reply);
        self
    }

    /// The reply once the queue is empty (initially [`Reply::Echo`]). Error tests set it so that
    /// a client that retries still sees the same failure.
    pub fn set_default(&self, reply: Reply) -> &Self {
        self.lock().default = Some(reply);
        self
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let recorded = Recorded {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.clone(),
    };
    let reply = {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        s.requests.push(recorded.clone());
        s.queue
            .pop_front()
            .or_else(|| s.default.clone())
            .unwrap_or(Reply::Echo)
    };
    answer(reply, &recorded).await
}

async fn answer(mut reply: Reply, request: &Recorded) -> Response {
    loop {
        match reply {
            Reply::Delay(ms, inner) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply = *inner;
            }
            Reply::Hang => std::future::pending::<()>().await,
            Reply::Status(code, body) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, [("content-type", "application/json")], body).into_response();
            }
            Reply::Malformed => {
                return (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    "<html>this is not json {",
                )
                    .into_response();
            }
            Reply::Echo => {
                let last_user = request
                    .messages()
                    .into_iter()
                    .rev()
                    .find(|(role, _)| role == "user")
                    .map(|(_, c)| c)
                    .unwrap_or_default();
                reply = Reply::text(&format!("echo: {last_user}"), 10, 5);
            }
            Reply::Text {
                content,
                prompt_tokens,
                completion_tokens,
            } => {
                let model = request.model().to_string();
                let body = json!({
                    "id": "chatcmpl-fake0001",
                    "object": "chat.completion",
                    "created": 1_764_000_000u64,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": null},
                        "logprobs": null,
                        "finish_reason": "stop"
                    }],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens
                    }
                });
                return (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    body.to_string(),
                )
                    .into_response();
            }
        }
    }
}

/// A URL on which nothing listens: connections are refused.
#[allow(dead_code)]
pub fn refused_url() -> String {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind a throwaway port");
    let port = listener.local_addr().expect("throwaway address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}
