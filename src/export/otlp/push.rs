//! OTLP/HTTP push: where to, how (protobuf or JSON, gzip), with which headers, and the retries.
//!
//! Configuration follows the OpenTelemetry exporter variables; the traces-specific variable wins
//! over the general one. Header values are secrets as often as not (API keys): they go on the
//! wire and nowhere else — not in the store, not in any message.

use std::io::Write;
use std::sync::Once;
use std::time::Duration;

use prost::Message;

use crate::trace::TraceDoc;
use crate::trace::redact;

/// Attempts per request (the first and two retries).
pub const ATTEMPTS: u32 = 3;
const DEFAULT_TIMEOUT_MS: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Protobuf,
    Json,
}

#[derive(Clone)]
pub struct PushConfig {
    /// The full URL requests go to (`…/v1/traces`).
    pub url: String,
    pub protocol: Protocol,
    pub headers: Vec<(String, String)>,
    pub gzip: bool,
    pub timeout: Duration,
    pub service_name: String,
    pub resource_attributes: Vec<(String, String)>,
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header names only: the values are often credentials.
        f.debug_struct("PushConfig")
            .field("url", &display_url(&self.url))
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The traces-specific variable, else the general one.
fn signal_var(suffix: &str) -> Option<String> {
    var(&format!("OTEL_EXPORTER_OTLP_TRACES_{suffix}"))
        .or_else(|| var(&format!("OTEL_EXPORTER_OTLP_{suffix}")))
}

/// `base` + `/v1/traces` (unless it already ends so).
pub fn traces_url(base: &str) -> String {
    let base = base.trim().trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// A URL fit for messages: without user info (`user:pass@`) or query.
pub fn display_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// `k=v,k2=v2` with percent-encoded values (OTEL_EXPORTER_OTLP_HEADERS,
/// OTEL_RESOURCE_ATTRIBUTES). A member without `=` is an error naming the variable, never the
/// value.
pub fn parse_pairs(var: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, member) in text.split(',').enumerate() {
        let member = member.trim();
        if member.is_empty() {
            continue;
        }
        let Some((k, v)) = member.split_once('=') else {
            return Err(format!("{var}: entry {} is not KEY=VALUE", i + 1));
        };
        let key = k.trim();
        if key.is_empty() {
            return Err(format!("{var}: entry {} has an empty key", i + 1));
        }
        let value = percent_encoding::percent_decode_str(v.trim())
            .decode_utf8()
            .map_err(|_| format!("{var}: the value of `{key}` is not UTF-8 once decoded"))?
            .into_owned();
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn headers_from_env() -> Result<Vec<(String, String)>, String> {
    let mut headers = match var("OTEL_EXPORTER_OTLP_HEADERS") {
        Some(h) => parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", &h)?,
        None => Vec::new(),
    };
    if let Some(h) = var("OTEL_EXPORTER_OTLP_TRACES_HEADERS") {
        for (k, v) in parse_pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS", &h)? {
            headers.retain(|(old, _)| !old.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
    }
    for (k, v) in &headers {
        reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("OTLP header name `{k}` is not a valid HTTP header name"))?;
        reqwest::header::HeaderValue::from_str(v).map_err(|_| {
            format!("the value of OTLP header `{k}` is not a valid HTTP header value")
        })?;
    }
    Ok(headers)
}

impl PushConfig {
    /// The configuration for `export --otlp`: `endpoint` (a base URL) wins over the variables.
    pub fn from_env(endpoint: Option<&str>) -> Result<PushConfig, String> {
        let url = match endpoint {
            Some(base) => traces_url(base),
            None => match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                Some(url) => url,
                None => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                    Some(base) => traces_url(&base),
                    None => {
                        return Err("no OTLP endpoint: pass --endpoint URL or set \
                                    OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318)"
                            .into());
                    }
                },
            },
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "the OTLP endpoint {} is not an http:// or https:// URL",
                display_url(&url)
            ));
        }
        let protocol = match signal_var("PROTOCOL").as_deref() {
            None | Some("http/protobuf") => Protocol::Protobuf,
            Some("http/json") => Protocol::Json,
            Some(other) => {
                return Err(format!(
                    "OTLP protocol `{other}` is not supported: use http/protobuf or http/json"
                ));
            }
        };
        let gzip = match signal_var("COMPRESSION").as_deref() {
            None | Some("gzip") => true,
            Some("none") => false,
            Some(other) => {
                return Err(format!(
                    "OTLP compression `{other}` is not supported: use gzip or none"
                ));
            }
        };
        let timeout = match signal_var("TIMEOUT") {
            None => DEFAULT_TIMEOUT_MS,
            Some(ms) => ms.parse::<u64>().ok().filter(|&ms| ms > 0).ok_or_else(|| {
                format!("OTEL_EXPORTER_OTLP_TIMEOUT `{ms}` is not a number of milliseconds")
            })?,
        };
        let resource_attributes = match var("OTEL_RESOURCE_ATTRIBUTES") {
            Some(text) => parse_pairs("OTEL_RESOURCE_ATTRIBUTES", &text)?,
            None => Vec::new(),
        };
        let headers = headers_from_env()?;
        // Header values are credentials as often as not, and the URL may carry one: whatever a
        // collector echoes back of them never reaches a message.
        for (_, value) in &headers {
            redact::register(value);
            if let Some((_, token)) = value.split_once(' ') {
                redact::register(token);
            }
        }
        redact::register_url(&url);
        Ok(PushConfig {
            url,
            protocol,
            headers,
            gzip,
            timeout: Duration::from_millis(timeout),
            service_name: super::service_name(),
            resource_attributes,
        })
    }

    /// The configuration for the export at the end of `run`: only when an endpoint variable is
    /// set (`None` otherwise).
    pub fn auto_from_env() -> Option<Result<PushConfig, String>> {
        (var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some())
        .then(|| PushConfig::from_env(None))
    }

    /// The URL for messages.
    pub fn display_url(&self) -> String {
        display_url(&self.url)
    }
}

