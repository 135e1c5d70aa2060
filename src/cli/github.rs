//! GitHub Actions outputs of `run`: a Markdown summary appended to `$GITHUB_STEP_SUMMARY`, and,
//! under `GITHUB_ACTIONS=true`, one `::error` workflow command per failed step (`::warning` for a
//! step with `continue_on_error`) pointing at the step's line in the workflow file — or at the
//! failing check of an `expect:`.
//!
//! The commands go to stderr: stdout carries only the result, and the Actions runner reads
//! workflow commands from both streams of a step's process.

use std::io::Write;

use crate::engine::RunOutcome;
use crate::trace::{Status, TraceDoc};

use super::junit::step_rows;

/// A workflow command's message (`%`, CR and LF escaped).
pub(crate) fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value (also `:` and `,`).
pub(crate) fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The annotations of a run, one line each.
pub fn annotations(file: &str, outcome: &RunOutcome) -> String {
    let mut out = String::new();
    for failure in outcome.traces.iter().flat_map(|t| &t.failures) {
        let command = if failure.continued {
            "warning"
        } else {
            "error"
        };
        out.push_str(&format!(
            "::{command} file={},line={},col={},title={}::{}\n",
            escape_property(file),
            failure.loc.line,
            failure.loc.col,
            escape_property(&failure.title),
            escape_data(&failure.message)
        ));
    }
    out
}

/// A Markdown table cell: one line, pipes escaped.
pub(crate) fn cell(s: &str) -> String {
    let one_line = s.replace("\r\n", " ").replace(['\n', '\r'], " ");
    let cut: String = if one_line.chars().count() > 300 {
        one_line.chars().take(299).chain(['…']).collect()
    } else {
        one_line
    };
    cut.replace('|', "\\|")
}

fn icon(status: Status) -> &'static str {
    match status {
        Status::Ok => "✅",
        Status::Error => "❌",
        Status::Skipped => "⏭️",
        Status::Cancelled => "⏹️",
        Status::Running => "⏳",
    }
}

fn seconds(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// The step summary of a run: per trace a heading with its status, a line with duration, tokens
/// and cost, and a table of its steps with their failure messages.
pub fn summary(file: &str, docs: &[TraceDoc]) -> String {
    let mut out = String::new();
    for doc in docs {
        let t = &doc.trace;
        out.push_str(&format!(
            "### {} agentrace: {} — {}\n\n",
            icon(t.status),
            cell(&t.name),
            t.status
        ));
        let cost = match t.cost_usd {
            _ if t.is_offline() => "none (offline)".to_string(),
            Some(c) => format!("${c:.6}"),
            None => "unknown".to_string(),
        };
        out.push_str(&format!(
            "`{}` · **{}** · duration {} · {} tokens ({} in, {} out) · cost {} · `{}`\n\n",
            cell(file),
            t.status,
            seconds(t.duration_ms().unwrap_or(0.0)),
            t.usage.total_tokens,
            t.usage.input_tokens,
            t.usage.output_tokens,
            cost,
            t.trace_id
        ));
        let rows = step_rows(doc);
        if rows.is_empty() {
            continue;
        }
        out.push_str("| step | status | duration | tokens | message |\n");
        out.push_str("|---|---|---:|---:|---|\n");
        for row in rows {
            out.push_str(&format!(
                "| {} | {} {} | {} | {} | {} |\n",
                cell(&row.name),
                icon(row.status),
                row.status,
                seconds(row.duration_ms),
                row.tokens,
                cell(row.message.as_deref().unwrap_or(""))
            ));
        }
        out.push('\n');
    }
    out
}

/// Appends `text` to the file `$GITHUB_STEP_SUMMARY` names; a failure is a warning.
pub fn append_summary(path: &std::path::Path, text: &str) {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = result {
        eprintln!(
            "warning: cannot append the step summary to {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_as_github_requires() {
        assert_eq!(escape_data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn table_cells_stay_on_one_line() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
