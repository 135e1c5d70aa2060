//! SQLite's errors as [`StoreError`]s: its result codes name what went wrong (a locked, full,
//! read-only or corrupted file), and the store's error says so in a sentence with the path.

use std::path::Path;

use rusqlite::ErrorCode;

use crate::store::StoreError;

impl StoreError {
    /// Translates a SQLite error by its result code.
    pub(crate) fn sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        let code = e.sqlite_error_code();
        match code {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
                path,
                detail: e.to_string(),
            },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy { path },
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => StoreError::CannotOpen {
                path,
                detail: e.to_string(),
            },
            _ => StoreError::Database {
                path,
                source: Box::new(e),
            },
        }
    }
}

/// A SQLite error worth retrying: another process holds the write lock.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