/// What the receiver said about a delivered request.
#[derive(Debug, Default)]
pub struct Delivered {
    pub spans: usize,
    /// From a partial success: spans the receiver rejected, and why.
    pub rejected_spans: i64,
    pub message: String,
}

impl Delivered {
    /// What to warn about after a partial success: how many spans the receiver rejected, and
    /// its reason (with anything that looks like a key taken out).
    pub fn rejection(&self, config: &PushConfig) -> Option<String> {
        (self.rejected_spans > 0).then(|| {
            format!(
                "{} rejected {} of {} spans: {}",
                config.display_url(),
                self.rejected_spans,
                self.spans,
                redact::redact(&self.message)
            )
        })
    }
}

/// The request body for `docs`, encoded (and compressed) as configured.
pub fn body(docs: &[TraceDoc], config: &PushConfig) -> Result<Vec<u8>, String> {
    let resource = super::map::resource(&config.service_name, &config.resource_attributes);
    let request = super::map::request(docs, resource);
    let raw = match config.protocol {
        Protocol::Protobuf => request.encode_to_vec(),
        Protocol::Json => serde_json::to_vec(&request).map_err(|e| e.to_string())?,
    };
    if !config.gzip {
        return Ok(raw);
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&raw).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

static CRYPTO: Once = Once::new();

/// rustls needs a process-wide crypto provider before the first TLS client is built (the
/// OpenAI client installs the same one; whichever comes first wins, and that is fine).
fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

fn retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::BAD_GATEWAY
        || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
        || status == reqwest::StatusCode::GATEWAY_TIMEOUT
        || status.is_server_error()
}

/// The wait before attempt `n + 1`: a `Retry-After` in seconds (at most 5 s), else 250 ms
/// doubling.
fn backoff(attempt: u32, retry_after: Option<&reqwest::header::HeaderValue>) -> Duration {
    if let Some(secs) = retry_after
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Duration::from_secs(secs.min(5));
    }
    Duration::from_millis(250 << attempt.min(6))
}

/// A short text of what the receiver answered (its body may be a status message).
fn describe_body(bytes: &[u8], protocol: Protocol) -> String {
    if protocol == Protocol::Protobuf
        && let Ok(status) = GoogleRpcStatus::decode(bytes)
        && !status.message.is_empty()
    {
        return status.message;
    }
    crate::trace::bound::truncate(String::from_utf8_lossy(bytes).trim(), 300)
}

