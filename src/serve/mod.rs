//! `agentrace serve`: one process that receives traces from other programs, serves the store as
//! a JSON API, and serves a browser UI over it.
//!
//! - `POST /v1/traces/ingest`: the OpenAI Agents SDK's trace export ([`crate::ingest::openai`]).
//! - `POST /v1/traces`: OTLP/HTTP, protobuf or JSON, gzip or not ([`crate::ingest::otlp`]).
//! - `GET /api/…`: the CLI's JSON shapes ([`api`]); `GET /api/events`: a server-sent event on
//!   every change to the store, whoever made it (a run in another process, an ingest).
//! - Everything else: the single-page UI, embedded in the binary ([`ui`]).
//!
//! Every request goes through [`auth`]: with a token, a bearer token (or the cookie the UI gets
//! from `/?token=…`) is required; without one, only loopback `Host`s are served, so a web page
//! elsewhere cannot read the store through DNS rebinding; and a write from another origin's page
//! is refused whatever the token. The store is SQLite: every reading handler
//! opens its own connection on the blocking pool, exactly like another `agentrace` process;
//! everything ingested goes through one writer thread per process ([`queue`]), which commits
//! what arrives while it writes in one transaction.

mod api;
mod auth;
mod ingest;
mod queue;
mod ui;
mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::query::{decode, pairs as query_pairs};
use crate::store::{Location, Store, StoreError};

/// How `serve` was asked to run.
#[derive(Clone, Debug)]
pub struct Options {
    pub store: Location,
    /// The bearer token every request must carry; required unless listening on loopback.
    pub token: Option<String>,
    /// The largest request body accepted, after decompression.
    pub max_body: usize,
    /// The most bytes of ingest bodies (as received plus decompressed) held at once across all
    /// requests; past it, 503 with `Retry-After`. At least `max_body`.
    pub max_ingest: usize,
    /// Print one line per ingest request on stderr.
    pub log: bool,
}

/// Shared by every handler.
struct App {
    options: Options,
    /// Permits for [`Options::max_ingest`] bytes (see [`ingest`]).
    ingest_budget: tokio::sync::Semaphore,
    /// The process's one ingest writer.
    writer: queue::IngestQueue,
    changes: tokio::sync::watch::Receiver<u64>,
    shutdown: CancellationToken,
    /// Idle connections to a PostgreSQL store, reused by the next request (connecting costs a
    /// few round trips, with TLS a few more). An SQLite store is opened per request: opening a
    /// file is cheap, and a request then always sees the file as it is now.
    idle: std::sync::Mutex<Vec<Store>>,
}

/// The most idle PostgreSQL connections a `serve` keeps.
const IDLE_CONNECTIONS: usize = 16;

type Shared = Arc<App>;

/// Serves on `listener` until `shutdown` is cancelled, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    options: Options,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let changes = watch::spawn(options.store.clone(), shutdown.clone());
    let writer = queue::IngestQueue::spawn(options.store.clone(), queue::CAPACITY)?;
    let app = Arc::new(App {
        writer,
        ingest_budget: tokio::sync::Semaphore::new(
            options.max_ingest.min(tokio::sync::Semaphore::MAX_PERMITS),
        ),
        options,
        changes,
        shutdown: shutdown.clone(),
        idle: std::sync::Mutex::default(),
    });
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/v1/traces/ingest", post(ingest::openai))
        .route("/v1/traces", post(ingest::otlp))
        .route("/v1/experiments", post(ingest::experiments))
        .route("/api/traces", get(api::traces))
        .route("/api/traces/{id}", get(api::trace))
        .route("/api/groups/{group}", get(api::group))
        .route("/api/diff", get(api::diff))
        .route("/api/experiments", get(api::experiments))
        .route("/api/experiments/{reference}", get(api::experiment))
        .route("/api/compare", get(api::compare))
        .route("/api/events", get(api::events))
        .route("/api/{*rest}", get(api::not_found))
        .route("/assets/{file}", get(ui::asset))
        .fallback(ui::page)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::check,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Headers on every response: the UI only runs its own script and talks to its own origin.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A JSON error body: `{"error": "..."}`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// The answer for a store error: the client's fault (unknown or ambiguous id) or ours. The body
