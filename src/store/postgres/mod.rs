//! The PostgreSQL backend: the team store that many machines and many `serve` instances share.
//!
//! One connection per open store (rust-postgres's blocking client: the store's API is
//! synchronous and runs on the writer thread or the blocking pool). Writers upsert rows in
//! short transactions under PostgreSQL's row locks, so runs on many machines write at once with
//! no table-wide lock, and a run's trace is visible while it runs. Every write transaction
//! ends with a `NOTIFY` on [`CHANNEL`], which is how every `serve` instance learns of changes
//! made through any other ([`Store::wait_for_change`]).
//!
//! What differs from SQLite by dialect lives in these files: the schema and its migrations
//! ([`schema`]), full-text search on `tsvector` columns ([`search`]), JSON read with `jsonb`
//! operators from the text the rows keep verbatim (key order is part of what `show` prints),
//! and how a reader tells a live run from a dead one: a session advisory lock held by the
//! writer's connection ([`lock`]) instead of a lock file.

mod connect;
mod copy;
mod experiment;
mod ingest;
mod lock;
mod query;
mod schema;
mod search;
mod shard;
mod write;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::Client;
use postgres::error::SqlState;

use crate::store::StoreError;
use crate::store::location::PgUrl;
use crate::trace::TraceId;

/// The channel every write transaction notifies.
pub(super) const CHANNEL: &str = "agentrace_changes";

/// How many times a transaction is retried after a deadlock or a serialization failure.
const RETRIES: u32 = 5;

/// An open PostgreSQL store.
pub struct Store {
    client: Mutex<Client>,
    /// The URL with its password masked, for messages.
    label: String,
    /// The runs whose advisory lock this connection holds.
    runs: Mutex<HashSet<TraceId>>,
    /// Whether this connection has said `LISTEN` yet.
    listening: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Connects and checks the schema: brings it up to date when `create` (or when the
    /// tables exist), refuses a newer one. Without `create`, a database without agentrace's
    /// tables is [`StoreError::Empty`] and is left untouched.
    pub fn open(url: &PgUrl, create: bool) -> Result<Store, StoreError> {
        let label = url.to_string();
        let path = PathBuf::from(&label);
        let target = connect::target(url).map_err(|detail| StoreError::Refused {
            path: path.clone(),
            detail,
        })?;
        let client = target.connect().map_err(|e| match e {
            connect::ConnectError::Tls(detail) => StoreError::Refused {
                path: path.clone(),
                detail,
            },
            connect::ConnectError::Driver(e) => connect_error(&path, e),
        })?;
        let store = Store {
            client: Mutex::new(client),
            label,
            runs: Mutex::default(),
            listening: std::sync::atomic::AtomicBool::new(false),
        };
        schema::prepare(&store, create)?;
        Ok(store)
    }

    /// How messages name the store (the URL, password masked).
    pub fn label(&self) -> PathBuf {
        PathBuf::from(&self.label)
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Turns a driver error into a sentence that names the store.
    pub(super) fn sql(&self, e: postgres::Error) -> StoreError {
        database_error(&self.label(), e)
    }

    /// Runs `f` in a transaction that ends with a change notification, again after a deadlock
    /// or a serialization failure (two writers upserting the same rows in another order).
    pub(super) fn with_write_tx<T>(
        &self,
        mut f: impl FnMut(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let mut client = self.client();
        let mut attempt = 0;
        loop {
            let result = client.transaction().and_then(|mut tx| {
                let value = f(&mut tx)?;
                tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])?;
                tx.commit()?;
                Ok(value)
            });
            match result {
                Ok(value) => return Ok(value),
                Err(e)
                    if attempt < RETRIES
                        && matches!(
                            e.code(),
                            Some(&SqlState::T_R_DEADLOCK_DETECTED)
                                | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                        ) =>
                {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(5 << attempt));
                }
                Err(e) => return Err(self.sql(e)),
            }
        }
    }

    /// Runs a read with the connection.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        f(&mut self.client()).map_err(|e| self.sql(e))
    }

    /// Waits up to `timeout` for a notification from any writer (see [`CHANNEL`]).
    pub fn wait_for_change(&self, timeout: Duration) -> Result<bool, StoreError> {
        use postgres::fallible_iterator::FallibleIterator;
        use std::sync::atomic::Ordering;
        let mut client = self.client();
        if !self.listening.swap(true, Ordering::AcqRel) {
            client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .map_err(|e| self.sql(e))?;
            // What was written before this connection listened was never announced to it:
            // count it as a change, so that nobody waits for a notification already gone.
            return Ok(true);
        }
        if client.is_closed() {
            return Err(StoreError::Unreachable {
                path: self.label(),
                detail: "the connection to the server was lost".into(),
            });
        }
        let mut notifications = client.notifications();
        // The first wait is the long one; whatever else is queued comes with it.
        let changed = notifications
            .timeout_iter(timeout)
            .next()
            .map_err(|e| self.sql(e))?
            .is_some();
        if changed {
            let mut rest = notifications.iter();
            while rest.next().map_err(|e| self.sql(e))?.is_some() {}
        }
        Ok(changed)
    }

    /// Nothing to tidy after a quiet spell: PostgreSQL checkpoints by itself.
    pub(crate) fn idle(&self) {}
}

/// A failed connection, said plainly: unreachable, refused credentials, no such database.
fn connect_error(path: &std::path::Path, e: postgres::Error) -> StoreError {
    let path = path.to_path_buf();
    match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            StoreError::Refused {
                path,
                detail: format!("wrong credentials: {}", db_message(&e)),
            }
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => StoreError::Refused {
            path,
            detail: db_message(&e),
        },
        Some(_) => StoreError::Refused {
            path,
            detail: db_message(&e),
        },
        None => {
            let detail = source_chain(&e);
            if detail.contains("TLS handshake") {
                StoreError::Refused {
                    path,
                    detail: format!(
                        "{detail} (give the server's CA with ?sslrootcert=PATH, or \
                         sslmode=require to encrypt without checking the certificate)"
                    ),
                }
            } else {
                StoreError::Unreachable { path, detail }
            }
        }
    }
}

/// Any other driver error.
fn database_error(path: &std::path::Path, e: postgres::Error) -> StoreError {
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        return StoreError::Unreachable {
            path: path.to_path_buf(),
            detail: format!("the connection failed: {}", source_chain(&e)),
        };
    }
    if e.code() == Some(&SqlState::DISK_FULL) {
        return StoreError::DiskFull {
            path: path.to_path_buf(),
        };
    }
    StoreError::Database {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// The server's own message of a database error.
fn db_message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// An error and its causes on one line ("error connecting to server: Connection refused").
fn source_chain(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}