/// `google.rpc.Status`, which OTLP receivers send with failures.
#[derive(Clone, PartialEq, prost::Message)]
struct GoogleRpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn partial_success(bytes: &[u8], protocol: Protocol) -> (i64, String) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    let response = match protocol {
        Protocol::Protobuf => ExportTraceServiceResponse::decode(bytes).ok(),
        Protocol::Json => serde_json::from_slice::<ExportTraceServiceResponse>(bytes).ok(),
    };
    response
        .and_then(|r| r.partial_success)
        .map(|p| (p.rejected_spans, p.error_message))
        .unwrap_or_default()
}

/// Sends `docs` in one request, retrying 429, 5xx and connection failures.
pub async fn push(docs: &[TraceDoc], config: &PushConfig) -> Result<Delivered, String> {
    let body = body(docs, config)?;
    let spans = docs.iter().map(|d| d.spans.len() + 1).sum();
    let client = client(config.timeout)?;
    let content_type = match config.protocol {
        Protocol::Protobuf => "application/x-protobuf",
        Protocol::Json => "application/json",
    };
    let bytes = send(
        &client,
        &Request {
            url: &config.url,
            content_type,
            protocol: config.protocol,
            body: &body,
            gzip: config.gzip,
            headers: &config.headers,
            timeout: config.timeout,
        },
    )
    .await
    .map_err(|r| r.message)?;
    let (rejected_spans, message) = partial_success(&bytes, config.protocol);
    Ok(Delivered {
        spans,
        rejected_spans,
        message,
    })
}

/// The HTTP client of an export: the timeout, agentrace's user agent, rustls.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    client_with(reqwest::Client::builder().timeout(timeout))
}

/// [`client`] from a builder with settings of the caller's (a connect timeout).
pub(crate) fn client_with(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    builder
        .user_agent(concat!("agentrace/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", crate::causes::chain(&e)))
}

/// One POST of an export.
pub(crate) struct Request<'a> {
    pub url: &'a str,
    pub content_type: &'a str,
    /// How the receiver's answers are encoded (a failure's message is read from them).
    pub protocol: Protocol,
    pub body: &'a [u8],
    /// The body is gzip-compressed already.
    pub gzip: bool,
    pub headers: &'a [(String, String)],
    pub timeout: Duration,
}

/// Why a request got no successful answer: the HTTP status when the receiver answered, and a
/// message (the receiver's own when it gave one; never a header or the URL's user).
#[derive(Debug)]
pub(crate) struct Refused {
    pub status: Option<u16>,
    pub message: String,
}

/// Posts `request`, retrying 429, 5xx and connection failures: the answer's body, or why there
/// was none.
pub(crate) async fn send(
    client: &reqwest::Client,
    request: &Request<'_>,
) -> Result<Vec<u8>, Refused> {
    let mut last_error = String::new();
    let mut last_status = None;
    for attempt in 0..ATTEMPTS {
        let mut req = client
            .post(request.url)
            .header(reqwest::header::CONTENT_TYPE, request.content_type)
            .body(request.body.to_vec());
        if request.gzip {
            req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
        }
        for (k, v) in request.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let wait = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).cloned();
                let bytes = resp.bytes().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(bytes.to_vec());
                }
                let detail = describe_body(&bytes, request.protocol);
                last_status = Some(status.as_u16());
                last_error = if detail.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {detail}")
                };
                if !retryable(status) {
                    return Err(Refused {
                        status: last_status,
                        message: last_error,
                    });
                }
                backoff(attempt, retry_after.as_ref())
            }
            Err(e) => {
                last_status = None;
                // reqwest's message carries the URL; say it without user info.
                let e = e.without_url();
                last_error = if e.is_timeout() {
                    format!("no answer within {} ms", request.timeout.as_millis())
                } else {
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text.push_str(": ");
                        text.push_str(&s.to_string());
                        source = s.source();
                    }
                    text
                };
                backoff(attempt, None)
            }
        };
        if attempt + 1 < ATTEMPTS {
            tokio::time::sleep(wait).await;
        }
    }
    Err(Refused {
        status: last_status,
        message: format!("{last_error} (after {ATTEMPTS} attempts)"),
    })
}

