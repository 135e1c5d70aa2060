//! The two ingest routes: read the body (bounded, gunzipped), parse it, store it in one
//! transaction. A payload that does not parse is refused whole with 400 and a reason; a body
//! over the limit (before or after decompression) gets 413; nothing is stored in either case.

use std::io::Read;
use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde_json::json;

use super::{App, Shared, error, with_store};
use crate::ingest::{self, Ingest, IngestError};

/// `POST /v1/traces/ingest`: what the OpenAI Agents SDK sends to its traces dashboard.
pub async fn openai(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !matches!(
        media_type(&headers).as_deref(),
        Some("application/json") | None
    ) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the Agents SDK ingest route takes Content-Type: application/json",
        );
    }
    let body = match read_body(&app, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    match ingest::openai::parse(&body) {
        Ok(parsed) => match store(&app, parsed, "agents-sdk", peer).await {
            Ok((traces, spans)) => (
                StatusCode::OK,
                axum::Json(json!({ "traces": traces, "spans": spans })),
            )
                .into_response(),
            Err(response) => response,
        },
        Err(e) => bad_request(&e),
    }
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
    let body = match read_body(&app, &headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let parsed = if protobuf {
        ingest::otlp::parse_protobuf(&body)
    } else {
        ingest::otlp::parse_json(&body)
    };
    match parsed {
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
    }
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

/// The body, decompressed, at most `max_body` bytes either way.
async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let limit = app.options.max_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let raw = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("" | "identity") => Ok(raw),
        Some("gzip" | "x-gzip") => {
            let mut out = Vec::new();
            let decoder = flate2::read::GzDecoder::new(&raw[..]);
            match decoder.take(limit as u64 + 1).read_to_end(&mut out) {
                Ok(n) if n > limit => Err(too_large(limit)),
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not valid gzip: {e}"),
                )),
            }
        }
        Some(other) => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {other:?}: send gzip or nothing"),
        )),
    }
}

/// Writes a parsed payload; returns how many traces and spans it touched.
async fn store(
    app: &App,
    parsed: Ingest,
    source: &'static str,
    peer: SocketAddr,
) -> Result<(usize, usize), Response> {
    let summary = with_store(app, move |store| store.ingest(&parsed)).await?;
    if app.options.log {
        eprintln!(
            "ingest ({source}, from {peer}): {} span(s) in {} trace(s)",
            summary.spans,
            summary.traces.len()
        );
    }
    Ok((summary.traces.len(), summary.spans))
}
