//! From a `postgres://` URL to a connection: where the password comes from, what TLS means.
//!
//! The password is the URL's, else `PGPASSWORD`, else the matching line of `~/.pgpass` (or
//! `PGPASSFILE`), as libpq reads them; a `.pgpass` readable by others is ignored, as libpq
//! does. `sslmode` means what it means to libpq: `disable`; `prefer` (the default: TLS when
//! the server offers it) and `require` (TLS or nothing) encrypt without checking the server's
//! certificate unless `sslrootcert=PATH` names a CA to check it against (a stock Debian
//! server's snakeoil certificate must not stop `postgres://localhost/db`); `verify-ca` and
//! `verify-full` check it against the platform's roots plus that CA, host name included (so
//! `verify-ca` is as strict as `verify-full` here). A team store reached over a network wants
//! `verify-full`. Nothing here prints the password.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config};

use crate::store::location::PgUrl;

/// How long connecting may take before the store is called unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A URL read into the driver's configuration, with the TLS roots it asks for.
pub(super) struct Target {
    pub(super) config: Config,
    root_cert: Option<PathBuf>,
    /// `verify-ca` / `verify-full`: check the certificate even without `sslrootcert`.
    verify: bool,
}

/// Reads `url`; the error is a sentence without the password.
pub(super) fn target(url: &PgUrl) -> Result<Target, String> {
    let (head, query) = match url.secret().split_once('?') {
        Some((head, query)) => (head, query),
        None => (url.secret(), ""),
    };
    // The options the driver does not know (or knows with fewer values) are taken out first.
    let mut kept = Vec::new();
    let mut root_cert = None;
    let mut verify = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslrootcert" => root_cert = Some(PathBuf::from(decode(value))),
            "sslmode" => match value {
                "disable" | "prefer" | "require" => kept.push(pair.to_string()),
                "verify-ca" | "verify-full" => {
                    verify = true;
                    kept.push("sslmode=require".to_string());
                }
                "allow" => kept.push("sslmode=prefer".to_string()),
                other => {
                    return Err(format!(
                        "sslmode={other} is not a TLS mode (disable, prefer, require, \
                         verify-ca, verify-full)"
                    ));
                }
            },
            _ => kept.push(pair.to_string()),
        }
    }
    let cleaned = if kept.is_empty() {
        head.to_string()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    let mut config: Config = cleaned.parse().map_err(|e: postgres::Error| {
        // The driver's parse errors name the option, never its value.
        format!("not a valid PostgreSQL URL: {e}")
    })?;
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "postgres".to_string());
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(password) = password_from_env_or_file(&config)
    {
        config.password(password);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.application_name("agentrace");
    Ok(Target {
        config,
        root_cert,
        verify,
    })
}

impl Target {
    /// Connects, with TLS unless `sslmode=disable`.
    pub(super) fn connect(&self) -> Result<Client, ConnectError> {
        if self.config.get_ssl_mode() == SslMode::Disable {
            return self
                .config
                .connect(postgres::NoTls)
                .map_err(ConnectError::Driver);
        }
        let tls = self.tls().map_err(ConnectError::Tls)?;
        self.config.connect(tls).map_err(ConnectError::Driver)
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = match &self.root_cert {
            None if !self.verify => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                    .with_no_client_auth()
            }
            None => {
                use rustls_platform_verifier::ConfigVerifierExt;
                rustls::ClientConfig::with_platform_verifier()
                    .map_err(|e| format!("cannot load the platform's TLS roots: {e}"))?
            }
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read sslrootcert {}: {e}", path.display()))?;
                let mut roots = rustls::RootCertStore::empty();
                let mut found = 0;
                for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                    let cert: rustls::pki_types::CertificateDer<'static> = cert
                        .map_err(|e| format!("sslrootcert {} is not PEM: {e}", path.display()))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                    found += 1;
                }
                if found == 0 {
                    return Err(format!(
                        "sslrootcert {} holds no certificate",
                        path.display()
                    ));
                }
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth()
            }
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// The certificate check of `sslmode=prefer` and `require` without `sslrootcert`, as libpq
/// does them: the connection is encrypted, the handshake's signatures are checked, the
/// certificate's issuer and name are not.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a connection failed.
pub(super) enum ConnectError {
    Tls(String),
    Driver(postgres::Error),
}

/// `PGPASSWORD`, else the first line of the password file that matches this connection.
fn password_from_env_or_file(config: &Config) -> Option<String> {
    if let Ok(password) = std::env::var("PGPASSWORD")
        && !password.is_empty()
    {
        return Some(password);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let meta = std::fs::metadata(&file).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        // libpq ignores a password file that others can read; so do we.
        if meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default()
        .to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    pgpass_lookup(&text, [&host, &port, &db, &user])
}

/// The password of the first `host:port:database:user:password` line matching `want`
/// (`*` matches anything; `\:` and `\\` escape).
fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        let [host, port, db, user, password] = fields.as_slice() else {
            continue;
        };
        let matches = [host, port, db, user]
            .iter()
            .zip(want)
            .all(|(field, wanted)| field.as_str() == "*" || field.as_str() == wanted);
        // `localhost` in the file also stands for the loopback address.
        let loopback = host.as_str() == "localhost" && want[0] == "127.0.0.1";
        if matches
            || (loopback
                && [port, db, user]
                    .iter()
                    .zip(&want[1..])
                    .all(|(f, w)| f.as_str() == "*" || f.as_str() == *w))
        {
            return Some(password.clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(field) = fields.last_mut()
                {
                    field.push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(field) = fields.last_mut() {
                    field.push(c);
                }
            }
        }
    }
    fields
}

/// Percent-decoding of a query value (a path in `sslrootcert`).
fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let file =
            "# comment\nother:5432:*:*:nope\n127.0.0.1:5433:traces:ci:pa\\:ss\n*:*:*:ci:any\n";
        assert_eq!(
            pgpass_lookup(file, ["127.0.0.1", "5433", "traces", "ci"]).as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(file, ["db", "5432", "x", "ci"]).as_deref(),
            Some("any")
        );
        assert_eq!(pgpass_lookup(file, ["db", "5432", "x", "bob"]), None);
        assert_eq!(
            pgpass_lookup("localhost:*:*:*:lo", ["127.0.0.1", "1", "d", "u"]).as_deref(),
            Some("lo")
        );
    }

    #[test]
    fn ssl_modes_and_unknown_options() {
        let url = |s: &str| match crate::store::Location::parse(s).unwrap() {
            crate::store::Location::Postgres(u) => u,
            crate::store::Location::Sqlite(_) => unreachable!(),
        };
        let t = target(&url("postgres://u:pw@h:1/db?sslmode=verify-full")).unwrap();
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        let err = target(&url("postgres://u:pw@h:1/db?sslmode=bogus"))
            .err()
            .unwrap();
        assert!(err.contains("sslmode=bogus"), "{err}");
        let err = target(&url("postgres://u:secretpw@h:1/db?frobnicate=1"))
            .err()
            .unwrap();
        assert!(!err.contains("secretpw"), "{err}");
    }
}