/// [`push`] from synchronous code: one request per trace, on a runtime of its own. Stops at the
/// first trace that cannot be delivered.
pub fn push_blocking(docs: &[TraceDoc], config: &PushConfig) -> Result<Delivered, String> {
    runtime()?.block_on(push_each(docs, config))
}

/// One request per trace, in order; stops at the first that cannot be delivered.
pub(crate) async fn push_each(docs: &[TraceDoc], config: &PushConfig) -> Result<Delivered, String> {
    let mut total = Delivered::default();
    for doc in docs {
        let d = push(std::slice::from_ref(doc), config).await?;
        total.spans += d.spans;
        total.rejected_spans += d.rejected_spans;
        if total.message.is_empty() {
            total.message = d.message;
        }
    }
    Ok(total)
}

/// The runtime a synchronous caller runs a push on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receivers_text_body_is_trimmed_and_cut_like_every_other_text() {
        let long = format!("  {}\n", "é".repeat(1000));
        let said = describe_body(long.as_bytes(), Protocol::Json);
        assert_eq!(said.chars().count(), 300, "{said}");
        assert!(said.starts_with('é') && said.ends_with('…'), "{said}");
        assert_eq!(describe_body(b" busy\n", Protocol::Json), "busy");
    }

    #[test]
    fn urls() {
        assert_eq!(traces_url("http://h:4318"), "http://h:4318/v1/traces");
        assert_eq!(traces_url("http://h:4318/"), "http://h:4318/v1/traces");
        assert_eq!(traces_url("http://h/otel"), "http://h/otel/v1/traces");
        assert_eq!(traces_url("http://h/v1/traces"), "http://h/v1/traces");
        assert_eq!(
            display_url("https://user:secret@h:1/v1/traces?token=x"),
            "https://h:1/v1/traces"
        );
    }

    #[test]
    fn pairs_are_percent_decoded_and_errors_hide_values() {
        let pairs = parse_pairs("V", "api-key=a%20b%3Dc, x = y ,").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("api-key".to_string(), "a b=c".to_string()),
                ("x".to_string(), "y".to_string())
            ]
        );
        let err = parse_pairs("V", "ok=1,sk-SECRET").unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn backoff_doubles_and_honours_retry_after() {
        assert_eq!(backoff(0, None), Duration::from_millis(250));
        assert_eq!(backoff(1, None), Duration::from_millis(500));
        let h = reqwest::header::HeaderValue::from_static("2");
        assert_eq!(backoff(0, Some(&h)), Duration::from_secs(2));
        let h = reqwest::header::HeaderValue::from_static("3600");
        assert_eq!(backoff(0, Some(&h)), Duration::from_secs(5));
    }

    #[test]
    fn debug_output_has_no_header_values() {
        let config = PushConfig {
            url: "http://u:p@h/v1/traces".into(),
            protocol: Protocol::Protobuf,
            headers: vec![("authorization".into(), "Bearer SECRET".into())],
            gzip: true,
            timeout: Duration::from_secs(1),
            service_name: "s".into(),
            resource_attributes: Vec::new(),
        };
        let text = format!("{config:?}");
        assert!(!text.contains("SECRET") && !text.contains("u:p"), "{text}");
    }

    #[test]
    fn a_partial_success_warns_with_the_counts_and_no_key_or_credentials() {
        let config = PushConfig {
            url: "http://u:p@h/v1/traces".into(),
            protocol: Protocol::Protobuf,
            headers: Vec::new(),
            gzip: false,
            timeout: Duration::from_secs(1),
            service_name: "s".into(),
            resource_attributes: Vec::new(),
        };
        let mut delivered = Delivered {
            spans: 7,
            rejected_spans: 0,
            message: String::new(),
        };
        assert_eq!(delivered.rejection(&config), None);
        delivered.rejected_spans = 2;
        redact::register("push-test-key-abcdefghijklmnop");
        delivered.message = "bad key push-test-key-abcdefghijklmnop".into();
        let warning = delivered.rejection(&config).unwrap();
        assert!(
            warning == "http://h/v1/traces rejected 2 of 7 spans: bad key [REDACTED]",
            "{warning}"
        );
    }
}
