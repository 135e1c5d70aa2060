//! A real HTTP fake of the OpenAI chat completions API, and of the Responses API
//! (`/v1/responses`, in `fake_responses.rs`) from the same scripted replies.
//!
//! The binary under test talks to it over TCP exactly as it would talk to OpenAI, so the tests
//! see the requests after templating (model, messages, tools, headers) and can script every way
//! the server may answer: text with usage, tool calls, HTTP errors, a body that is not JSON, or
//! no answer at all.
//!
//! A request with `"stream": true` is answered the way OpenAI streams: `text/event-stream` with
//! `data: {chat.completion.chunk}` events (the role first, the content or the tool-call
//! arguments in a few deltas, then a chunk with the finish reason), a usage chunk when the
//! request asked for one (`stream_options.include_usage`), then `data: [DONE]`. The streamed
//! text is always exactly the text the same reply has when not streamed.

use std::collections::{BTreeMap, VecDeque};
use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::fake_responses;

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
    /// Like [`Reply::Status`], with extra response headers (e.g. `Retry-After`).
    StatusWithHeaders(u16, String, Vec<(String, String)>),
    /// 200 with a body that is not JSON.
    Malformed,
    /// Never answers: the request stays open until the client gives up or dies.
    Hang,
    /// Waits this many milliseconds, then answers as the inner reply. A client that gives up
    /// meanwhile (a per-attempt timeout) simply never gets the answer.
    Delay(u64, Box<Reply>),
    /// The default: `echo: <last user message>` with usage 10 + 5.
    Echo,
    /// The model calls these tools in one turn: `(name, arguments as JSON text)`. The message
    /// has `content: null`, the calls get ids `call_1`, `call_2`, … (counted over the server's
    /// life, so ids never repeat within a conversation), `finish_reason` is `tool_calls`, and
    /// the usage is [`TOOL_CALL_USAGE`].
    ToolCalls(Vec<(String, String)>),
    /// Like [`Reply::Echo`], but without any usage: a stream without a usage chunk even when
    /// one was asked for (as llama.cpp does), or a JSON body without `usage`.
    NoUsageStream,
    /// The stream breaks: the role and two content deltas of `partial: <last user message>`,
    /// then the connection closes with no finish reason, no usage and no `[DONE]`. Not
    /// streaming, the JSON body is cut in the middle the same way.
    CutStream,
    /// Like [`Reply::CutStream`], but the response ends cleanly (the HTTP body is complete):
    /// the stream simply stops before any finish reason or `[DONE]`.
    EndStreamEarly,
    /// Like [`Reply::Echo`], but a streamed body stays open after its `[DONE]`, never ending.
    LingerAfterDone,
}

/// `(prompt_tokens, completion_tokens)` of a [`Reply::ToolCalls`] answer.
pub const TOOL_CALL_USAGE: (u64, u64) = (12, 7);

/// How long the fake waits between two streamed chunks, so that deltas really arrive apart.
const CHUNK_GAP: Duration = Duration::from_millis(15);

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

    /// Tool calls from `(name, arguments)` pairs, the arguments as a JSON value.
    pub fn tool_calls(calls: &[(&str, Value)]) -> Reply {
        Reply::ToolCalls(
            calls
                .iter()
                .map(|(name, args)| (name.to_string(), args.to_string()))
                .collect(),
        )
    }

    /// One tool call.
    pub fn tool_call(name: &str, arguments: Value) -> Reply {
        Reply::tool_calls(&[(name, arguments)])
    }

    /// 429 with OpenAI's rate-limit body and `Retry-After: SECONDS`.
    pub fn rate_limited(retry_after_secs: u64) -> Reply {
        Reply::StatusWithHeaders(
            429,
            json!({"error": {
                "message": "Rate limit reached for requests",
                "type": "requests",
                "param": null,
                "code": "rate_limit_exceeded"
            }})
            .to_string(),
            vec![("retry-after".to_string(), retry_after_secs.to_string())],
        )
    }

    /// 400 with OpenAI's invalid-request body: a client error that must not be retried.
    pub fn bad_request() -> Reply {
        Reply::Status(
            400,
            json!({"error": {
                "message": "Invalid value for 'messages': the request is malformed",
                "type": "invalid_request_error",
                "param": "messages",
                "code": null
            }})
            .to_string(),
        )
    }

    /// This reply, answered after `ms` milliseconds.
    pub fn delayed(ms: u64, reply: Reply) -> Reply {
        Reply::Delay(ms, Box::new(reply))
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
    /// The query string, undecoded (empty when there is none).
    pub query: String,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    /// The JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
    /// When the request arrived (its headers and body read).
    pub at: Instant,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
}

