//! Who may talk to `serve`.
//!
//! With a token: every request carries `Authorization: Bearer <token>`, or the `agentrace_token`
//! cookie that a browser gets by opening any page once with `?token=<token>` (a browser cannot
//! attach a header to a page it navigates to). Without a token (loopback only): the `Host`
//! header must name a loopback address, which is what stops DNS rebinding — a page on another
//! site resolving its own name to 127.0.0.1 sends its own name as `Host`.
//!
//! Either way, a request that can change anything (any method but GET and HEAD) from a page of
//! another origin is refused: without it, any site a user visits could post traces into the
//! store with a `no-cors` fetch (which needs no preflight), and with a token a page on another
//! port of the same host is the same *site*, so the `SameSite` cookie goes along.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Shared, decode, error, query_pairs};

const COOKIE: &str = "agentrace_token";

pub async fn check(State(app): State<Shared>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) && !same_origin(request.headers()) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "refused: a request from the web page at {:?} may not change anything here \
                 (only this server's own pages may); clients other than browsers send no Origin",
                origin(request.headers()).unwrap_or("")
            ),
        );
    }
    match &app.options.token {
        Some(token) => {
            if presented(request.headers()).is_some_and(|t| same(t.as_bytes(), token.as_bytes())) {
                return next.run(request).await;
            }
            if request.method() == Method::GET
                && let Some(t) = query_token(request.uri().query())
                && same(t.as_bytes(), token.as_bytes())
            {
                return login(request.uri().path(), token);
            }
            let mut response = error(
                StatusCode::UNAUTHORIZED,
                "a token is required: send `Authorization: Bearer <token>` (in a browser, open \
                 /?token=<token> once)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agentrace\""),
            );
            response
        }
        None => {
            if loopback_host(request.headers()) {
                next.run(request).await
            } else {
                error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this server answers only to a loopback Host (127.0.0.1, localhost, \
                         [::1]), not {:?}; to serve other hosts, start it with --token",
                        host(request.headers()).unwrap_or("")
                    ),
                )
            }
        }
    }
}

/// The token in the `Authorization` header or the cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION)
        && let Ok(value) = value.to_str()
        && let Some((scheme, token)) = value.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(token.trim().to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| decode(value))
        })
}

fn query_token(query: Option<&str>) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find_map(|(name, value)| (name == "token").then_some(value))
}

/// Sets the cookie and sends the browser back to the page it asked for, without the token in
/// its address bar or history.
fn login(path: &str, token: &str) -> Response {
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    if let Ok(value) = HeaderValue::from_str(safe_redirect(path)) {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// `path` if a browser can only read it as a path on this server, else `/`. Browsers treat `\`
/// as `/` and drop tabs and newlines, so `/\evil.example` or `/\t/evil.example` would send
/// them to `//evil.example`, another site: only plain path characters pass, after a single `/`.
fn safe_redirect(path: &str) -> &str {
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&b));
    if plain && path.starts_with('/') && !path.starts_with("//") {
        path
    } else {
        "/"
    }
}

/// Compares without stopping at the first difference, so that timing does not reveal a prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN)?.to_str().ok()
}

/// Whether a request is not from another origin's page: it has no `Origin` (programs other than
/// browsers, and browsers' own navigations), or its `Origin`'s host and port are the `Host` the
/// request was sent to. Browsers send `Origin` on every cross-origin request that can
/// change state, `no-cors` ones included, and a page cannot forge it. `https` origins are
/// accepted too, for a TLS proxy in front that keeps `Host`: nothing but this server answers on
/// its own host and port. `Origin: null` (sandboxed frames, `file:` and `data:` pages) is not
/// this server.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (value.to_str(), host(headers)) else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (
        authority_parts(authority, default_port),
        authority_parts(host, default_port),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `name[:port]` or `[v6][:port]` as (lowercased name, port), the port defaulted.
fn authority_parts(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (name, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (format!("[{inside}]"), port)
        }
        None => match authority.rsplit_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (authority.to_string(), None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some((name.to_ascii_lowercase(), port))
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST)?.to_str().ok()
}

fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = host(headers) else {
        // HTTP/1.0 clients may omit it; they are not browsers.
        return true;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn tokens_come_from_the_bearer_header_or_the_cookie() {
        let h = headers(&[(header::AUTHORIZATION, "Bearer s3cret")]);
        assert_eq!(presented(&h).as_deref(), Some("s3cret"));
        let h = headers(&[(header::AUTHORIZATION, "bearer s3cret")]);
        assert_eq!(presented(&h).as_deref(), Some("s3cret"));
        let h = headers(&[(header::AUTHORIZATION, "Basic czNjcmV0")]);
        assert_eq!(presented(&h), None);
        let h = headers(&[(header::COOKIE, "a=1; agentrace_token=s%2B3; b=2")]);
        assert_eq!(presented(&h).as_deref(), Some("s+3"));
        assert_eq!(presented(&HeaderMap::new()), None);
    }

    #[test]
    fn only_loopback_hosts_pass_without_a_token() {
        for ok in [
            "127.0.0.1:4318",
            "localhost:4318",
            "LOCALHOST",
            "[::1]:80",
            "app.localhost",
        ] {
            assert!(loopback_host(&headers(&[(header::HOST, ok)])), "{ok}");
        }
        for bad in ["evil.example:4318", "192.168.1.2", "127.0.0.1.evil.example"] {
            assert!(!loopback_host(&headers(&[(header::HOST, bad)])), "{bad}");
        }
    }

    #[test]
    fn only_this_servers_own_pages_are_same_origin() {
        let with = |origin: &str, host: &str| {
            same_origin(&headers(&[(header::ORIGIN, origin), (header::HOST, host)]))
        };
        assert!(same_origin(&headers(&[(header::HOST, "127.0.0.1:4318")])));
        assert!(with("http://127.0.0.1:4318", "127.0.0.1:4318"));
        assert!(with("http://LOCALHOST:4318", "localhost:4318"));
        assert!(with("http://[::1]:4318", "[::1]:4318"));
        assert!(with("http://traces.example", "traces.example:80"));
        assert!(with("https://traces.example", "traces.example"));
        for (origin, host) in [
            ("http://127.0.0.1:8000", "127.0.0.1:4318"),
            ("http://localhost:4318", "127.0.0.1:4318"),
            ("http://evil.example", "127.0.0.1:4318"),
            ("https://traces.example", "traces.example:80"),
            ("null", "127.0.0.1:4318"),
            ("file://", "127.0.0.1:4318"),
            ("chrome-extension://abc", "abc"),
            ("http://user@127.0.0.1:4318", "127.0.0.1:4318"),
            ("http://127.0.0.1:4318/", "127.0.0.1:4318"),
            ("http://[::1]:4318", "[::1]"),
            ("http://127.0.0.1:99999", "127.0.0.1:99999"),
        ] {
            assert!(!with(origin, host), "{origin} from {host}");
        }
        // An Origin and no Host cannot be compared.
        assert!(!same_origin(&headers(&[(
            header::ORIGIN,
            "http://127.0.0.1:4318"
        )])));
    }

    #[test]
    fn login_redirects_only_to_a_path_on_this_server() {
        for ok in ["/", "/traces/trace_0193", "/groups/conv%201", "/diff"] {
            assert_eq!(safe_redirect(ok), ok);
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n//evil.example",
            "evil.example",
            "",
            "/ /evil",
            "/\u{0}",
            "/caf\u{e9}",
        ] {
            assert_eq!(safe_redirect(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn comparison_needs_the_whole_token() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"a"));
    }
}
