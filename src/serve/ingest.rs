//! The two ingest routes: read the body (bounded, gunzipped), parse it, hand it to the
//! process's one writer ([`super::queue`]), which commits it with whatever else arrived
//! meanwhile in one transaction, and answer once it is committed. A payload that does not parse, or whose times no clock gives, is refused whole
//! with 400 and a reason; a body over the limit (before or after decompression) gets 413;
//! nothing is stored in either case. Names, metadata and attribute strings over their limits are
//! cut with a marker ([`Ingest::bound`]).
//!
//! Memory: each request holds permits of one shared semaphore for every byte of body it holds,
//! as received and decompressed, taken as the bytes arrive and given back when the request is
//! done. A request that finds the budget spent is answered 503 with `Retry-After` at once (OTLP
//! exporters and the Agents SDK retry), so that 16 senders of 30 MB bodies cannot make the
//! server hold 16 of them and their parsed forms at once. The writer's queue is bounded too: a
//! request that finds it full is answered the same 503.

use std::io::Read;
use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use prost::Message;
use serde_json::json;
use tokio::sync::Semaphore;

use super::queue::Refused;
use super::{App, Shared, error, store_error, with_store};
use crate::ingest::{self, Ingest, IngestError};
use crate::store::experiment::ExperimentPush;
use crate::trace::Timestamp;

/// `POST /v1/traces/ingest`: what the OpenAI Agents SDK sends to its traces dashboard.
pub async fn openai(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = json_only(&headers, "the Agents SDK ingest route") {
        return refused;
    }
    let (body, held) = match read_body(&app, &headers, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let parsed = ingest::openai::parse(&body).and_then(checked);
    drop(body);
    let answer = match parsed {
        Ok(parsed) => match store(&app, parsed, "agents-sdk", peer).await {
            Ok((traces, spans)) => (
                StatusCode::OK,
                axum::Json(json!({ "traces": traces, "spans": spans })),
            )
                .into_response(),
            Err(response) => response,
        },
        Err(e) => bad_request(&e),
    };
    drop(held);
    answer
}

/// `POST /v1/traces`: OTLP/HTTP. The answer is an (empty) `ExportTraceServiceResponse` in the
/// request's encoding, as exporters expect.
pub async fn otlp(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let protobuf = match media_type(&headers).as_deref() {
        Some("application/x-protobuf" | "application/protobuf") => true,
        Some("application/json") => false,
        other => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "OTLP/HTTP takes Content-Type: application/x-protobuf or application/json, \
                     not {}",
                    other.unwrap_or("none")
                ),
            );
        }
    };
    let (body, held) = match read_body(&app, &headers, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let parsed = if protobuf {
        ingest::otlp::parse_protobuf(&body)
    } else {
        ingest::otlp::parse_json(&body)
    }
    .and_then(checked);
    drop(body);
    let answer = match parsed {
        Ok(parsed) => match store(&app, parsed, "otlp", peer).await {
            Ok(_) if protobuf => {
                let answer =
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse {
                        partial_success: None,
                    };
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/x-protobuf")],
                    answer.encode_to_vec(),
                )
                    .into_response()
            }
            Ok(_) => (StatusCode::OK, axum::Json(json!({}))).into_response(),
            Err(response) => response,
        },
        Err(e) => bad_request(&e),
    };
    drop(held);
    answer
}

/// `POST /v1/experiments`: an experiment that a pushing `eval` (`AGENTRACE_REMOTE`) ran, as
/// JSON ([`ExperimentPush`]): its row and the runs recorded so far, stored idempotently (see
/// `Store::ingest_experiment`). The traces of its runs come over OTLP like any run's.
pub async fn experiments(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = json_only(&headers, "the experiments route") {
        return refused;
    }
    let (body, held) = match read_body(&app, &headers, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let parsed = serde_json::from_slice::<ExperimentPush>(&body)
        .map_err(|e| e.to_string())
        .and_then(|mut push| push.check().map(|cut| (push, cut)));
    drop(body);
    let answer = match parsed {
        Ok((push, cut)) => {
            let (id, runs) = (push.experiment.id.clone(), push.runs.len());
            match with_store(&app, move |store| {
                store.ingest_experiment(&push.experiment, &push.runs)
            })
            .await
            {
                Ok(()) => {
                    if app.options.log {
                        eprintln!(
                            "ingest (experiment, from {peer}): {id} with {runs} run(s){}",
                            if cut > 0 {
                                format!(", {cut} over-long field(s) cut")
                            } else {
                                String::new()
                            }
                        );
                    }
                    (
                        StatusCode::OK,
                        axum::Json(json!({ "experiment": id, "runs": runs })),
                    )
                        .into_response()
                }
                Err(response) => response,
            }
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("not an experiment push: {e}"),
        ),
    };
    drop(held);
    answer
}

/// 415 unless the body says it is JSON. Required, not defaulted: a body without a Content-Type
/// is what a web page may send to any address without a CORS preflight
/// (`fetch(url, {mode: 'no-cors', body})`).
fn json_only(headers: &HeaderMap, route: &str) -> Option<Response> {
    match media_type(headers).as_deref() {
        Some("application/json") => None,
        other => Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{route} takes Content-Type: application/json, not {}",
                other.unwrap_or("none")
            ),
        )),
    }
}

