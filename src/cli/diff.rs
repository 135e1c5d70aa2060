//! `agentrace diff A B`: two stored traces compared span by span (matched by their path of
//! names). A difference is information, not a failure: the exit code is 0.

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::render;
use crate::render::diff::TraceDiff;
use crate::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The earlier trace: an id, a unique prefix or suffix of one (the short id `list` shows), or `last`
    #[arg(value_name = "A")]
    a: String,

    /// The later trace: an id, a unique prefix or suffix of one (the short id `list` shows), or `last`
    #[arg(value_name = "B")]
    b: String,

    /// Also show a line diff of the outputs (`output`, `stdout`) of matched spans that differ
    #[arg(long)]
    content: bool,

    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    format: DiffFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = Store::open_existing(&globals.store)?;
    let a = store.find(&args.a)?;
    let b = store.find(&args.b)?;
    let diff = TraceDiff::new(&a, &b, args.content);
    match args.format {
        DiffFormat::Table => {
            let short = |doc: &crate::trace::TraceDoc| {
                let id = doc.trace.trace_id;
                store.short_id(id).unwrap_or_else(|_| id.to_string())
            };
            let ids = [short(&a), short(&b)];
            print_stdout(&render::diff::diff_table(
                &diff,
                &globals.stdout_theme(),
                globals.width(),
                [&ids[0], &ids[1]],
            ))
        }
        DiffFormat::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&render::diff::diff_json(&diff)).unwrap_or_default()
        )),
    }
    Ok(ExitCode::Ok)
}
