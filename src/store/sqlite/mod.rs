//! The SQLite backend: the embedded default store, one file on the machine that runs.
//!
//! One file in WAL mode, shared by every `agentrace` process on the machine: writers take short
//! `BEGIN IMMEDIATE` transactions (with a busy timeout and a retry on `SQLITE_BUSY`) from one
//! dedicated thread per process ([`StoreWriter`]), readers never block them. The schema lives in
//! [`schema`], the writes in [`writer`], the reads in [`query`] (what they select in
//! [`crate::store::filter`], the full-text part in [`search`]), the closing of dead runs in
//! [`reconcile`], and the locks that tell live runs from dead ones in [`lock`]. Everything here
//! that speaks SQL or opens the file stays here: no other module imports `rusqlite`.

mod copy;
mod delete;
mod error;
mod experiment;
mod experiment_ingest;
mod ingest;
mod lock;
mod query;
mod reconcile;
mod schema;
mod score;
mod search;
mod session;
mod shard;
mod stats;
mod writer;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::store::{ListFilter, StoreError};

/// How long a statement waits for another process's write lock before SQLite gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times a write transaction is retried after `SQLITE_BUSY`.
const WRITE_RETRIES: u32 = 8;

/// An open store: one SQLite connection and the path it came from (for messages).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Opened read-only (the file or its directory is not writable): reads work, and dead runs
    /// are reconciled in the returned values only.
    read_only: bool,
    /// The locks of the runs this store's writer records (see [`lock`]).
    locks: lock::RunLocks,
    /// The row (`seq`) of each span this writer wrote as it started and has not seen end.
    running:
        std::sync::Mutex<foldhash::HashMap<(crate::trace::TraceId, crate::trace::SpanId), i64>>,
}

