//! The store's tables and how a store of any older version is brought up to date.
//!
//! The version lives in `PRAGMA user_version`. Migration `n` takes a store from version `n - 1`
//! to `n`; they run in one `BEGIN IMMEDIATE` transaction so that two processes opening a new
//! store at once cannot both migrate it. Never edit a released migration: add the next one.
//!
//! Times are INTEGER microseconds since the Unix epoch; ids are stored in their text form
//! (`trace_…`, `span_…`) so that the file reads well in the `sqlite3` shell; attributes,
//! metadata and errors are JSON text.

use super::{Store, StoreError};

/// The schema version this binary writes.
pub const VERSION: i64 = 8;

/// `MIGRATIONS[n - 1]` takes a store from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: traces, spans and their events.
    r#"
    CREATE TABLE traces (
        trace_id      TEXT PRIMARY KEY NOT NULL,
        name          TEXT NOT NULL,
        workflow      TEXT NOT NULL,
        group_id      TEXT,
        metadata      TEXT NOT NULL DEFAULT '{}',
        status        TEXT NOT NULL,
        started_at    INTEGER NOT NULL,
        ended_at      INTEGER,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        total_tokens  INTEGER NOT NULL DEFAULT 0,
        error         TEXT,
        pid           INTEGER
    );
    CREATE INDEX traces_by_started_at ON traces (started_at);
    CREATE INDEX traces_by_group ON traces (group_id, started_at);
    CREATE INDEX traces_by_workflow ON traces (workflow, started_at);
    CREATE INDEX traces_running ON traces (pid) WHERE status = 'running';

    CREATE TABLE spans (
        seq        INTEGER PRIMARY KEY,
        trace_id   TEXT NOT NULL REFERENCES traces (trace_id) ON DELETE CASCADE,
        span_id    TEXT NOT NULL,
        parent_id  TEXT,
        kind       TEXT NOT NULL,
        name       TEXT NOT NULL,
        status     TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at   INTEGER,
        attributes TEXT NOT NULL DEFAULT '{}',
        error      TEXT,
        UNIQUE (trace_id, span_id)
    );
    CREATE INDEX spans_by_trace ON spans (trace_id, started_at);

    CREATE TABLE events (
        seq        INTEGER PRIMARY KEY,
        trace_id   TEXT NOT NULL,
        span_id    TEXT NOT NULL,
        name       TEXT NOT NULL,
        time       INTEGER NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        FOREIGN KEY (trace_id, span_id) REFERENCES spans (trace_id, span_id) ON DELETE CASCADE
    );
    CREATE INDEX events_by_span ON events (trace_id, span_id);
    "#,
    // 2: conversations kept across runs (`session:` on agent steps).
    r#"
    CREATE TABLE session_messages (
        session    TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        trace_id   TEXT NOT NULL,
        message    TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (session, seq)
    );
    "#,
    // 3: what a trace's model calls cost.
    r#"
    ALTER TABLE traces ADD COLUMN cost_usd REAL;
    "#,
    // 4: full-text search for `list --search` (see `search.rs`). Contentless FTS5 tables
    // keyed by the rowid of what they index (`spans.seq`, `events.seq`, `traces.rowid`), kept
    // in step by triggers so that every writer (the run's writer thread, reconcile, rm, prune)
    // updates them in its own transaction. Indexed: trace names and workflows, span names, the
    // text leaves of a span's `input`, `output` and `stdout` attributes (absent under
    // `--no-content`, so never indexed then), and event names.
    r#"
    CREATE VIRTUAL TABLE fts_traces USING fts5 (
        name, workflow, content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE VIRTUAL TABLE fts_spans USING fts5 (
        name, content, content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE VIRTUAL TABLE fts_events USING fts5 (
        name, content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2'
    );

    CREATE TRIGGER fts_traces_insert AFTER INSERT ON traces BEGIN
        INSERT INTO fts_traces (rowid, name, workflow) VALUES (new.rowid, new.name, new.workflow);
    END;
    CREATE TRIGGER fts_traces_update AFTER UPDATE OF name, workflow ON traces
    WHEN old.name IS NOT new.name OR old.workflow IS NOT new.workflow BEGIN
        DELETE FROM fts_traces WHERE rowid = old.rowid;
        INSERT INTO fts_traces (rowid, name, workflow) VALUES (new.rowid, new.name, new.workflow);
    END;
    CREATE TRIGGER fts_traces_delete AFTER DELETE ON traces BEGIN
        DELETE FROM fts_traces WHERE rowid = old.rowid;
    END;

    CREATE TRIGGER fts_spans_insert AFTER INSERT ON spans BEGIN
        INSERT INTO fts_spans (rowid, name, content) VALUES (new.seq, new.name, (
            SELECT group_concat(value, ' ') FROM (
                SELECT value FROM json_tree(CASE WHEN json_valid(new.attributes)
                    THEN new.attributes ELSE '{}' END, '$.input') WHERE type = 'text'
                UNION ALL
                SELECT value FROM json_tree(CASE WHEN json_valid(new.attributes)
                    THEN new.attributes ELSE '{}' END, '$.output') WHERE type = 'text'
                UNION ALL
                SELECT value FROM json_tree(CASE WHEN json_valid(new.attributes)
                    THEN new.attributes ELSE '{}' END, '$.stdout') WHERE type = 'text')));
    END;
    CREATE TRIGGER fts_spans_update AFTER UPDATE OF name, attributes ON spans BEGIN
        DELETE FROM fts_spans WHERE rowid = old.seq;
        INSERT INTO fts_spans (rowid, name, content) VALUES (new.seq, new.name, (
            SELECT group_concat(value, ' ') FROM (
                SELECT value FROM json_tree(CASE WHEN json_valid(new.attributes)
                    THEN new.attributes ELSE '{}' END, '$.input') WHERE type = 'text'
                UNION ALL
                SELECT value FROM json_tree(CASE WHEN json_valid(new.attributes)
                    THEN new.attributes ELSE '{}' END, '$.output') WHERE type = 'text'
                UNION ALL
                SELECT value FROM json_tree(CASE WHEN json_valid(new.attributes)
                    THEN new.attributes ELSE '{}' END, '$.stdout') WHERE type = 'text')));
    END;
    CREATE TRIGGER fts_spans_delete AFTER DELETE ON spans BEGIN
        DELETE FROM fts_spans WHERE rowid = old.seq;
    END;

    CREATE TRIGGER fts_events_insert AFTER INSERT ON events BEGIN
        INSERT INTO fts_events (rowid, name) VALUES (new.seq, new.name);
    END;
    CREATE TRIGGER fts_events_update AFTER UPDATE OF name ON events BEGIN
        DELETE FROM fts_events WHERE rowid = old.seq;
        INSERT INTO fts_events (rowid, name) VALUES (new.seq, new.name);
    END;
    CREATE TRIGGER fts_events_delete AFTER DELETE ON events BEGIN
        DELETE FROM fts_events WHERE rowid = old.seq;
    END;

    INSERT INTO fts_traces (rowid, name, workflow) SELECT rowid, name, workflow FROM traces;
    INSERT INTO fts_spans (rowid, name, content)
        SELECT seq, name, (
            SELECT group_concat(value, ' ') FROM (
                SELECT value FROM json_tree(CASE WHEN json_valid(attributes)
                    THEN attributes ELSE '{}' END, '$.input') WHERE type = 'text'
                UNION ALL
                SELECT value FROM json_tree(CASE WHEN json_valid(attributes)
                    THEN attributes ELSE '{}' END, '$.output') WHERE type = 'text'
                UNION ALL
                SELECT value FROM json_tree(CASE WHEN json_valid(attributes)
                    THEN attributes ELSE '{}' END, '$.stdout') WHERE type = 'text'))
        FROM spans;
    INSERT INTO fts_events (rowid, name) SELECT seq, name FROM events;
    "#,
    // 5: spans are indexed by whoever writes them, once per transaction (`index_spans`), not
    // by row triggers: FTS5 flushes its pending terms at every statement's savepoint, so a
    // trigger per span row made the end of a 200-branch fan-out spend ~15 ms merging index
    // segments. Deletes still go through `fts_spans_delete`.
    r#"
    DROP TRIGGER fts_spans_insert;
    DROP TRIGGER fts_spans_update;
    "#,
    // 6: experiments (`agentrace eval`) and the run of each case in them. Runs name their trace
    // without a foreign key: `rm` and `prune` delete traces without asking, and the report of
    // an experiment names the cases whose trace is gone. Scores are `gen_ai.evaluation.result`
    // events: the index by name finds them without reading every event of every trace.
    r#"
    CREATE TABLE experiments (
        experiment_id TEXT PRIMARY KEY NOT NULL,
        name          TEXT NOT NULL,
        workflow      TEXT NOT NULL,
        dataset       TEXT NOT NULL,
        dataset_hash  TEXT NOT NULL,
        metadata      TEXT NOT NULL DEFAULT '{}',
        status        TEXT NOT NULL,
        started_at    INTEGER NOT NULL,
        ended_at      INTEGER,
        cases         INTEGER NOT NULL,
        repeats       INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX experiments_by_name ON experiments (name, started_at);
    CREATE INDEX experiments_by_started_at ON experiments (started_at);

    CREATE TABLE experiment_runs (
        experiment_id TEXT NOT NULL
            REFERENCES experiments (experiment_id) ON DELETE CASCADE,
        case_id       TEXT NOT NULL,
        attempt       INTEGER NOT NULL,
        trace_id      TEXT NOT NULL,
        PRIMARY KEY (experiment_id, case_id, attempt)
    );
    CREATE INDEX experiment_runs_by_trace ON experiment_runs (trace_id);

    CREATE INDEX events_by_name ON events (name, trace_id);
    "#,
    // 7: the shards of an experiment run by `eval --shard K/N`, one row per shard that ran (in
    // this store, or in another merged into it): which of how many, how many cases it holds,
    // and how it ended. `eval report` names the shards that have no row. No foreign key to
    // `experiments`' status: each shard keeps its own, the experiment's is derived from them.
    r#"
    CREATE TABLE experiment_shards (
        experiment_id TEXT NOT NULL
            REFERENCES experiments (experiment_id) ON DELETE CASCADE,
        shard         INTEGER NOT NULL,
        shards        INTEGER NOT NULL,
        cases         INTEGER NOT NULL,
        status        TEXT NOT NULL,
        started_at    INTEGER NOT NULL,
        ended_at      INTEGER,
        PRIMARY KEY (experiment_id, shard)
    );
    "#, // 8: a trace's id digits reversed, indexed, so that a suffix of an id (the short id
    // `list` shows: uuid v7 ids are time-ordered, so their prefixes are shared and their tails
    // are random) is found by a range of this index as a prefix is by the primary key's. A
    // virtual column: computed from `trace_id`, nothing to backfill or to keep in step.
    r#"
    ALTER TABLE traces ADD COLUMN reversed_id TEXT GENERATED ALWAYS AS (
            substr(trace_id, 38, 1) || substr(trace_id, 37, 1) || substr(trace_id, 36, 1) || substr(trace_id, 35, 1) ||
            substr(trace_id, 34, 1) || substr(trace_id, 33, 1) || substr(trace_id, 32, 1) || substr(trace_id, 31, 1) ||
            substr(trace_id, 30, 1) || substr(trace_id, 29, 1) || substr(trace_id, 28, 1) || substr(trace_id, 27, 1) ||
            substr(trace_id, 26, 1) || substr(trace_id, 25, 1) || substr(trace_id, 24, 1) || substr(trace_id, 23, 1) ||
            substr(trace_id, 22, 1) || substr(trace_id, 21, 1) || substr(trace_id, 20, 1) || substr(trace_id, 19, 1) ||
            substr(trace_id, 18, 1) || substr(trace_id, 17, 1) || substr(trace_id, 16, 1) || substr(trace_id, 15, 1) ||
            substr(trace_id, 14, 1) || substr(trace_id, 13, 1) || substr(trace_id, 12, 1) || substr(trace_id, 11, 1) ||
            substr(trace_id, 10, 1) || substr(trace_id, 9, 1) || substr(trace_id, 8, 1) || substr(trace_id, 7, 1)
    ) VIRTUAL;
    CREATE INDEX traces_by_reversed_id ON traces (reversed_id);
    "#,
];

/// Brings the search index of the spans with these `seq`s up to date, in two statements
/// whatever their number. Every writer of span rows calls it in the transaction that wrote them.
pub(super) fn index_spans(tx: &rusqlite::Transaction<'_>, seqs: &[i64]) -> rusqlite::Result<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    let list = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached("DELETE FROM fts_spans WHERE rowid IN (SELECT value FROM json_each(?1))")?
        .execute([&list])?;
    tx.prepare_cached(
        "INSERT INTO fts_spans (rowid, name, content)
         SELECT seq, name, (
             SELECT group_concat(value, ' ') FROM (
                 SELECT value FROM json_tree(CASE WHEN json_valid(attributes)
                     THEN attributes ELSE '{}' END, '$.input') WHERE type = 'text'
                 UNION ALL
                 SELECT value FROM json_tree(CASE WHEN json_valid(attributes)
                     THEN attributes ELSE '{}' END, '$.output') WHERE type = 'text'
                 UNION ALL
                 SELECT value FROM json_tree(CASE WHEN json_valid(attributes)
                     THEN attributes ELSE '{}' END, '$.stdout') WHERE type = 'text'))
         FROM spans WHERE seq IN (SELECT value FROM json_each(?1))",
    )?
    .execute([&list])?;
    Ok(())
}

/// [`index_spans`] for spans whose attributes are at hand: the searched text is gathered here
/// from the attributes in memory, exactly as [`index_spans`] gathers it from the stored JSON
/// (the text leaves of `input`, then `output`, then `stdout`, in document order, joined by a
/// space; none is NULL), instead of SQLite parsing every span's attributes six times. Still two
/// statements whatever the number of spans (see migration 5). Ingest, whose batches are all
/// spans, spent about a fifth of its writer's time in those parses.
///
/// `fresh` holds rows that were never indexed (a running span's row, indexed only when it
/// ends): their old entries need no delete, which for a fan-out's spans is every one.
pub(super) fn index_spans_from(
    tx: &rusqlite::Transaction<'_>,
    spans: &[(i64, &crate::trace::Span)],
    fresh: &foldhash::HashSet<i64>,
) -> rusqlite::Result<()> {
    if spans.is_empty() {
        return Ok(());
    }
    // A span written twice in the transaction has one row, as it was written last. In rowid
    // order: FTS5 flushes its pending terms before every rowid lower than the one before, so
    // any other order costs a flush (and merges) per span.
    let mut seen = foldhash::HashSet::default();
    let mut last: Vec<&(i64, &crate::trace::Span)> = spans
        .iter()
        .rev()
        .filter(|(seq, _)| seen.insert(*seq))
        .collect();
    last.sort_unstable_by_key(|(seq, _)| *seq);
    let seqs: Vec<i64> = last
        .iter()
        .map(|(seq, _)| *seq)
        .filter(|seq| !fresh.contains(seq))
        .collect();
    if !seqs.is_empty() {
        let seqs = serde_json::to_string(&seqs).unwrap_or_else(|_| "[]".into());
        tx.prepare_cached(
            "DELETE FROM fts_spans WHERE rowid IN (SELECT value FROM json_each(?1))",
        )?
        .execute([&seqs])?;
    }
    // A statement per span: handing them over as one JSON array cost more in encoding and
    // `json_each`'s parsing than the steps it saved.
    let mut insert =
        tx.prepare_cached("INSERT INTO fts_spans (rowid, name, content) VALUES (?1, ?2, ?3)")?;
    for (seq, span) in last {
        insert.execute(rusqlite::params![
            seq,
            span.name,
            search_text(&span.attributes)
        ])?;
    }
    Ok(())
}

/// The text [`index_spans`] indexes for a span with these attributes.
pub(super) fn search_text(
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    fn leaves<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match value {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    for key in ["input", "output", "stdout"] {
        if let Some(value) = attributes.get(key) {
            leaves(value, &mut texts);
        }
    }
    (!texts.is_empty()).then(|| texts.join(" "))
}

/// Brings `store` up to [`VERSION`]. Another process may be doing the same: the version is read
/// again inside the write transaction.
pub(super) fn migrate(store: &Store) -> Result<(), StoreError> {
    store
        .with_write_tx(|tx| {
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version >= VERSION {
                return Ok(version);
            }
            let from = usize::try_from(version).unwrap_or(0);
            for sql in MIGRATIONS.iter().skip(from) {
                tx.execute_batch(sql)?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
            Ok(version)
        })
        .and_then(|found| {
            if found > VERSION {
                Err(store.too_new(found))
            } else {
                Ok(())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_one_migration_per_version() {
        assert_eq!(MIGRATIONS.len() as i64, VERSION);
    }
}
