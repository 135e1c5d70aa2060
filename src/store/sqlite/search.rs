//! `list --search TEXT`: full-text search over what a trace says, with SQLite FTS5.
//!
//! The index lives in three contentless FTS5 tables kept in step by triggers (migration 4 in
//! [`super::schema`]): trace names and workflows, span names with the text of their `input`,
//! `output` and `stdout` attributes, and event names. A trace matches when every word of the
//! search appears somewhere in it (not necessarily in one span), so `refund gpt-4o` finds a trace
//! whose model call mentions a refund. Words are matched as whole tokens, case- and
//! accent-insensitively; a word ending in `*` matches as a prefix. Nothing the user types is
//! parsed as FTS5 syntax: each word becomes a quoted string, so `AND`, `-` or `"` are plain text.

use rusqlite::types::Value as SqlValue;

/// The SQL condition (to be ANDed onto a `traces` query) and its arguments that keep the traces
/// matching `text`; `None` when `text` has no word in it.
pub(super) fn clause(text: &str) -> Option<(String, Vec<SqlValue>)> {
    let queries: Vec<String> = text.split_whitespace().filter_map(fts_query).collect();
    if queries.is_empty() {
        return None;
    }
    let mut sql = String::new();
    let mut args = Vec::new();
    for query in queries {
        sql.push_str(
            " AND traces.trace_id IN (
                SELECT s.trace_id FROM fts_spans JOIN spans AS s ON s.seq = fts_spans.rowid
                WHERE fts_spans MATCH ?
                UNION
                SELECT e.trace_id FROM fts_events JOIN events AS e ON e.seq = fts_events.rowid
                WHERE fts_events MATCH ?
                UNION
                SELECT t.trace_id FROM fts_traces JOIN traces AS t ON t.rowid = fts_traces.rowid
                WHERE fts_traces MATCH ?)",
        );
        for _ in 0..3 {
            args.push(SqlValue::Text(query.clone()));
        }
    }
    Some((sql, args))
}

