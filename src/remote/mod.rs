//! Runners that push: `run` and `eval` with `AGENTRACE_REMOTE` record through an `agentrace
//! serve` over HTTP instead of into a store of their own, so that a CI job needs no database
//! and loses nothing when its disk goes away.
//!
//! What goes over the wire is what `serve` already ingests: agentrace's own OTLP export
//! (protobuf, gzip) to `/v1/traces`, whose root span carries one more attribute, the run's own
//! trace row (`trace::ingest::TRACE_ROW_ATTRIBUTE`), so that the trace reads back on the server
//! exactly as a local run's would. Experiments (`eval`) go as JSON to `/v1/experiments`. Both
//! are idempotent on the server (spans by id, experiments by id, runs by case and attempt), so a
//! record sent twice is stored once.
//!
//! - [`sink`]: the [`crate::trace::Sink`] a run records into: batches by size and time, sends
//!   on a thread of its own while the run goes on, and spools what it cannot send.
//! - [`spool`]: the local file (private, one JSON record a line) that keeps what could not be
//!   sent, in order, until the next run or `agentrace push` sends it.
//! - [`send`]: one record to the server, and what its answer means (sent, server down, token
//!   refused, record refused).

pub mod send;
pub mod sink;
pub mod spool;

use std::path::PathBuf;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::{Deserialize, Serialize};

use crate::export::otlp::push::display_url;
use crate::trace::redact;

pub use sink::RemoteSink;
pub use spool::Spool;

/// How long one request may take before the server counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where a runner pushes to: the server's base URL, its token, and the local spool.
#[derive(Clone)]
pub struct Remote {
    base: String,
    token: Option<String>,
    pub spool: Spool,
    pub timeout: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Remote")
            .field("url", &self.display_url())
            .field("token", &self.token.is_some())
            .field("spool", &self.spool.path())
            .finish()
    }
}

impl Remote {
    /// Checks `url` (an `http://` or `https://` base URL of `agentrace serve`) and `token` (a
    /// valid header value). The token and any credential in the URL are registered as secrets:
    /// no message, span or spool line ever shows them.
    pub fn new(url: &str, token: Option<&str>, spool: PathBuf) -> Result<Remote, String> {
        let base = url.trim().trim_end_matches('/').to_string();
        redact::register_url(&base);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "the remote {} is not an http:// or https:// URL of `agentrace serve`",
                display_url(&base)
            ));
        }
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        if let Some(token) = token {
            redact::register(token);
            if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                return Err(
                    "AGENTRACE_TOKEN is not a valid HTTP header value (a line break?)".into(),
                );
            }
        }
        Ok(Remote {
            base,
            token: token.map(str::to_string),
            spool: Spool::new(spool),
            timeout: TIMEOUT,
        })
    }

    /// Whether a token is sent.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The server's URL for messages (no user info, no query).
    pub fn display_url(&self) -> String {
        display_url(&self.base)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn headers(&self) -> Vec<(String, String)> {
        self.token
            .iter()
            .map(|t| ("authorization".to_string(), format!("Bearer {t}")))
            .collect()
    }
}

/// One thing to send: spans (with their traces' rows) or an experiment. The spool keeps these,
/// one a line, as JSON (the OTLP JSON encoding for spans).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    Traces(ExportTraceServiceRequest),
    /// The body of `POST /v1/experiments`: `{"experiment": {...}, "runs": [...]}`.
    Experiment(serde_json::Value),
}

impl Record {
    /// How many spans it carries (an experiment: none).
    pub fn spans(&self) -> usize {
        match self {
            Record::Traces(request) => request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum(),
            Record::Experiment(_) => 0,
        }
    }
}
