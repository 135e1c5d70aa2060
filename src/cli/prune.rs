//! `agentrace prune --older-than 30d [--dry-run]`: deletes the traces that started before then,
//! except those still running. The store file does not shrink: SQLite reuses the freed pages.

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::store::filter::{parse_since, since_ago};
use crate::trace::TraceId;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Delete traces that started longer ago than this: 12h, 30d, 8w
    #[arg(long, value_name = "DURATION", value_parser = parse_since, required = true)]
    older_than: i64,

    /// Print what would be deleted, and delete nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = globals.existing_store()?;
    let cutoff = since_ago(args.older_than);
    let old = match &store {
        Some(store) => store.prunable(cutoff)?,
        None => Vec::new(),
    };
    let when = cutoff.to_rfc3339();
    let mut out = String::new();
    if args.dry_run {
        for t in &old {
            out.push_str(&format!(
                "{}  {}  {}\n",
                t.trace_id,
                t.started_at.to_rfc3339(),
                t.name
            ));
        }
        out.push_str(&format!(
            "would delete {} trace{} started before {when}\n",
            old.len(),
            plural(old.len())
        ));
    } else {
        let ids: Vec<TraceId> = old.iter().map(|t| t.trace_id).collect();
        let deleted = match &store {
            Some(store) => store.prune(&ids)?,
            None => 0,
        };
        out.push_str(&format!(
            "deleted {deleted} trace{} started before {when}\n",
            plural(deleted)
        ));
    }
    print_stdout(&out);
    Ok(ExitCode::Ok)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
