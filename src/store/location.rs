//! Where a store is: `--store` / `AGENTRACE_STORE` name either an SQLite file (a path, or
//! `sqlite:PATH`) or a PostgreSQL database (`postgres://USER@HOST:PORT/DB`, also
//! `postgresql://`). Anything else that looks like a URL (`mysql://…`, `http://…`) is refused
//! at once rather than taken for a file name.
//!
//! A PostgreSQL URL may carry a password: every message, log line and `Display` of a location
//! masks it (`postgres://user:***@host/db`), so that it never reaches a terminal, a CI log or
//! the store.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A store's location, as the user gave it.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

/// A `postgres://` URL, password and all. Its `Debug` and `Display` mask the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl(String);

impl PgUrl {
    /// The URL as given, password included: for the driver only, never for a message.
    pub(crate) fn secret(&self) -> &str {
        &self.0
    }
}

impl Location {
    /// Reads what `--store` or `AGENTRACE_STORE` says.
    pub fn parse(text: &str) -> Result<Location, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("the store location is empty: give a path or a postgres:// URL".into());
        }
        if let Some(path) = trimmed.strip_prefix("sqlite:") {
            // `sqlite:PATH` and `sqlite://PATH` (an absolute path keeps its own slash).
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("`sqlite:` needs a path: sqlite:PATH".into());
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = trimmed.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            let url = PgUrl(trimmed.to_string());
            return match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Ok(Location::Postgres(url)),
                _ => Err(format!(
                    "unknown store scheme `{scheme}://` in {}: give a path, sqlite:PATH or \
                     postgres://USER@HOST:PORT/DB",
                    mask(trimmed)
                )),
            };
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    /// The file of an SQLite store.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }

    /// How messages name the store (a path, or the URL with its password masked), as the
    /// `path` of a [`super::StoreError`].
    pub fn label(&self) -> PathBuf {
        match self {
            Location::Sqlite(path) => path.clone(),
            Location::Postgres(url) => PathBuf::from(url.to_string()),
        }
    }
}

impl FromStr for Location {
    type Err = String;
    fn from_str(s: &str) -> Result<Location, String> {
        Location::parse(s)
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Sqlite(path)
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => url.fmt(f),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask(&self.0))
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `scheme://user:secret@host/db?password=secret` → `scheme://user:***@host/db?password=***`.
pub(crate) fn mask(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match head.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            // The userinfo ends at the last `@` before the path.
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    match userinfo.split_once(':') {
                        Some((user, _)) => {
                            out.push_str(user);
                            out.push_str(":***");
                        }
                        None => out.push_str(userinfo),
                    }
                    out.push('@');
                    out.push_str(host);
                }
                None => out.push_str(authority),
            }
            out.push_str(path);
        }
        None => out.push_str(head),
    }
    if let Some(query) = query {
        out.push('?');
        let parts: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_urls_and_unknown_schemes() {
        assert_eq!(
            Location::parse("store/traces.db").unwrap(),
            Location::Sqlite(PathBuf::from("store/traces.db"))
        );
        assert_eq!(
            Location::parse("sqlite:/tmp/a.db").unwrap(),
            Location::Sqlite(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(
            Location::parse("sqlite:///tmp/a.db").unwrap(),
            Location::Sqlite(PathBuf::from("/tmp/a.db"))
        );
        assert!(matches!(
            Location::parse("postgres://u@127.0.0.1:5432/db").unwrap(),
            Location::Postgres(_)
        ));
        assert!(matches!(
            Location::parse("postgresql://u@h/db").unwrap(),
            Location::Postgres(_)
        ));
        let err = Location::parse("mysql://root:hunter2@db/x").unwrap_err();
        assert!(err.contains("unknown store scheme `mysql://`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(Location::parse("  ").is_err());
        assert!(Location::parse("sqlite:").is_err());
        // A colon in a file name is still a file name.
        assert!(matches!(
            Location::parse("c:traces.db").unwrap(),
            Location::Sqlite(_)
        ));
    }

    #[test]
    fn passwords_never_show() {
        let url = "postgres://ci:s3cr%40t@db.example:5432/traces?sslmode=require&password=two";
        let location = Location::parse(url).unwrap();
        for shown in [
            location.to_string(),
            format!("{location:?}"),
            location.label().display().to_string(),
        ] {
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(!shown.contains("two"), "{shown}");
            assert_eq!(
                shown,
                "postgres://ci:***@db.example:5432/traces?sslmode=require&password=***"
            );
        }
        assert_eq!(mask("postgres://ci@h/db"), "postgres://ci@h/db");
        assert_eq!(mask("postgres://h/db"), "postgres://h/db");
    }
}