#[allow(dead_code)]
impl Recorded {
    fn new(version: axum::http::Version, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Recorded {
        Recorded {
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
            at: Instant::now(),
            version: format!("{version:?}"),
        }
    }

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

    /// Whether the request asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.body["stream"] == Value::Bool(true)
    }

    /// Whether a streamed request asked for a usage chunk.
    pub fn wants_stream_usage(&self) -> bool {
        self.body["stream_options"]["include_usage"] == Value::Bool(true)
    }

    /// The messages as sent (OpenAI wire shape: tool calls, tool call ids and all).
    pub fn raw_messages(&self) -> Vec<Value> {
        self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the functions offered in `tools`, in order.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        t["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The offered tool of this name (`{"type": "function", "function": {...}}`).
    pub fn tool(&self, name: &str) -> Option<Value> {
        self.body["tools"]
            .as_array()?
            .iter()
            .find(|t| t["function"]["name"] == name)
            .cloned()
    }

    /// The `tool` messages as `(tool_call_id, content)`, in order.
    pub fn tool_results(&self) -> Vec<(String, String)> {
        self.raw_messages()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                (
                    m["tool_call_id"].as_str().unwrap_or_default().to_string(),
                    content_text(&m["content"]),
                )
            })
            .collect()
    }

    /// Whether this is a Responses API request (`/v1/responses`).
    pub fn is_responses(&self) -> bool {
        self.path.ends_with("/responses")
    }

    /// The `input` items of a Responses API request, as sent.
    pub fn input(&self) -> Vec<Value> {
        self.body["input"].as_array().cloned().unwrap_or_default()
    }

    /// `[(role, content)]` of every message (of a Responses API request: of its `input`
    /// items that have a role).
    pub fn messages(&self) -> Vec<(String, String)> {
        let key = if self.is_responses() {
            "input"
        } else {
            "messages"
        };
        self.body[key]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter(|m| m.get("role").is_some())
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
    /// Requests received and not yet answered (the handler still running: waiting out a
    /// [`Reply::Delay`], hanging, or building its response).
    in_flight: usize,
    /// The most requests ever in flight at once.
    max_in_flight: usize,
    /// The last tool call id handed out.
    call_ids: AtomicU64,
}

/// The running fake. It lives on its own thread with its own runtime until the test process
/// ends.
#[derive(Clone)]
pub struct FakeOpenAI {
    addr: std::net::SocketAddr,
    shared: Arc<Mutex<Shared>>,
    /// Set for a server started with [`FakeOpenAI::start_tls`].
    tls: Option<Arc<Tls>>,
}

/// What a TLS fake adds: the CA a client must trust, and the connections it accepted.
pub struct Tls {
    /// PEM of the CA that signed the server's certificate (for `SSL_CERT_FILE`).
    pub ca_pem: String,
    pub connections: AtomicU64,
}

#[allow(dead_code)]
impl FakeOpenAI {
    pub fn start() -> FakeOpenAI {
        FakeOpenAI::start_with(None)
    }

    /// The same fake over TLS, with a certificate for 127.0.0.1 signed by a CA made now, offering
    /// these ALPN protocols (`h2`, `http/1.1`): HTTP/2 when the client agrees to it.
    pub fn start_tls(alpn: &[&str]) -> FakeOpenAI {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: another fake's CA is then an unknown issuer, not a bad signature.
        static CAS: AtomicU64 = AtomicU64::new(0);
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("agentrace test CA {}", CAS.fetch_add(1, Ordering::SeqCst)),
        );
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .expect("server params");
        let cert = params
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .expect("server certificate");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server TLS config");
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let tls = Arc::new(Tls {
            ca_pem: ca_cert.pem(),
            connections: AtomicU64::new(0),
        });
        FakeOpenAI::start_with(Some((Arc::new(config), tls)))
    }

