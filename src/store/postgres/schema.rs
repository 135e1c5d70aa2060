//! The PostgreSQL tables and their migrations.
//!
//! The version lives in `agentrace_schema`; migration `n` takes a database from version
//! `n - 1` to `n`, in one transaction under a transaction-scoped advisory lock, so that many
//! runners opening a new team store at once migrate it exactly once. Never edit a released
//! migration: add the next one. The versions count on their own (PostgreSQL's 1 holds what
//! SQLite reached in 6).
//!
//! The columns are SQLite's: times in BIGINT microseconds, ids as text in their `trace_…`
//! form (collated "C", so that prefixes use the index and sort as SQLite sorts them), JSON
//! documents as TEXT kept verbatim (`jsonb` would reorder keys, and key order is what `show`
//! prints; queries cast to `jsonb` where they look inside). Each searchable row carries a
//! `tsvector` of its words, made in Rust ([`super::search`]).

use postgres::error::SqlState;

use super::Store;
use crate::store::StoreError;

/// The schema version this binary writes.
pub(super) const VERSION: i64 = 3;

/// The key of the advisory lock migrations take ("agentrace" in ASCII, cut to 63 bits).
const MIGRATION_LOCK: i64 = 0x6167_656e_7472_6163;

/// `MIGRATIONS[n - 1]` takes a database from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's migrations 1 to 6 hold.
    r#"
    CREATE TABLE traces (
        trace_id      TEXT COLLATE "C" PRIMARY KEY,
        seq           BIGSERIAL NOT NULL,
        name          TEXT NOT NULL,
        workflow      TEXT NOT NULL,
        group_id      TEXT,
        metadata      TEXT NOT NULL DEFAULT '{}',
        status        TEXT NOT NULL,
        started_at    BIGINT NOT NULL,
        ended_at      BIGINT,
        input_tokens  BIGINT NOT NULL DEFAULT 0,
        output_tokens BIGINT NOT NULL DEFAULT 0,
        total_tokens  BIGINT NOT NULL DEFAULT 0,
        error         TEXT,
        pid           BIGINT,
        cost_usd      DOUBLE PRECISION,
        search        TSVECTOR NOT NULL DEFAULT ''::tsvector
    );
    CREATE INDEX traces_by_started_at ON traces (started_at DESC, trace_id DESC);
    CREATE INDEX traces_by_group ON traces (group_id, started_at);
    CREATE INDEX traces_by_workflow ON traces (workflow, started_at);
    CREATE INDEX traces_running ON traces (trace_id) WHERE status = 'running';
    CREATE INDEX traces_by_search ON traces USING GIN (search);

    CREATE TABLE spans (
        seq        BIGSERIAL PRIMARY KEY,
        trace_id   TEXT COLLATE "C" NOT NULL REFERENCES traces (trace_id) ON DELETE CASCADE,
        span_id    TEXT COLLATE "C" NOT NULL,
        parent_id  TEXT,
        kind       TEXT NOT NULL,
        name       TEXT NOT NULL,
        status     TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at   BIGINT,
        attributes TEXT NOT NULL DEFAULT '{}',
        error      TEXT,
        search     TSVECTOR NOT NULL DEFAULT ''::tsvector,
        UNIQUE (trace_id, span_id)
    );
    CREATE INDEX spans_by_search ON spans USING GIN (search);

    CREATE TABLE events (
        seq        BIGSERIAL PRIMARY KEY,
        trace_id   TEXT COLLATE "C" NOT NULL,
        span_id    TEXT COLLATE "C" NOT NULL,
        name       TEXT NOT NULL,
        time       BIGINT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        search     TSVECTOR NOT NULL DEFAULT ''::tsvector,
        FOREIGN KEY (trace_id, span_id) REFERENCES spans (trace_id, span_id) ON DELETE CASCADE
    );
    CREATE INDEX events_by_span ON events (trace_id, span_id);
    CREATE INDEX events_by_name ON events (name, trace_id);
    CREATE INDEX events_by_search ON events USING GIN (search);

    CREATE TABLE session_messages (
        session    TEXT NOT NULL,
        seq        BIGINT NOT NULL,
        trace_id   TEXT NOT NULL,
        message    TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (session, seq)
    );

    CREATE TABLE experiments (
        experiment_id TEXT COLLATE "C" PRIMARY KEY,
        seq           BIGSERIAL NOT NULL,
        name          TEXT NOT NULL,
        workflow      TEXT NOT NULL,
        dataset       TEXT NOT NULL,
        dataset_hash  TEXT NOT NULL,
        metadata      TEXT NOT NULL DEFAULT '{}',
        status        TEXT NOT NULL,
        started_at    BIGINT NOT NULL,
        ended_at      BIGINT,
        cases         BIGINT NOT NULL,
        repeats       BIGINT NOT NULL DEFAULT 1
    );
    CREATE INDEX experiments_by_name ON experiments (name, started_at);
    CREATE INDEX experiments_by_started_at ON experiments (started_at);

    CREATE TABLE experiment_runs (
        experiment_id TEXT COLLATE "C" NOT NULL
            REFERENCES experiments (experiment_id) ON DELETE CASCADE,
        case_id       TEXT NOT NULL,
        attempt       BIGINT NOT NULL,
        trace_id      TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (experiment_id, case_id, attempt)
    );
    CREATE INDEX experiment_runs_by_trace ON experiment_runs (trace_id);
    "#,
    // 2: the shards of `eval --shard K/N` (SQLite's 7).
    r#"
    CREATE TABLE experiment_shards (
        experiment_id TEXT COLLATE "C" NOT NULL
            REFERENCES experiments (experiment_id) ON DELETE CASCADE,
        shard         BIGINT NOT NULL,
        shards        BIGINT NOT NULL,
        cases         BIGINT NOT NULL,
        status        TEXT NOT NULL,
        started_at    BIGINT NOT NULL,
        ended_at      BIGINT,
        PRIMARY KEY (experiment_id, shard)
    );
    "#, // 3: a trace's id reversed, indexed, so that a suffix of an id (the short id `list`
    // shows) is a range of this index as a prefix is of the primary key's (SQLite's 8).
    // `reverse` is immutable and keeps the column's "C" collation.
    r#"
    CREATE INDEX traces_by_reversed_id ON traces (reverse(trace_id));
    "#,
];