/// One word of the search as an FTS5 query: a quoted string (inner quotes doubled), followed by
/// `*` when the word ends in one. `None` for a word that is nothing but asterisks.
fn fts_query(word: &str) -> Option<String> {
    let (stem, prefix) = match word.strip_suffix('*') {
        Some(stem) => (stem.trim_end_matches('*'), true),
        None => (word, false),
    };
    if stem.is_empty() {
        return None;
    }
    let quoted = format!("\"{}\"", stem.replace('"', "\"\""));
    Some(if prefix {
        format!("{quoted} *")
    } else {
        quoted
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::ListFilter;
    use crate::store::sqlite::stats::tests::{Fixture, obj};
    use crate::trace::{Event, SpanKind, StartedSpan, Status, Timestamp};
    use serde_json::json;

    #[test]
    fn words_become_quoted_fts_strings() {
        assert_eq!(fts_query("refund").as_deref(), Some("\"refund\""));
        assert_eq!(fts_query("ref*").as_deref(), Some("\"ref\" *"));
        assert_eq!(fts_query("a\"b").as_deref(), Some("\"a\"\"b\""));
        assert_eq!(fts_query("AND").as_deref(), Some("\"AND\""));
        assert_eq!(fts_query("**"), None);
        assert!(clause("   ").is_none());
    }

    #[test]
    fn fts5_is_compiled_in() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let on: bool = conn
            .query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(on, "the bundled SQLite must have FTS5");
    }

    fn search(f: &Fixture, text: &str) -> Vec<String> {
        let filter = ListFilter {
            search: Some(text.into()),
            ..ListFilter::default()
        };
        let store = f.open();
        let mut names: Vec<String> = store
            .list(&filter)
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        names.sort();
        names
    }

    #[test]
    fn search_finds_names_contents_and_events_and_follows_writes() {
        let mut f = Fixture::new();
        let a = f.trace("Refunds", "Support", 0, Status::Ok);
        let mut g = f.span(
            &a,
            None,
            SpanKind::Generation,
            "gpt-4o-mini",
            0,
            10,
            Status::Ok,
        );
        g.attributes = obj(json!({
            "input": [{"role": "user", "content": "Where is my parcel?"}],
            "output": "The parcel left Zürich yesterday",
        }));
        let mut cmd = f.span(&a, None, SpanKind::Command, "inventory", 10, 20, Status::Ok);
        cmd.attributes = obj(json!({"argv": ["secretword"], "stdout": "42 units"}));
        cmd.events.push(Event {
            name: "Stock counted".into(),
            time: Timestamp(f.t0 + 15),
            attributes: obj(json!({"sku": "hidden"})),
        });
        f.add(a, vec![g, cmd]);
        let b = f.trace("Nightly", "Batch", 0, Status::Ok);
        let s = f.span(&b, None, SpanKind::Custom, "Cleanup", 0, 5, Status::Ok);
        f.add(b, vec![s]);
        f.write();

        assert_eq!(search(&f, "parcel"), ["Refunds"]);
        assert_eq!(search(&f, "zurich"), ["Refunds"], "accents and case fold");
        assert_eq!(search(&f, "units"), ["Refunds"]);
        assert_eq!(search(&f, "counted"), ["Refunds"]);
        assert_eq!(search(&f, "cleanup"), ["Nightly"]);
        assert_eq!(search(&f, "batch"), ["Nightly"]);
        assert_eq!(search(&f, "parc*"), ["Refunds"]);
        assert_eq!(search(&f, "parcel nightly"), Vec::<String>::new());
        assert_eq!(
            search(&f, "parcel refunds"),
            ["Refunds"],
            "words may be in different spans"
        );
        assert!(search(&f, "secretword").is_empty(), "argv is not indexed");
        assert!(
            search(&f, "hidden").is_empty(),
            "event attributes are not indexed"
        );
        assert!(search(&f, "\"AND").is_empty(), "syntax is plain text");

        // Deleting a trace takes its index rows with it.
        let store = f.open();
        let refunds = store.resolve(&f.ids[0].to_string()).unwrap();
        store.delete(&[refunds]).unwrap();
        assert!(search(&f, "parcel").is_empty());
        let rows: i64 = store
            .as_sqlite()
            .conn
            .query_row(
                "SELECT (SELECT count(*) FROM fts_spans) + (SELECT count(*) FROM fts_events)
                      + (SELECT count(*) FROM fts_traces)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(rows, 2, "one trace row and one span row are left");
    }

    #[test]
    fn a_span_is_indexed_when_it_ends_and_once_however_often_it_is_written() {
        use crate::store::StoreWriter;
        let mut f = Fixture::new();
        let t = f.trace("Long", "Flow", 0, Status::Running);
        let running = f.span(&t, None, SpanKind::Agent, "drafter", 0, 0, Status::Running);
        let writer = StoreWriter::spawn(crate::store::Store::open(&f.path).unwrap());
        let sink = writer.sink();
        sink.trace_started(&t);
        sink.span_started(&StartedSpan::of(running.clone()));
        writer.flush().unwrap();
        assert_eq!(
            search(&f, "long"),
            ["Long"],
            "a running trace is found by its name"
        );

        let mut done = running.clone();
        done.status = Status::Ok;
        done.ended_at = Some(Timestamp(f.t0 + 10));
        done.attributes = obj(json!({"output": "first draft"}));
        sink.span_ended(&Arc::new(done.clone()));
        writer.flush().unwrap();
        assert_eq!(search(&f, "draft"), ["Long"]);
        assert_eq!(search(&f, "drafter"), ["Long"]);

        // Written again with new content (as an ingest retry would): the old words go.
        done.attributes = obj(json!({"output": "final text"}));
        sink.span_ended(&Arc::new(done.clone()));
        writer.close().unwrap();
        assert_eq!(search(&f, "final"), ["Long"]);
        assert!(search(&f, "draft").is_empty());
        let store = f.open();
        let rows: i64 = store
            .as_sqlite()
            .conn
            .query_row("SELECT count(*) FROM fts_spans", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "one index row per span");
    }

    #[test]
    fn the_migration_indexes_rows_written_before_it() {
        let mut f = Fixture::new();
        let a = f.trace("Old", "Old Flow", 0, Status::Ok);
        let mut g = f.span(&a, None, SpanKind::Agent, "writer", 0, 10, Status::Ok);
        g.attributes = obj(json!({"output": "ancient words"}));
        f.add(a, vec![g]);
        f.write();
        let store = f.open_sqlite();
        // Forget the index, as a version-3 store would have none, and migrate again.
        store
            .conn
            .execute_batch(
                "DELETE FROM fts_spans; DELETE FROM fts_traces; DELETE FROM fts_events;
                 DROP TRIGGER fts_traces_insert; DROP TRIGGER fts_traces_update;
                 DROP TRIGGER fts_traces_delete; DROP TRIGGER IF EXISTS fts_spans_insert;
                 DROP TRIGGER IF EXISTS fts_spans_update; DROP TRIGGER fts_spans_delete;
                 DROP TRIGGER fts_events_insert; DROP TRIGGER fts_events_update;
                 DROP TRIGGER fts_events_delete;
                 DROP TABLE fts_spans; DROP TABLE fts_traces; DROP TABLE fts_events;
                 DROP TABLE experiment_shards; DROP TABLE experiment_runs; DROP TABLE experiments;
                 DROP INDEX events_by_name;
                 DROP INDEX traces_by_reversed_id; ALTER TABLE traces DROP COLUMN reversed_id;
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        drop(store);
        assert_eq!(search(&f, "ancient"), ["Old"]);
        assert_eq!(search(&f, "flow"), ["Old"]);
    }
}