    fn start_with(tls: Option<(Arc<rustls::ServerConfig>, Arc<Tls>)>) -> FakeOpenAI {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind the fake OpenAI server");
        listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let addr = listener.local_addr().expect("fake server address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let accepting = tls.clone();
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
                        .route("/v1/responses", post(handle))
                        .route("/responses", post(handle))
                        .route("/v1/traces/ingest", post(ingest))
                        .with_state(state);
                    match accepting {
                        None => axum::serve(listener, app).await.expect("fake server"),
                        Some((config, tls)) => serve_tls(listener, app, config, tls).await,
                    }
                });
            })
            .expect("spawn the fake server thread");
        FakeOpenAI {
            addr,
            shared,
            tls: tls.map(|(_, tls)| tls),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS fake), without `/v1`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The TLS side of a fake started with [`FakeOpenAI::start_tls`].
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_deref()
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

    /// Queues several replies, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.lock().queue.extend(replies);
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

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// When each request arrived, in arrival order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.lock().requests.iter().map(|r| r.at).collect()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// The most requests that were ever in flight at once. A request counts from its arrival
    /// until its handler has produced the response head (after any [`Reply::Delay`]) or the
    /// client went away; so this never overcounts what a client had in flight.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Waits (bounded by `limit`) until at least `n` requests arrived; false on timeout.
    pub fn wait_for_requests(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.request_count() < n {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves `app` over TLS, HTTP/1.1 or HTTP/2 as ALPN decides, counting the connections.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    tls: Arc<Tls>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tls.connections.fetch_add(1, Ordering::SeqCst);
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    version: axum::http::Version,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded::new(version, &uri, &headers, &body);
    let _in_flight = InFlight::enter(&shared);
    let (reply, call_ids) = {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        // Stamped under the lock, so that arrival times are in the order of `requests`.
        let mut recorded = recorded.clone();
        recorded.at = Instant::now();
        s.requests.push(recorded);
        let reply = s
            .queue
            .pop_front()
            .or_else(|| s.default.clone())
            .unwrap_or(Reply::Echo);
        (reply, s.call_ids.fetch_add(64, Ordering::SeqCst))
    };
    // Each answer may hand out up to 64 tool call ids: `call_{call_ids + 1}`, ….
    answer(reply, &recorded, call_ids).await
}

/// The Agents SDK's traces ingest endpoint: records the request like any other and answers
/// `204 No Content` as OpenAI does, or the next queued reply when the test queued one.
async fn ingest(
    State(shared): State<Arc<Mutex<Shared>>>,
    version: axum::http::Version,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let queued = {
        let s = shared.lock().unwrap_or_else(|e| e.into_inner());
        !s.queue.is_empty()
    };
    if queued {
        return handle(State(shared), version, uri, headers, body).await;
    }
    let recorded = Recorded::new(version, &uri, &headers, &body);
    shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .requests
        .push(recorded);
    StatusCode::NO_CONTENT.into_response()
}

/// Counts one request in flight for as long as it lives (dropped when the handler returns or
/// its future is dropped because the client went away).
struct InFlight(Arc<Mutex<Shared>>);

impl InFlight {
    fn enter(shared: &Arc<Mutex<Shared>>) -> InFlight {
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

async fn answer(mut reply: Reply, request: &Recorded, first_call_id: u64) -> Response {
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
            Reply::StatusWithHeaders(code, body, headers) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = Response::builder()
                    .status(status)
                    .header("content-type", "application/json");
                for (name, value) in headers {
                    response = response.header(name, value);
                }
                return response
                    .body(Body::from(body))
                    .unwrap_or_else(|e| panic!("fake server: build a status response: {e}"));
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
                reply = Reply::text(&format!("echo: {}", last_user(request)), 10, 5);
            }
            Reply::Text {
                content,
                prompt_tokens,
                completion_tokens,
            } => {
                let answer = Answer {
                    content: Some(content),
                    tool_calls: Vec::new(),
                    usage: Some((prompt_tokens, completion_tokens)),
                };
                return respond(answer, request, Ending::Complete);
            }
            Reply::ToolCalls(calls) => {
                let tool_calls = calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, arguments))| {
                        (
                            format!("call_{}", first_call_id + 1 + i as u64),
                            name,
                            arguments,
                        )
                    })
                    .collect();
                let answer = Answer {
                    content: None,
                    tool_calls,
                    usage: Some(TOOL_CALL_USAGE),
                };
                return respond(answer, request, Ending::Complete);
            }
            Reply::NoUsageStream => {
                let answer = Answer::to(request, "echo", None);
                return respond(answer, request, Ending::Complete);
            }
            Reply::CutStream => {
                let answer = Answer::to(request, "partial", Some((10, 5)));
                return respond(answer, request, Ending::Cut);
            }
            Reply::EndStreamEarly => {
                let answer = Answer::to(request, "partial", Some((10, 5)));
                return respond(answer, request, Ending::Early);
            }
            Reply::LingerAfterDone => {
                let answer = Answer::to(request, "echo", Some((10, 5)));
                return respond(answer, request, Ending::Linger);
            }
        }
    }
}