/// Checks the schema of a freshly connected store and brings it up to date (see
/// [`Store::open`]).
pub(super) fn prepare(store: &Store, create: bool) -> Result<(), StoreError> {
    let found = version(store)?;
    match found {
        Some(v) if v > VERSION => Err(too_new(store, v)),
        Some(v) if v == VERSION => Ok(()),
        None if !create => Err(StoreError::Empty {
            path: store.label(),
        }),
        _ => migrate(store),
    }
}

/// The version, or `None` when agentrace's tables are not there.
fn version(store: &Store) -> Result<Option<i64>, StoreError> {
    store.read(|c| {
        let exists: bool = c
            .query_one("SELECT to_regclass('agentrace_schema') IS NOT NULL", &[])?
            .try_get(0)?;
        if !exists {
            return Ok(None);
        }
        let row = c.query_opt("SELECT max(version) FROM agentrace_schema", &[])?;
        Ok(row.and_then(|r| r.try_get::<_, Option<i64>>(0).ok().flatten()))
    })
}

fn migrate(store: &Store) -> Result<(), StoreError> {
    let mut client = store.client();
    let result = client.transaction().and_then(|mut tx| {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS agentrace_schema (version BIGINT NOT NULL)")?;
        let found: Option<i64> = tx
            .query_one("SELECT max(version) FROM agentrace_schema", &[])?
            .try_get(0)?;
        let found = found.unwrap_or(0);
        if found >= VERSION {
            tx.commit()?;
            return Ok(found);
        }
        for sql in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
            tx.batch_execute(sql)?;
        }
        tx.execute("DELETE FROM agentrace_schema", &[])?;
        tx.execute(
            "INSERT INTO agentrace_schema (version) VALUES ($1)",
            &[&VERSION],
        )?;
        tx.commit()?;
        Ok(found)
    });
    drop(client);
    match result {
        Ok(found) if found > VERSION => Err(too_new(store, found)),
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            Err(StoreError::CannotOpen {
                path: store.label(),
                detail: format!(
                    "the user may not create agentrace's tables: {}",
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_string())
                ),
            })
        }
        Err(e) => Err(store.sql(e)),
    }
}

fn too_new(store: &Store, found: i64) -> StoreError {
    StoreError::TooNew {
        path: store.label(),
        found,
        supported: VERSION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_migration_per_version() {
        assert_eq!(MIGRATIONS.len() as i64, VERSION);
    }
}