impl Store {
    /// Opens the store at `path`, creating it (and its directory) if needed, and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private_file(path)?;
        let store = Store::connect(path, false)?;
        store.tighten_permissions();
        Ok(store)
    }

    /// Opens an existing store for reading commands; a missing file is [`StoreError::Empty`]
    /// and is never created. A store that cannot be written (read-only file or directory) is
    /// opened read-only, and then never written: dead runs are closed in the values returned
    /// only.
    ///
    /// SQLite reads a WAL-mode database through its `-shm` file, which it cannot create in a
    /// read-only directory (a read-only mount, a store left by a run that closed it cleanly):
    /// then the store is opened `immutable`, which needs no `-shm`, provided no `-wal` holds
    /// writes that only the `-shm` could make sense of.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Empty {
                    path: path.to_path_buf(),
                });
            }
            Err(source) => {
                return Err(StoreError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
            Ok(meta) if meta.is_dir() => {
                return Err(StoreError::NotADatabase {
                    path: path.to_path_buf(),
                });
            }
            Ok(_) => {}
        }
        match Store::connect(path, false) {
            Ok(store) => Ok(store),
            Err(e) if e.is_read_only() => match Store::connect(path, true) {
                // SQLite says "cannot open" on a read-only mount and "read-only" in a directory
                // this user may not write.
                Err(e) if e.is_read_only() && !wal_has_writes(path) => {
                    Store::connect_immutable(path)
                }
                other => other,
            },
            Err(e) => Err(e),
        }
    }

    /// Opens a store that nobody can write (see [`Store::open_existing`]) without its `-shm`.
    fn connect_immutable(path: &Path) -> Result<Store, StoreError> {
        let mut uri = String::from("file:");
        for &byte in path.as_os_str().as_encoded_bytes() {
            if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
                uri.push(char::from(byte));
            } else {
                uri.push_str(&format!("%{byte:02X}"));
            }
        }
        uri.push_str("?immutable=1");
        Store::connect_with(path, Some(&uri), true)
    }

    /// SQLite's `PRAGMA data_version`: it changes whenever another connection commits.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| self.sql(e))
    }

    /// The path this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(path: &Path, read_only: bool) -> Result<Store, StoreError> {
        Store::connect_with(path, None, read_only)
    }

    /// Opens `path`, or the SQLite `uri` for it when given (messages name `path`).
    fn connect_with(path: &Path, uri: Option<&str>, read_only: bool) -> Result<Store, StoreError> {
        let mut flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        if uri.is_some() {
            flags |= OpenFlags::SQLITE_OPEN_URI;
        }
        let err = |e| StoreError::sqlite(path, e);
        let conn = match uri {
            Some(uri) => Connection::open_with_flags(uri, flags),
            None => Connection::open_with_flags(path, flags),
        }
        .map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Reading the header is the first thing that notices a file that is not a database.
        let version: i64 =
            opening(|| conn.query_row("PRAGMA user_version", [], |r| r.get(0))).map_err(err)?;
        if version > schema::VERSION {
            // Refuse before touching anything, the journal mode included.
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: schema::VERSION,
            });
        }
        if !read_only {
            // Switching to WAL needs the file (and its directory) writable; a store that is
            // already in WAL mode answers without writing.
            // SQLite answers with the old mode when it cannot switch: on a read-only file, or
            // while another process is switching a new store at the same moment. Only the
            // first lasts, so try again for a while before calling the store read-only.
            let mut mode = String::new();
            for attempt in 0..50 {
                mode = opening(|| conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)))
                    .map_err(err)?;
                if mode.eq_ignore_ascii_case("wal") || !path_is_writable(path) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2 + attempt));
            }
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::ReadOnly {
                    path: path.to_path_buf(),
                });
            }
            opening(|| {
                conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            })
            .map_err(err)?;
        }
        let store = Store {
            conn,
            path: path.to_path_buf(),
            read_only,
            locks: lock::RunLocks::default(),
            running: Default::default(),
        };
        if read_only {
            if version < schema::VERSION {
                // Nothing was ever written here (version 0), or an older binary wrote it and we
                // may not migrate it.
                return Err(if version == 0 {
                    StoreError::Empty {
                        path: path.to_path_buf(),
                    }
                } else {
                    StoreError::ReadOnly {
                        path: path.to_path_buf(),
                    }
                });
            }
        } else if version < schema::VERSION {
            schema::migrate(&store)?;
        }
        Ok(store)
    }

    fn too_new(&self, found: i64) -> StoreError {
        StoreError::TooNew {
            path: self.path.clone(),
            found,
            supported: schema::VERSION,
        }
    }

    /// SQLite creates `-wal` and `-shm` with the database's mode, but a store created by an
    /// older build or by hand may not have been private: keep all three at 0600. Best effort.
    fn tighten_permissions(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let p = PathBuf::from(p);
            if let Ok(meta) = std::fs::metadata(&p)
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600));
            }
        }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, retrying the whole of it when another
    /// process holds the write lock past the busy timeout (or SQLite reports busy at once, as it
    /// can during WAL recovery).
    fn with_write_tx<T>(
        &self,
        mut f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut attempt = 0u32;
        loop {
            let result = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
                .and_then(|tx| {
                    let value = f(&tx)?;
                    tx.commit()?;
                    Ok(value)
                });
            match result {
                Ok(value) => return Ok(value),
                Err(e) if error::is_busy(&e) && attempt < WRITE_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 << attempt.min(6)));
                }
                Err(e) => return Err(self.sql(e)),
            }
        }
    }

    fn sql(&self, e: rusqlite::Error) -> StoreError {
        StoreError::sqlite(&self.path, e)
    }
}

/// Runs one statement of opening a store, again while SQLite says busy: when several processes
/// open a new store at once, one switching it to WAL (or recovering its WAL) makes the others'
/// first statements fail busy at once, without waiting in the busy handler.
fn opening<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut attempt = 0u64;
    loop {
        match f() {
            Err(e) if error::is_busy(&e) && attempt < 100 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(1 + attempt.min(20)));
            }
            other => return other,
        }
    }
}

/// Whether the store's `-wal` file holds writes not yet copied into the database: an
/// `immutable` open would not see them.
fn wal_has_writes(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
}

/// Whether this process may write `path` and create files beside it (the WAL and shared-memory
/// files): if not, a store that is not yet in WAL mode can never be switched.
fn path_is_writable(path: &Path) -> bool {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    nix::unistd::access(path, nix::unistd::AccessFlags::W_OK).is_ok()
        && nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// Creates the store's directory (0700) and an empty database file (0600) before SQLite sees
/// it, so that the modes do not depend on the umask.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| StoreError::Io {
                action: "create the directory of",
                path: path.to_path_buf(),
                source,
            })?;
        // The umask can only remove bits, but be explicit about the one directory we own.
        let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700));
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
                return Err(StoreError::NotADatabase {
                    path: path.to_path_buf(),
                });
            }
            Ok(())
        }
        Err(source) => Err(StoreError::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
impl crate::store::Store {
    /// The SQLite store inside, for tests that look at its tables.
    pub(crate) fn as_sqlite(&self) -> &Store {
        match self {
            crate::store::Store::Sqlite(s) => s,
            crate::store::Store::Postgres(_) => panic!("not an SQLite store"),
        }
    }
}
