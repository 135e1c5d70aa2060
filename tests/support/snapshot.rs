//! The filters every snapshot of rendered output goes through (insta, `tests/e2e/snapshots/`):
//! what changes from run to run (ids, times, durations, the test's temp dir) becomes a
//! placeholder, so that a snapshot holds exactly what the output looks like and fails when that
//! changes. Widths are not filtered: each test sets `COLUMNS` itself. A mismatch fails the
//! test (under `CI` nothing is written; elsewhere insta leaves a `.snap.new` beside the snapshot);
//! to accept a change on purpose, run the test with `INSTA_UPDATE=always` (or `cargo insta
//! review`) and review the diff of the `.snap` file like code.

use super::env::TestEnv;

/// The settings with the filters; bind them for the snapshots of a test with
/// `let _filters = snapshot_filters(&env).bind_to_scope();`. `trace_<hex>` → `trace_[ID]`,
/// `span_<16 hex>` → `span_[ID]`, a short id → `[SHORT]`, an RFC 3339 time (or a table's shorter form) → `[TIME]`, a
/// number with a unit of time (`ms`, `µs`, `us`, `s`, `m`; or `<1ms`) → `[DUR]`, the test's directory →
/// `[DIR]`.
#[must_use = "the filters apply once bound"]
pub fn snapshot_filters(env: &TestEnv) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let dir = env.path().to_string_lossy().into_owned();
    settings.add_filter(&regex::escape(&dir), "[DIR]");
    // Whole ids, and the shortened ones of a narrow table.
    settings.add_filter(r"\btrace_[0-9a-f]{6,32}\b", "trace_[ID]");
    settings.add_filter(r"\bspan_[0-9a-f]{16}\b", "span_[ID]");
    // Short ids (tails of the digits): first in a table's row, or in a tree's header.
    settings.add_filter(r"(?m)^[0-9a-f]{6,32}\b", "[SHORT]");
    settings.add_filter(r"(?m)^  [0-9a-f]{6,32} · ", "  [SHORT] · ");
    settings.add_filter(r"(?m)^([AB])  [0-9a-f]{6,32}  ", "$1  [SHORT]  ");
    settings.add_filter(
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?",
        "[TIME]",
    );
    // The table's short form: month-day hour:minute:second.
    settings.add_filter(r"\b\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b", "[TIME]");
    // (`<1ms` too: under a millisecond today, over it on a slower machine; `6 ms` in Markdown)
    settings.add_filter(r"<?\b\d+(\.\d+)? ?(ms|µs|us|s|m)\b", "[DUR]");
    settings
}

/// [`snapshot_filters`] for a table with columns of durations (`list`, `stats`, `diff`): how
/// wide those columns are, and so where every later column starts, varies with the times; so
/// the gap between two columns counts as two spaces however wide it is, and a difference of
/// times (`+12ms +45%`) loses its sign, which timing decides, and a difference too small to
/// show (`=`) reads as one that is not.
#[must_use = "the filters apply once bound"]
pub fn table_filters(env: &TestEnv) -> insta::Settings {
    let mut settings = snapshot_filters(env);
    settings.add_filter(r"[+-]\[DUR\]", "[DUR]");
    settings.add_filter(r"[+-]\d+(\.\d+)?%", "[%]");
    settings.add_filter(r" {2,}", "  ");
    // `diff` prints a time difference under 0.05 ms as `=`: timing decides that too.
    settings.add_filter(r"(?m)(\[DUR\]  \[DUR\])  =(  |$)", "$1  [DUR] [%]$2");
    settings
}
