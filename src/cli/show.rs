//! `agentrace show ID|PREFIX|last`: one stored trace as a tree with a waterfall, or as JSON;
//! `show --group ID`: the traces of one conversation in start order, with the gaps between them.

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::render;
use crate::render::tree::TreeOptions;
use crate::store::{Experiment, Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Tree,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A trace id, a unique prefix or suffix of one (the short id `list` shows), or `last` (the
    /// newest trace recorded by `run`); or
    /// an experiment (`exp_` id, prefix or name) to print its report
    #[arg(
        value_name = "ID",
        required_unless_present = "group",
        conflicts_with = "group"
    )]
    id: Option<String>,

    /// Show every trace of this group (conversation), in start order
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,

    /// Hide spans deeper than N (top-level spans are depth 1); hidden children are counted
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    depth: Option<u32>,

    /// Show inputs and outputs under each span, wrapped to the width: what is new in each
    /// model call (its system prompt and user message, then the tool results) and the tool
    /// calls it made, each message cut to 8 lines
    #[arg(long)]
    content: bool,

    /// Show content in full: every message of each model call, nothing cut (implies --content)
    #[arg(long)]
    full: bool,

    /// Leave span events out
    #[arg(long)]
    no_events: bool,

    /// `json` prints one object (a JSON array of them with --group)
    #[arg(long, value_enum, default_value_t = ShowFormat::Tree)]
    format: ShowFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = Store::open_existing(&globals.store)?;
    let docs = match (&args.group, &args.id) {
        (Some(group), _) => store.load_group(group)?,
        (None, Some(id)) => match store.find(id) {
            Ok(doc) => vec![doc],
            // Not a trace: an experiment, by id, prefix or name.
            Err(e @ (StoreError::NotFound { .. } | StoreError::BadId { .. })) => {
                let Ok(experiment) = store.find_experiment(id) else {
                    return Err(e.into());
                };
                return show_experiment(&store, &experiment, args.format, globals);
            }
            Err(e) => return Err(e.into()),
        },
        (None, None) => Vec::new(),
    };
    let opts = TreeOptions {
        depth: args.depth.map(|d| d as usize),
        content: args.content || args.full,
        full: args.full,
        events: !args.no_events,
        // Only the tree prints them; JSON keeps full ids.
        short_ids: match args.format {
            ShowFormat::Tree => store.short_ids(docs.iter().map(|d| d.trace.trace_id)),
            ShowFormat::Json => Default::default(),
        },
    };
    match args.format {
        ShowFormat::Tree => {
            let theme = globals.stdout_theme();
            let text = match docs.as_slice() {
                [doc] if args.group.is_none() => {
                    render::tree::tree_with(doc, &theme, globals.width(), &opts)
                }
                docs => render::tree::group(docs, &theme, globals.width(), &opts),
            };
            print_stdout(&text);
        }
        ShowFormat::Json => {
            use std::io::{IsTerminal, Write};
            // Streamed straight to stdout: pretty for a person at a terminal, compact (and
            // several times faster on big traces) for scripts and pipes.
            let stdout = std::io::stdout();
            let pretty = stdout.is_terminal();
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let docs: Vec<render::json::DocJson<'_>> =
                docs.iter().map(render::json::DocJson).collect();
            let written = match (docs.as_slice(), pretty) {
                ([doc], true) if args.group.is_none() => {
                    serde_json::to_writer_pretty(&mut out, doc)
                }
                ([doc], false) if args.group.is_none() => serde_json::to_writer(&mut out, doc),
                (docs, true) => serde_json::to_writer_pretty(&mut out, docs),
                (docs, false) => serde_json::to_writer(&mut out, docs),
            };
            // A closed pipe (`| head`) is not an error worth reporting.
            if written.is_ok() {
                let _ = writeln!(out);
                let _ = out.flush();
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// `show EXPERIMENT`: the experiment's report, as `eval` prints it at its end.
fn show_experiment(
    store: &Store,
    experiment: &Experiment,
    format: ShowFormat,
    globals: &Globals,
) -> Result<ExitCode, Error> {
    let (info, results) = crate::eval::report::stored_report(store, experiment)?;
    match format {
        ShowFormat::Tree => print_stdout(&render::eval::report_text(
            &info,
            &results,
            &globals.stdout_theme(),
            globals.width(),
        )),
        ShowFormat::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string(&render::eval::report_json(&info, &results)).unwrap_or_default()
        )),
    }
    Ok(ExitCode::Ok)
}
