//! The secrets this process sends, and their removal from everything it writes.
//!
//! agentrace never records an API key on purpose, but a server may echo one back: in an error
//! body (`401 bad key: Bearer sk-…`), a header, a streamed answer, or a command step may print
//! one. Rather than chase every path a value can take, every key agentrace sends is registered
//! here the moment it is read (the model API key, secret-looking provider headers, secrets in a
//! base URL's query, export headers and keys), and everything that is written goes through
//! [`redact`]: span and trace fields at the recorder (so the store, the live progress, live
//! exports and everything read back later never see them), and every message on stderr.
//!
//! The registry is process-wide because a key, once sent, is a secret for everything this
//! process writes afterwards, whichever part of it writes.

use std::borrow::Cow;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use memchr::memmem;
use serde_json::{Map, Value};

use super::model::{ErrorInfo, Span, Trace};

/// What a secret is replaced with.
pub const MARKER: &str = "[REDACTED]";

/// Values shorter than this are not treated as secrets: local servers take placeholders such as
/// `EMPTY`, `ollama` or `unused` as keys, and replacing those in every output would garble it
/// while protecting nothing.
pub const MIN_SECRET_LEN: usize = 8;

static ANY: AtomicBool = AtomicBool::new(false);
static SECRETS: RwLock<Vec<Secret>> = RwLock::new(Vec::new());

/// A registered secret and its searcher, built once: every string a span carries is searched
/// for every secret, and `str::contains` set up its searcher anew for each of them.
struct Secret {
    text: String,
    finder: memmem::Finder<'static>,
}

impl Secret {
    fn new(text: String) -> Secret {
        let finder = memmem::Finder::new(text.as_bytes()).into_owned();
        Secret { text, finder }
    }

    fn is_in(&self, haystack: &str) -> bool {
        self.text.len() <= haystack.len() && self.finder.find(haystack.as_bytes()).is_some()
    }
}

/// Registers a value this process sends as a credential (and its percent-encoded and
/// -decoded forms, which is how it appears in a URL).
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut forms = vec![secret.to_string()];
    let encoded = percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    let decoded = percent_encoding::percent_decode_str(secret)
        .decode_utf8_lossy()
        .into_owned();
    forms.extend([encoded, decoded]);
    let mut secrets = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for form in forms {
        if form.chars().count() >= MIN_SECRET_LEN && !secrets.iter().any(|s| s.text == form) {
            secrets.push(Secret::new(form));
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
    ANY.store(true, Ordering::Release);
}

/// Registers the secrets in a URL: its password, and the values of query parameters whose
/// names say they are credentials (`api-key`, `key`, `token`, `sig`, …).
pub fn register_url(url: &str) {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            register(password);
        }
    }
    for (name, value) in query(url) {
        if secret_name(&name) {
            register(&value);
        }
    }
}

/// Whether a header or query parameter with this name carries a credential by convention.
pub fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "cookie",
        "sig",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// A URL's query parameters, undecoded.
fn query(url: &str) -> Vec<(String, String)> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    let query = query.split('#').next().unwrap_or("");
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A URL safe to print or record: no user name or password, and the values of credential
/// query parameters replaced by the marker.
pub fn url(url: &str) -> String {
    let stripped = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://{host}{}", &rest[end..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    let Some((base, query)) = stripped.split_once('?') else {
        return stripped;
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret_name(name) => format!("{name}={MARKER}"),
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{base}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `text` with every registered secret replaced by [`MARKER`].
pub fn redact(text: &str) -> Cow<'_, str> {
    // Most strings of a span (keys, roles, names, short values) are shorter than any secret.
    if !ANY.load(Ordering::Acquire) || text.len() < MIN_SECRET_LEN {
        return Cow::Borrowed(text);
    }
    Secrets(&SECRETS.read().unwrap_or_else(|p| p.into_inner())).text(text)
}

/// Redacts text that arrives in pieces (a streamed answer shown as it comes): a secret split
/// over two pieces is caught all the same, because the end of a piece that could begin a
/// secret is held back until the next piece says whether it does.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    held: String,
}

impl StreamRedactor {
    /// What of the text so far can be shown.
    pub fn push(&mut self, piece: &str) -> String {
        if !ANY.load(Ordering::Acquire) {
            return std::mem::take(&mut self.held) + piece;
        }
        self.held.push_str(piece);
        let text = redact(&self.held).into_owned();
        let keep = secret_prefix_at_end(&text);
        self.held = text[text.len() - keep..].to_string();
        text[..text.len() - keep].to_string()
    }

    /// The rest, once no more pieces come.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

/// The length of the longest end of `text` that is the beginning of a secret.
fn secret_prefix_at_end(text: &str) -> usize {
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut longest = 0;
    for secret in secrets.iter().map(|s| &s.text) {
        for k in (longest + 1..secret.len().min(text.len() + 1)).rev() {
            if secret.is_char_boundary(k) && text.ends_with(&secret[..k]) {
                longest = k;
                break;
            }
        }
    }
    longest
}

/// The registered secrets, read once for the many strings of a span or a trace.
struct Secrets<'a>(&'a [Secret]);

