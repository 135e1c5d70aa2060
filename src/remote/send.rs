//! One record to the server, through the OTLP exporter's client (retries with backoff on 429,
//! 5xx and connection failures), and what the answer means for the record: the sink and
//! `agentrace push` decide from it whether to go on, keep the record, or stop.

use std::io::Write;

use prost::Message;

use super::{Record, Remote};
use crate::export::otlp::push::{self, Protocol, Request};

/// Why a record was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer, or a server error: the server is down (or the URL is wrong). Nothing after
    /// this record can be sent either.
    Unreachable(String),
    /// The server refused the token (401, 403): nothing can be sent until it is fixed.
    Token(String),
    /// The server refused this record (400, 413, …): the ones after it may still go.
    Refused(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Unreachable(m) | Failure::Token(m) | Failure::Refused(m) => m,
        }
    }

    /// Whether nothing more can be sent now.
    pub fn stops(&self) -> bool {
        !matches!(self, Failure::Refused(_))
    }
}

fn gzip(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(raw).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

/// How long a connection may take: a server that drops packets (a firewall) is found down in
/// seconds, not after the whole request timeout of every attempt.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The HTTP client for `remote`.
pub fn client(remote: &Remote) -> Result<reqwest::Client, String> {
    push::client_with(
        reqwest::Client::builder()
            .timeout(remote.timeout)
            .connect_timeout(CONNECT_TIMEOUT),
    )
}

/// Sends `record`: OTLP protobuf to `/v1/traces`, or JSON to `/v1/experiments`; gzip either way.
pub async fn send(
    client: &reqwest::Client,
    remote: &Remote,
    record: &Record,
) -> Result<(), Failure> {
    let (path, content_type, protocol, raw) = match record {
        Record::Traces(request) => (
            "/v1/traces",
            "application/x-protobuf",
            Protocol::Protobuf,
            request.encode_to_vec(),
        ),
        Record::Experiment(body) => (
            "/v1/experiments",
            "application/json",
            Protocol::Json,
            serde_json::to_vec(body).map_err(|e| Failure::Refused(e.to_string()))?,
        ),
    };
    let body = gzip(&raw).map_err(Failure::Refused)?;
    let url = remote.url(path);
    let headers = remote.headers();
    let answer = push::send(
        client,
        &Request {
            url: &url,
            content_type,
            protocol,
            body: &body,
            gzip: true,
            headers: &headers,
            timeout: remote.timeout,
        },
    )
    .await;
    match answer {
        Ok(_) => Ok(()),
        Err(refused) => Err(match refused.status {
            Some(401 | 403) => Failure::Token(refused.message),
            Some(400 | 413 | 415 | 422) => Failure::Refused(refused.message),
            _ => Failure::Unreachable(refused.message),
        }),
    }
}