/// A parsed payload with its times checked and its long fields cut.
fn checked(mut parsed: Ingest) -> Result<(Ingest, usize), IngestError> {
    parsed.check_times(Timestamp::now())?;
    let cut = parsed.bound();
    Ok((parsed, cut))
}

fn bad_request(e: &IngestError) -> Response {
    error(StatusCode::BAD_REQUEST, e.to_string())
}

/// `application/json; charset=utf-8` → `application/json`.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than the limit of {limit} bytes (serve --max-body-mb)"),
    )
}

/// 503 with `Retry-After: 1`: OTLP exporters and the Agents SDK retry.
fn busy(message: String) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Permits of the ingest budget held by one request, one per byte; given back when dropped.
struct Held<'a> {
    budget: &'a Semaphore,
    total: usize,
    bytes: usize,
}

impl<'a> Held<'a> {
    fn new(budget: &'a Semaphore, total: usize) -> Self {
        Held {
            budget,
            total,
            bytes: 0,
        }
    }

    /// Takes `n` more bytes' worth, without waiting: 503 when other requests hold the rest, 413
    /// when this request alone needs more than the whole budget.
    fn take(&mut self, n: usize) -> Result<(), Box<Response>> {
        if n == 0 {
            return Ok(());
        }
        if self.bytes + n > self.total {
            return Err(Box::new(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request needs more than the ingest budget of {} bytes for its body as \
                     sent and decompressed (serve --max-ingest-mb)",
                    self.total
                ),
            )));
        }
        let acquired = u32::try_from(n)
            .ok()
            .and_then(|n| self.budget.try_acquire_many(n).ok());
        let Some(permit) = acquired else {
            return Err(Box::new(busy(format!(
                "busy: other ingest requests hold the budget of {} bytes of bodies at once \
                 (serve --max-ingest-mb); retry shortly",
                self.total
            ))));
        };
        permit.forget();
        self.bytes += n;
        Ok(())
    }

    /// Returns `n` bytes' worth that this request no longer holds.
    fn give_back(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        self.budget.add_permits(n);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.add_permits(self.bytes);
    }
}

/// How much of a gzip body is inflated between two takes from the budget.
const INFLATE_STEP: usize = 64 * 1024;

/// The body, decompressed, at most `max_body` bytes either way, with the budget it holds.
async fn read_body<'a>(
    app: &'a App,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Held<'a>), Response> {
    let limit = app.options.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => {
            return Err(error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}: send gzip or nothing"),
            ));
        }
    };
    let mut held = Held::new(&app.ingest_budget, app.options.max_ingest);
    // Bytes are taken from the budget as they arrive, not as declared: a sender that stalls
    // holds only what it sent. (Reserved capacity is not resident until written.)
    let mut raw = Vec::with_capacity(declared.map_or(0, |n| usize::try_from(n).unwrap_or(0)));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            )
        })?;
        let len = raw.len() + chunk.len();
        if len > limit {
            return Err(too_large(limit));
        }
        held.take(len.saturating_sub(held.bytes)).map_err(|r| *r)?;
        raw.extend_from_slice(&chunk);
    }
    if !gzip {
        return Ok((Bytes::from(raw), held));
    }
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(&raw[..]);
    let mut buf = vec![0u8; INFLATE_STEP];
    loop {
        let n = decoder.read(&mut buf).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid gzip: {e}"),
            )
        })?;
        if n == 0 {
            break;
        }
        if out.len() + n > limit {
            return Err(too_large(limit));
        }
        held.take(n).map_err(|r| *r)?;
        out.extend_from_slice(&buf[..n]);
    }
    let sent = raw.len();
    drop(raw);
    held.give_back(sent);
    Ok((Bytes::from(out), held))
}

/// Writes a parsed payload; returns how many traces and spans it touched.
async fn store(
    app: &Shared,
    (parsed, cut): (Ingest, usize),
    source: &'static str,
    peer: SocketAddr,
) -> Result<(usize, usize), Response> {
    let summary = app.writer.ingest(parsed).await.map_err(|e| match e {
        Refused::Full => busy("the ingest queue is full; retry shortly".to_string()),
        Refused::Stopped => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the ingest writer stopped; the server's log says why",
        ),
        Refused::Store(e) => store_error(&e),
    })?;
    if app.options.log {
        eprintln!(
            "ingest ({source}, from {peer}): {} span(s) in {} trace(s){}",
            summary.spans,
            summary.traces.len(),
            if cut > 0 {
                format!(", {cut} over-long field(s) cut")
            } else {
                String::new()
            }
        );
    }
    Ok((summary.traces.len(), summary.spans))
}