/// never names the store's path (a client has no business knowing where it lives); what only
/// the operator can act on goes to serve's stderr in full and to the client as a generic line.
fn store_error(e: &StoreError) -> Response {
    let (status, message) = store_answer(e);
    if status.is_server_error() {
        eprintln!("agentrace serve: {e}");
    }
    error(status, message)
}

fn store_answer(e: &StoreError) -> (StatusCode, String) {
    match e {
        StoreError::NotFound { id, .. } => (
            StatusCode::NOT_FOUND,
            format!("no trace matches {id} in the store"),
        ),
        StoreError::NoExperiment { reference, .. } => (
            StatusCode::NOT_FOUND,
            format!("no experiment matches {reference} in the store"),
        ),
        StoreError::NoTraces { .. } | StoreError::Empty { .. } => {
            (StatusCode::NOT_FOUND, "no traces recorded yet".to_string())
        }
        StoreError::NoRuns { .. } => (
            StatusCode::NOT_FOUND,
            "no trace recorded by `run` yet: `last` never names an ingested trace, give its id"
                .to_string(),
        ),
        StoreError::BadId { .. } | StoreError::Ambiguous { .. } => {
            (StatusCode::BAD_REQUEST, e.to_string())
        }
        StoreError::Busy { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store stayed locked by another process for too long; try again".to_string(),
        ),
        StoreError::Unreachable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store's database cannot be reached just now; try again".to_string(),
        ),
        StoreError::DiskFull { .. } => (
            StatusCode::INSUFFICIENT_STORAGE,
            "cannot write to the store: the disk is full".to_string(),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store failed; the server's log says why".to_string(),
        ),
    }
}

/// Runs `f` with a connection to the store on the blocking pool. `serve` created and migrated
/// the store when it started, so a request only connects: no file creation, no chmod.
async fn with_store<T: Send + 'static>(
    app: &Shared,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    let shared = Arc::clone(app);
    match tokio::task::spawn_blocking(move || {
        let pooled = matches!(shared.options.store, Location::Postgres(_));
        let reused = if pooled {
            shared
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()
        } else {
            None
        };
        let store = match reused {
            Some(store) => store,
            None => Store::open_existing(&shared.options.store)?,
        };
        let result = f(&store);
        // A connection that failed may be broken: let it go.
        if pooled && result.is_ok() {
            let mut idle = shared
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(store);
            }
        }
        result
    })
    .await
    {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(store_error(&e)),
        Err(e) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the store task failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn store_errors_never_tell_a_client_where_the_store_is() {
        let path = PathBuf::from("/home/someone/secret/traces.db");
        let errors = [
            StoreError::NotFound {
                id: "trace_0193".into(),
                path: path.clone(),
            },
            StoreError::NoTraces { path: path.clone() },
            StoreError::NoExperiment {
                reference: "nightly".into(),
                path: path.clone(),
            },
            StoreError::NoRuns { path: path.clone() },
            StoreError::Empty { path: path.clone() },
            StoreError::BadId { id: "x".into() },
            StoreError::NotADatabase { path: path.clone() },
            StoreError::Corrupt {
                path: path.clone(),
                detail: format!("{} is damaged", path.display()),
            },
            StoreError::ReadOnly { path: path.clone() },
            StoreError::DiskFull { path: path.clone() },
            StoreError::Busy { path: path.clone() },
            StoreError::CannotOpen {
                path: path.clone(),
                detail: "unable to open".into(),
            },
            StoreError::Malformed {
                path: path.clone(),
                what: "trace",
                detail: "bad".into(),
            },
        ];
        for e in &errors {
            let (status, message) = store_answer(e);
            assert!(!message.contains("secret"), "{e:?}: {message}");
            assert!(!message.is_empty() && !message.ends_with('.'), "{message}");
            assert_ne!(status, StatusCode::OK);
        }
        let (status, message) = store_answer(&errors[0]);
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(message.contains("no trace matches trace_0193"), "{message}");
    }
}