impl Secrets<'_> {
    /// `text` with every secret replaced by [`MARKER`].
    fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.0 {
            if secret.is_in(&out) {
                out = Cow::Owned(out.replace(secret.text.as_str(), MARKER));
            }
        }
        out
    }

    /// Redacts a string in place.
    fn string(&self, s: &mut String) {
        if let Cow::Owned(clean) = self.text(s) {
            *s = clean;
        }
    }

    fn value(&self, value: &mut Value) {
        match value {
            Value::String(s) => self.string(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => self.map(map),
            _ => {}
        }
    }

    fn map(&self, map: &mut Map<String, Value>) {
        if map.keys().any(|k| matches!(self.text(k), Cow::Owned(_))) {
            let old = std::mem::take(map);
            for (k, v) in old {
                map.insert(self.text(&k).into_owned(), v);
            }
        }
        map.values_mut().for_each(|v| self.value(v));
    }

    fn error(&self, error: &mut Option<ErrorInfo>) {
        if let Some(e) = error {
            self.string(&mut e.message);
            self.value(&mut e.data);
        }
    }
}

/// Runs `f` with the registered secrets, when there are any.
fn with_secrets(f: impl FnOnce(&Secrets<'_>)) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    let secrets = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    f(&Secrets(&secrets));
}

/// Redacts every string in a JSON value, object keys included.
pub fn redact_value(value: &mut Value) {
    with_secrets(|s| s.value(value));
}

pub fn redact_map(map: &mut Map<String, Value>) {
    with_secrets(|s| s.map(map));
}

/// Redacts everything a span carries as text.
pub fn redact_span(span: &mut Span) {
    with_secrets(|s| {
        s.string(&mut span.name);
        s.map(&mut span.attributes);
        for event in &mut span.events {
            s.string(&mut event.name);
            s.map(&mut event.attributes);
        }
        s.error(&mut span.error);
    });
}

/// Redacts everything a trace row carries as text.
pub fn redact_trace(trace: &mut Trace) {
    with_secrets(|s| {
        s.string(&mut trace.name);
        s.string(&mut trace.workflow);
        if let Some(g) = &mut trace.group_id {
            s.string(g);
        }
        s.map(&mut trace.metadata);
        s.error(&mut trace.error);
    });
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // The registry is process-wide: each test uses secrets of its own, which no other test's
    // text contains.

    #[test]
    fn registered_secrets_are_replaced_wherever_they_appear() {
        register("sk-unit-REDACT-aaa");
        assert_eq!(
            redact("401 bad key: Bearer sk-unit-REDACT-aaa, again sk-unit-REDACT-aaa"),
            "401 bad key: Bearer [REDACTED], again [REDACTED]"
        );
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
        let mut v = json!({"a": ["x sk-unit-REDACT-aaa y", 1], "sk-unit-REDACT-aaa": {"b": "sk-unit-REDACT-aaa"}});
        redact_value(&mut v);
        assert_eq!(
            v,
            json!({"a": ["x [REDACTED] y", 1], "[REDACTED]": {"b": "[REDACTED]"}})
        );
    }

    #[test]
    fn the_percent_encoded_form_is_a_secret_too() {
        register("tok+en/unit bbb");
        assert_eq!(
            redact("GET /x?api-key=tok%2Ben%2Funit%20bbb"),
            "GET /x?api-key=[REDACTED]"
        );
    }

    #[test]
    fn a_secret_split_over_streamed_pieces_is_caught() {
        register("sk-unit-STREAM-eee");
        let mut r = StreamRedactor::default();
        let mut shown = String::new();
        for piece in ["your key is s", "k-unit-STR", "EAM-eee, and s", "o on"] {
            shown.push_str(&r.push(piece));
        }
        shown.push_str(&r.finish());
        assert_eq!(shown, "your key is [REDACTED], and so on");
        // Nothing that could not begin a secret is held back.
        let mut r = StreamRedactor::default();
        assert_eq!(r.push("plain text"), "plain text");
        assert_eq!(r.push(" then sk-unit-S"), " then ");
        assert_eq!(r.finish(), "sk-unit-S");
    }

    #[test]
    fn short_placeholders_are_not_secrets() {
        register("ollama");
        register("  EMPTY ");
        assert_eq!(redact("ollama says EMPTY"), "ollama says EMPTY");
    }

    #[test]
    fn urls_lose_passwords_and_credential_query_values() {
        assert_eq!(url("http://u:p@host:1/v1"), "http://host:1/v1");
        assert_eq!(url("http://host/v1"), "http://host/v1");
        assert_eq!(
            url("https://h/openai?api-version=2024&api-key=abc123456#f"),
            "https://h/openai?api-version=2024&api-key=[REDACTED]#f"
        );
        assert_eq!(
            url("https://h/v1?sig=1&token"),
            "https://h/v1?sig=[REDACTED]&token"
        );
        register_url("https://user:pw-unit-cccccc@h/v1?api-key=qk-unit-dddddd&version=7");
        assert_eq!(
            redact("pw-unit-cccccc qk-unit-dddddd version=7"),
            "[REDACTED] [REDACTED] version=7"
        );
    }
}
