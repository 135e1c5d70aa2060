//! `agentrace stats`: count, error rate, p50/p95/max duration, tokens and cost per span name
//! (or agent, model, workflow, kind) over the traces a filter selects.

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::render;
use crate::store::ListFilter;
use crate::store::filter::{parse_since, parse_status, since_ago};
use crate::trace::Status;
use crate::trace::stats::{StatsBy, compute};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    Table,
    Json,
}

/// `--by`: clap's view of [`StatsBy`], which the store defines without clap. The doc comments
/// are the help text of each value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsByArg {
    /// Every span, by its name.
    Name,
    /// Agent spans, by agent.
    Agent,
    /// Model calls (generation spans), by their `model` attribute.
    Model,
    /// Whole traces, by workflow: the unit is the trace, not the span.
    Workflow,
    /// Every span, by its kind.
    Kind,
}

impl From<StatsByArg> for StatsBy {
    fn from(by: StatsByArg) -> StatsBy {
        match by {
            StatsByArg::Name => StatsBy::Name,
            StatsByArg::Agent => StatsBy::Agent,
            StatsByArg::Model => StatsBy::Model,
            StatsByArg::Workflow => StatsBy::Workflow,
            StatsByArg::Kind => StatsBy::Kind,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What a row is: span name, agent, model, workflow (whole traces) or span kind
    #[arg(long, value_enum, default_value_t = StatsByArg::Name)]
    by: StatsByArg,

    /// Only traces of this workflow (the file's top-level `name`)
    #[arg(long, value_name = "NAME")]
    workflow: Option<String>,

    /// Only traces of this group (conversation)
    #[arg(long, value_name = "ID")]
    group: Option<String>,

    /// Only traces with this status: ok, error, cancelled, running
    #[arg(long, value_name = "STATUS", value_parser = parse_status)]
    status: Option<Status>,

    /// Only traces started within this long ago: 30s, 15m, 2h, 7d
    #[arg(long, value_name = "DURATION", value_parser = parse_since)]
    since: Option<i64>,

    /// Only traces the built-in offline model answered (`run --offline`); by default they are
    /// left out, their times and tokens being no measure of a real model
    #[arg(long, conflicts_with = "include_offline")]
    offline: bool,

    /// Count offline traces too
    #[arg(long)]
    include_offline: bool,

    /// At most this many traces, the newest
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    #[arg(long, value_enum, default_value_t = StatsFormat::Table)]
    format: StatsFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = globals.existing_store()?;
    let filter = ListFilter {
        group: args.group,
        workflow: args.workflow,
        status: args.status,
        since: args.since.map(since_ago),
        limit: args.limit,
        offline: match (args.offline, args.include_offline) {
            (true, _) => Some(true),
            (_, true) => None,
            _ => Some(false),
        },
        ..ListFilter::default()
    };
    let by = StatsBy::from(args.by);
    let docs = match &store {
        Some(store) => store.load_many(&filter)?,
        None => Vec::new(),
    };
    // Nothing but offline runs (a first try of the README): say why the table is empty.
    if let (true, false, Some(store), Some(false)) =
        (docs.is_empty(), globals.quiet, &store, filter.offline)
    {
        let offline = ListFilter {
            offline: Some(true),
            limit: Some(1),
            ..filter.clone()
        };
        if !store.list(&offline)?.is_empty() {
            eprintln!("note: offline runs are left out; --include-offline counts them");
        }
    }
    let rows = compute(&docs, by);
    match args.format {
        StatsFormat::Table => print_stdout(&render::stats::stats_table(
            &rows,
            by,
            &globals.stdout_theme(),
            globals.width(),
        )),
        StatsFormat::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&render::stats::stats_json(&rows, by)).unwrap_or_default()
        )),
    }
    Ok(ExitCode::Ok)
}
