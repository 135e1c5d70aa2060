//! `agentrace list`: stored traces, newest first, as a table or JSON.

use super::{Globals, parse_key_value, print_stdout};
use crate::error::{Error, ExitCode};
use crate::render;
use crate::store::ListFilter;
use crate::store::filter::{has_search_word, parse_since, parse_status, since_ago};
use crate::trace::Status;

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

    /// Only traces the built-in offline model answered (`run --offline`)
    #[arg(long, conflicts_with = "no_offline")]
    offline: bool,

    /// Only traces answered by real models (or with no model calls), not offline ones
    #[arg(long)]
    no_offline: bool,

    /// List experiments (`agentrace eval`) instead of traces, newest first
    #[arg(long, conflicts_with_all = ["group", "workflow", "status", "meta", "since", "search", "offline", "no_offline"])]
    experiments: bool,

    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    if args.experiments {
        return list_experiments(&args, globals);
    }
    if let Some(text) = &args.search
        && !has_search_word(text)
    {
        return Err(Error::usage("--search needs at least one word"));
    }
    let filter = ListFilter {
        group: args.group,
        workflow: args.workflow,
        status: args.status,
        meta: args.meta,
        since: args.since.map(since_ago),
        until: None,
        limit: Some(args.limit),
        search: args.search,
        offline: offline_filter(args.offline, args.no_offline),
        after: None,
    };
    filter.check_counts().map_err(Error::usage)?;
    let store = globals.existing_store()?;
    let traces = match &store {
        Some(store) => store.list(&filter)?,
        None => Vec::new(),
    };
    match args.format {
        ListFormat::Table => print_stdout(&render::table::trace_table(
            &traces,
            &globals.stdout_theme(),
            globals.width(),
            &globals.time_zone(),
            &|t| {
                store
                    .as_ref()
                    .and_then(|s| s.short_id(t.trace_id).ok())
                    .unwrap_or_else(|| t.trace_id.to_string())
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
    Ok(ExitCode::Ok)
}

/// `list --experiments`: the experiments, newest first.
fn list_experiments(args: &Args, globals: &Globals) -> Result<ExitCode, Error> {
    let experiments = match globals.existing_store()? {
        Some(store) => store.experiments()?,
        None => Vec::new(),
    };
    let infos: Vec<render::eval::ExperimentInfo> = experiments
        .iter()
        .take(args.limit)
        .map(crate::eval::report::stored_info)
        .collect();
    match args.format {
        ListFormat::Table => print_stdout(&render::eval::experiment_table(
            &infos,
            &globals.stdout_theme(),
            globals.width(),
            &globals.time_zone(),
        )),
        ListFormat::Json => {
            let items: Vec<serde_json::Value> =
                infos.iter().map(render::eval::experiment_json).collect();
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&items).unwrap_or_default()
            ));
        }
    }
    Ok(ExitCode::Ok)
}

/// `--offline` / `--no-offline` as a filter: only offline traces, only the others, or all.
fn offline_filter(only: bool, none: bool) -> Option<bool> {
    match (only, none) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}
