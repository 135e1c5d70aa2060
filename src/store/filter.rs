//! What `list`, `stats` and `GET /api/traces` select, and how their filters are read from text.
//!
//! The command line and the JSON API take the same filters with the same messages and the same
//! limits; they live here, beside the query that uses them, so that neither front-end has to
//! borrow the other's parsing (serve once imported it from cli, an arrow up the layers).

use crate::trace::{Status, Timestamp, TraceId};

/// The most words a search takes, and the most `--meta` filters: each becomes its own subquery,
/// and thousands of them overflow SQLite's expression limits (a store error, not the user's).
pub const MAX_SEARCH_WORDS: usize = 32;
pub const MAX_META_FILTERS: usize = 32;

/// What `list` selects. Every field narrows the result; the default selects everything.
#[derive(Default, Clone, Debug)]
pub struct ListFilter {
    pub group: Option<String>,
    pub workflow: Option<String>,
    pub status: Option<Status>,
    /// `--meta K=V`: the metadata value under K, as text, equals V.
    pub meta: Vec<(String, String)>,
    /// Traces started at or after this time.
    pub since: Option<Timestamp>,
    /// Traces started before this time.
    pub until: Option<Timestamp>,
    pub limit: Option<usize>,
    /// `--search TEXT`: every word appears in the trace's name, workflow, span names, span
    /// inputs and outputs, or event names (SQLite matches them in `store/sqlite/search.rs`).
    pub search: Option<String>,
    /// `Some(true)`: only traces the offline model answered ([`crate::trace::model::META_OFFLINE`]);
    /// `Some(false)`: only the others.
    pub offline: Option<bool>,
    /// A page's cursor: only traces after this one in list order (newest first), i.e. started
    /// before it, or at the same time with a smaller id.
    pub after: Option<(Timestamp, TraceId)>,
}

/// The cursor that continues a list after `trace`: `MICROS.TRACE_ID`.
pub fn cursor_of(trace: &crate::trace::Trace) -> String {
    format!("{}.{}", trace.started_at.micros(), trace.trace_id)
}

/// A cursor made by [`cursor_of`].
pub fn parse_cursor(text: &str) -> Result<(Timestamp, TraceId), String> {
    let bad = || format!("cursor: {text:?} is not a cursor this server gave");
    let (micros, id) = text.split_once('.').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let id = TraceId::parse(id).ok_or_else(bad)?;
    Ok((Timestamp(micros), id))
}

impl ListFilter {
    /// The filter from `key=value` pairs (the query string of `GET /api/traces`). Unknown keys
    /// are an error, not ignored, so a typo does not silently select everything; empty values
    /// are skipped, and a search without a word selects everything. `limit` is taken as given:
    /// the caller picks its default and its bounds.
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ListFilter, String> {
        let mut filter = ListFilter::default();
        for (key, value) in pairs {
            let value = value.trim().to_string();
            if value.is_empty() && key != "search" {
                continue;
            }
            match key.as_str() {
                "workflow" => filter.workflow = Some(value),
                "group" => filter.group = Some(value),
                "status" => {
                    filter.status = Some(parse_status(&value)?);
                }
                "meta" => {
                    let (k, v) = value
                        .split_once('=')
                        .ok_or_else(|| format!("meta: expected KEY=VALUE, got {value:?}"))?;
                    filter.meta.push((k.to_string(), v.to_string()));
                }
                "search" => {
                    if has_search_word(&value) {
                        filter.search = Some(value);
                    }
                }
                "since" => {
                    filter.since = Some(since_ago(parse_since(&value)?));
                }
                "from" => filter.since = Some(timestamp("from", &value)?),
                "until" => filter.until = Some(timestamp("until", &value)?),
                "cursor" => filter.after = Some(parse_cursor(&value)?),
                "offline" => {
                    filter.offline = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("offline: expected true or false, got {value:?}")),
                    });
                }
                "limit" => {
                    let n: usize = value
                        .parse()
                        .map_err(|_| format!("limit: {value:?} is not a number"))?;
                    filter.limit = Some(n);
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?}: use workflow, group, status, meta, search, \
                         since, from, until, offline, limit or cursor"
                    ));
                }
            }
        }
        filter.check_counts()?;
        Ok(filter)
    }

    /// Refuses a filter with more search words or metadata filters than the list query takes;
    /// the same limits for `list` and `GET /api/traces`.
    pub fn check_counts(&self) -> Result<(), String> {
        let words = self
            .search
            .as_deref()
            .map_or(0, |s| s.split_whitespace().count());
        if words > MAX_SEARCH_WORDS {
            return Err(format!(
                "too many search words ({words}): at most {MAX_SEARCH_WORDS}"
            ));
        }
        if self.meta.len() > MAX_META_FILTERS {
            return Err(format!(
                "too many metadata filters ({}): at most {MAX_META_FILTERS}",
                self.meta.len()
            ));
        }
        Ok(())
    }
}

