//! `agentrace store copy SRC DST`: everything one store holds, copied into another (see
//! [`crate::store::copy`]): resumable, idempotent, verified, with a table of counts at the end.

use crate::store::Location;

use serde_json::{Map, Value, json};

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::render::counts::counts_table;
use crate::store::Store;
use crate::store::copy::{CopyReport, copy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CountsFormat {
    /// The table of counts
    Text,
    /// One JSON object: per kind, `source`, `copied` and `already_there`
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StoreCommand {
    /// Copy traces (spans, events, scores), conversations and experiments from SRC into DST;
    /// what DST holds already is skipped, so an interrupted copy is finished by running it
    /// again
    Copy(CopyArgs),
}

#[derive(Debug, clap::Args)]
struct CopyArgs {
    /// The store to copy from: a path, sqlite:PATH or postgres://USER@HOST:PORT/DB
    #[arg(value_name = "SRC")]
    src: Location,

    /// The store to copy into (created if it does not exist), in the same forms
    #[arg(value_name = "DST")]
    dst: Location,

    #[arg(long, value_enum, default_value_t = CountsFormat::Text)]
    format: CountsFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    match args.command {
        StoreCommand::Copy(c) => {
            let report = copy_into(&c.src, &c.dst, globals)?;
            print_counts(&report, c.format, globals);
            Ok(ExitCode::Ok)
        }
    }
}

/// Copies the store at `src` into the one at `dst`, with a line on stderr per batch.
pub(crate) fn copy_into(
    src: &Location,
    dst: &Location,
    globals: &Globals,
) -> Result<CopyReport, Error> {
    if same_store(src, dst) {
        return Err(Error::usage(format!("{src} and {dst} are the same store")));
    }
    let from = Store::open_existing(src)?;
    let into = Store::open(dst)?;
    let shown = src.to_string();
    let mut progress = |read: u64| {
        if !globals.quiet {
            eprintln!("{shown}: {read} traces read");
        }
    };
    Ok(copy(&from, &into, &mut progress)?)
}

/// Whether two locations name one store: paths of one file (both exist and are the same
/// inode, or the paths are equal), or equal URLs.
pub(crate) fn same_store(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::Sqlite(a), Location::Sqlite(b)) => {
            match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
                (Ok(a), Ok(b)) => a == b,
                _ => a == b,
            }
        }
        (a, b) => a == b,
    }
}

/// The counts of a copy on stdout: the table, or one JSON object.
pub(crate) fn print_counts(report: &CopyReport, format: CountsFormat, globals: &Globals) {
    match format {
        CountsFormat::Text => {
            let rows: Vec<(&str, [u64; 3])> = report
                .rows()
                .iter()
                .map(|(kind, c)| (*kind, [c.source, c.copied, c.there]))
                .collect();
            print_stdout(&counts_table(
                &rows,
                &globals.stdout_theme(),
                globals.width(),
            ));
        }
        CountsFormat::Json => {
            let mut out = Map::new();
            for (kind, c) in report.rows() {
                out.insert(
                    kind.replace(' ', "_"),
                    json!({"source": c.source, "copied": c.copied, "already_there": c.there}),
                );
            }
            print_stdout(&format!("{}\n", Value::Object(out)));
        }
    }
}