fn last_user(request: &Recorded) -> String {
    request
        .messages()
        .into_iter()
        .rev()
        .find(|(role, _)| role == "user")
        .map(|(_, c)| c)
        .unwrap_or_default()
}

/// What the model says, however it is delivered.
pub(super) struct Answer {
    pub(super) content: Option<String>,
    /// `(id, name, arguments)`
    pub(super) tool_calls: Vec<(String, String, String)>,
    /// `(prompt_tokens, completion_tokens)`; `None`: the server reports no usage.
    pub(super) usage: Option<(u64, u64)>,
}

impl Answer {
    /// `{prefix}: <last user message>` as text, with this usage.
    fn to(request: &Recorded, prefix: &str, usage: Option<(u64, u64)>) -> Answer {
        Answer {
            content: Some(format!("{prefix}: {}", last_user(request))),
            tool_calls: Vec::new(),
            usage,
        }
    }

    fn finish_reason(&self) -> &'static str {
        if self.tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
    }

    fn usage_json(&self) -> Option<Value> {
        self.usage.map(
            |(p, c)| json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}),
        )
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Ending {
    Complete,
    /// The connection drops part way.
    Cut,
    /// The body ends part way, cleanly.
    Early,
    /// The whole answer, then a streamed body that stays open.
    Linger,
}

const COMPLETION_ID: &str = "chatcmpl-fake0001";
const CREATED: u64 = 1_764_000_000;

fn respond(answer: Answer, request: &Recorded, ending: Ending) -> Response {
    let summary = request
        .is_responses()
        .then(|| fake_responses::summary_for(request, &last_user(request)))
        .flatten();
    let linger = ending == Ending::Linger;
    let ending = if linger { Ending::Complete } else { ending };
    if request.is_stream() {
        let events = if request.is_responses() {
            fake_responses::stream_events(&answer, request, ending, summary.as_deref())
        } else {
            stream_events(&answer, request, ending)
        };
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(if linger {
                Body::from_stream(futures::StreamExt::chain(
                    paced(events).into_data_stream(),
                    futures::stream::pending(),
                ))
            } else {
                paced(events)
            })
            .unwrap_or_else(|e| panic!("fake server: build a stream response: {e}"));
    }

    let body = if request.is_responses() {
        fake_responses::body(&answer, request, summary.as_deref())
    } else {
        completion_body(&answer, request)
    };
    let text = body.to_string();
    if ending != Ending::Complete {
        // Half the body, then the connection drops (or the body just ends).
        let half = (0..=text.len() / 2)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let mut chunks = vec![Ok(text[..half].to_string())];
        if ending == Ending::Cut {
            chunks.push(Err(std::io::Error::other(
                "the fake server cuts the response",
            )));
        }
        return Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(paced(chunks))
            .unwrap_or_else(|e| panic!("fake server: build a cut response: {e}"));
    }
    (StatusCode::OK, [("content-type", "application/json")], text).into_response()
}