/// Whether a search text has a word left once `*` wildcards are taken off: `*` alone would
/// match everything.
pub fn has_search_word(text: &str) -> bool {
    text.split_whitespace()
        .any(|w| !w.trim_matches('*').is_empty())
}

/// The moment `micros` microseconds ago (for `--since` / `since=`).
pub fn since_ago(micros: i64) -> Timestamp {
    Timestamp(Timestamp::now().micros() - micros)
}

/// A status a filter can select: every one but `skipped`, which only spans have.
pub fn parse_status(s: &str) -> Result<Status, String> {
    match Status::parse(s) {
        Some(status) if status != Status::Skipped => Ok(status),
        _ => Err(format!(
            "unknown status `{s}`: use ok, error, cancelled or running"
        )),
    }
}

/// A duration like `2h`, `90m`, `7d`, `1h30m`, `2w`, `1mo`, `1y`, in microseconds. Days and
/// weeks are 24-hour days; months and years are calendar units, counted back from now in the
/// local time zone (`1mo` on 31 March reaches back to 28 or 29 February), as "in the last
/// month" means to a person.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let help =
        "use a number and a unit: s, m, h, d, w, mo or y (e.g. 30s, 15m, 2h, 7d, 2w, 1mo, 1y)";
    let span: jiff::Span = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration `{s}`: {help}"))?;
    if span.is_negative() {
        return Err(format!("invalid duration `{s}`: must not be negative"));
    }
    let too_far = |_| format!("invalid duration `{s}`: too far back; {help}");
    if span.get_years() == 0 && span.get_months() == 0 {
        // Days and weeks are 24-hour days, as they always were here.
        let micros = span
            .total((
                jiff::Unit::Microsecond,
                jiff::SpanRelativeTo::days_are_24_hours(),
            ))
            .map_err(too_far)?;
        return Ok(micros as i64);
    }
    let now = jiff::Zoned::now();
    let cutoff = now.checked_sub(span).map_err(too_far)?;
    Ok(now.timestamp().as_microsecond() - cutoff.timestamp().as_microsecond())
}

/// An RFC 3339 time given as filter `name`.
fn timestamp(name: &str, value: &str) -> Result<Timestamp, String> {
    value
        .parse::<jiff::Timestamp>()
        .map(|t| Timestamp(t.as_microsecond()))
        .map_err(|e| format!("{name}: {value:?} is not an RFC 3339 time ({e})"))
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
        // Calendar units count back from now: a year is 365 or 366 days (give or take a
        // daylight-saving hour), a month 28 to 31.
        let day = 86_400 * 1_000_000;
        let year = parse_since("1y").unwrap();
        assert!(
            (365 * day - 3_600_000_000..=366 * day + 3_600_000_000).contains(&year),
            "{year}"
        );
        let month = parse_since("1mo").unwrap();
        assert!(
            (28 * day - 3_600_000_000..=31 * day + 3_600_000_000).contains(&month),
            "{month}"
        );
        assert_eq!(parse_since("2w").unwrap(), 14 * day);
        // What is wrong is said plainly, without the date library's internals.
        for bad in ["soon", "5 parsecs", "-2h"] {
            let e = parse_since(bad).unwrap_err();
            assert!(!e.contains("jiff") && !e.contains("SpanRelativeTo"), "{e}");
        }
        assert!(parse_since("soon").unwrap_err().contains("mo or y"));
        assert!(parse_since("-2h").unwrap_err().contains("negative"));
    }
}
