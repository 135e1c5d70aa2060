//! `agentrace list`: stored traces, newest first, as a table or JSON.

use super::{Globals, parse_key_value, print_stdout};
use crate::error::{EXIT_OK, Error};
use crate::render;
use crate::store::{ListFilter, Store};
use crate::trace::{Status, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only traces of this group (conversation)
    #[arg(long, value_name = "ID")]
    group: Option<String>,

    /// Only traces of this workflow (the file's top-level `name`)
    #[arg(long, value_name = "NAME")]
    workflow: Option<String>,

    /// Only traces with this status: ok, error, cancelled, running
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<Status>,

    /// Only traces whose metadata has KEY=VALUE (repeatable; all must match)
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    meta: Vec<(String, String)>,

    /// Only traces started within this long ago: 30s, 15m, 2h, 7d
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    since: Option<i64>,

    /// At most this many traces
    #[arg(long, value_name = "N", default_value_t = 50)]
    limit: usize,

    /// Only traces that mention every word of TEXT in their name, span names, inputs, outputs
    /// or event names (full-text; `word*` matches a prefix)
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,

    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

/// The most words a search takes, and the most `--meta` filters: each becomes its own subquery,
/// and thousands of them overflow SQLite's expression limits (a store error, not the user's).
pub(crate) const MAX_SEARCH_WORDS: usize = 32;
pub(crate) const MAX_META_FILTERS: usize = 32;

/// Refuses a filter with more search words or metadata filters than the list query takes; the
/// same limits for `list` and `GET /api/traces`.
pub(crate) fn check_filter_counts(filter: &ListFilter) -> Result<(), String> {
    let words = filter
        .search
        .as_deref()
        .map_or(0, |s| s.split_whitespace().count());
    if words > MAX_SEARCH_WORDS {
        return Err(format!(
            "too many search words ({words}): at most {MAX_SEARCH_WORDS}"
        ));
    }
    if filter.meta.len() > MAX_META_FILTERS {
        return Err(format!(
            "too many metadata filters ({}): at most {MAX_META_FILTERS}",
            filter.meta.len()
        ));
    }
    Ok(())
}

pub(crate) fn parse_status(s: &str) -> Result<Status, String> {
    match Status::parse(s) {
        Some(status) if status != Status::Skipped => Ok(status),
        _ => Err(format!(
            "unknown status `{s}`: use ok, error, cancelled or running"
        )),
    }
}

/// A duration like `2h`, `90m`, `7d`, `1h30m`, in microseconds.
pub(crate) fn parse_since(s: &str) -> Result<i64, String> {
    let span: jiff::Span = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{s}`: use e.g. 30s, 15m, 2h, 7d"))?;
    let micros = span
        .total((
            jiff::Unit::Microsecond,
            jiff::SpanRelativeTo::days_are_24_hours(),
        ))
        .map_err(|e| format!("invalid duration `{s}`: {e}"))?;
    if micros < 0.0 {
        return Err(format!("invalid duration `{s}`: must not be negative"));
    }
    Ok(micros as i64)
}

pub fn run(args: Args, globals: &Globals) -> Result<i32, Error> {
    if let Some(text) = &args.search
        && !text
            .split_whitespace()
            .any(|w| !w.trim_matches('*').is_empty())
    {
        return Err(Error::usage("--search needs at least one word"));
    }
    let filter = ListFilter {
        group: args.group,
        workflow: args.workflow,
        status: args.status,
        meta: args.meta,
        since: args
            .since
            .map(|micros| Timestamp(Timestamp::now().micros() - micros)),
        until: None,
        limit: Some(args.limit),
        search: args.search,
    };
    check_filter_counts(&filter).map_err(Error::usage)?;
    let store = Store::open_existing(&globals.store)?;
    let traces = store.list(&filter)?;
    match args.format {
        ListFormat::Table => print_stdout(&render::table::trace_table(
            &traces,
            &globals.stdout_theme(),
            globals.width(),
            // 12 hex digits are a uuid v7's millisecond; most ids are unique by then.
            &|t| {
                store
                    .short_id(t.trace_id, 12)
                    .unwrap_or_else(|_| t.trace_id.to_string())
            },
        )),
        ListFormat::Json => {
            let items: Vec<serde_json::Value> =
                traces.iter().map(render::json::summary_json).collect();
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&items).unwrap_or_default()
            ));
        }
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_friendly_durations() {
        assert_eq!(parse_since("2h").unwrap(), 2 * 3600 * 1_000_000);
        assert_eq!(parse_since("7d").unwrap(), 7 * 86_400 * 1_000_000);
        assert_eq!(parse_since("1h30m").unwrap(), 5400 * 1_000_000);
        assert!(parse_since("soon").is_err());
    }
}