/// The body of a `chat.completion`.
fn completion_body(answer: &Answer, request: &Recorded) -> Value {
    let tool_calls: Vec<Value> = answer
        .tool_calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
        })
        .collect();
    let mut message = json!({"role": "assistant", "content": answer.content, "refusal": null});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    let mut body = json!({
        "id": COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": request.model(),
        "system_fingerprint": "fp_fake",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": answer.finish_reason()
        }],
    });
    if let Some(usage) = answer.usage_json() {
        body["usage"] = usage;
    }
    body
}

/// The SSE events of a streamed answer, each `data: ...\n\n`; an `Err` cuts the connection.
fn stream_events(
    answer: &Answer,
    request: &Recorded,
    ending: Ending,
) -> Vec<Result<String, std::io::Error>> {
    let with_usage = request.wants_stream_usage() && answer.usage.is_some();
    let model = request.model().to_string();
    let chunk = |delta: Value, finish_reason: Value| -> String {
        let mut c = json!({
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if with_usage {
            c["usage"] = Value::Null;
        }
        sse(&c)
    };

    let mut events = Vec::new();
    match &answer.content {
        Some(content) if answer.tool_calls.is_empty() => {
            events.push(chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null,
            ));
            for piece in pieces(content, 3) {
                events.push(chunk(json!({"content": piece}), Value::Null));
            }
        }
        _ => {
            for (index, (id, name, arguments)) in answer.tool_calls.iter().enumerate() {
                let mut opening = json!({"tool_calls": [{
                    "index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": ""}
                }]});
                if index == 0 {
                    opening["role"] = json!("assistant");
                    opening["content"] = Value::Null;
                    opening["refusal"] = Value::Null;
                }
                events.push(chunk(opening, Value::Null));
                for piece in pieces(arguments, 3) {
                    events.push(chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        Value::Null,
                    ));
                }
            }
        }
    }

    let mut out: Vec<Result<String, std::io::Error>> = Vec::new();
    match ending {
        Ending::Cut => {
            // The role and two content deltas, then the connection drops.
            out.extend(events.into_iter().take(3).map(Ok));
            out.push(Err(std::io::Error::other(
                "the fake server cuts the stream",
            )));
            return out;
        }
        Ending::Early => {
            // The role and two content deltas, then the body simply ends: no finish_reason,
            // no usage, no [DONE].
            out.extend(events.into_iter().take(3).map(Ok));
            return out;
        }
        Ending::Complete | Ending::Linger => {}
    }
    out.extend(events.into_iter().map(Ok));
    out.push(Ok(chunk(json!({}), json!(answer.finish_reason()))));
    if with_usage && let Some(usage) = answer.usage_json() {
        out.push(Ok(sse(&json!({
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": usage,
        }))));
    }
    out.push(Ok("data: [DONE]\n\n".to_string()));
    out
}

/// A body sent piece by piece, [`CHUNK_GAP`] apart; an `Err` piece drops the connection.
fn paced(pieces: Vec<Result<String, std::io::Error>>) -> Body {
    let stream = futures::stream::unfold(
        (pieces.into_iter(), true),
        |(mut pieces, first)| async move {
            if !first {
                tokio::time::sleep(CHUNK_GAP).await;
            }
            let piece = pieces.next()?.map(Bytes::from);
            Some((piece, (pieces, false)))
        },
    );
    Body::from_stream(stream)
}

fn sse(v: &Value) -> String {
    format!("data: {v}\n\n")
}

/// `text` in up to `n` non-empty pieces of about equal length (on char boundaries); concatenated
/// they are `text` again.
pub fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// A URL on which nothing listens: connections are refused.
#[allow(dead_code)]
pub fn refused_url() -> String {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind a throwaway port");
    let port = listener.local_addr().expect("throwaway address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}
