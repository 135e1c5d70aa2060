//! `agentrace eval compare A B`, and the comparison `eval --baseline NAME` makes at its end
//! (the pairing and the statistics: [`crate::eval::pairing`]).

use crate::cli::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::eval::pairing::compare;
use crate::render::eval_compare::{compare_json, compare_text};
use crate::store::{Experiment, Store};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The baseline experiment (id, id prefix or name)
    #[arg(value_name = "A")]
    a: String,

    /// The experiment compared with it
    #[arg(value_name = "B")]
    b: String,

    /// Exit 1 when B is significantly worse than A on any scorer
    #[arg(long)]
    fail_on_regression: bool,

    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    format: CompareFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = Store::open_existing(&globals.store)?;
    let a = store.find_experiment(&args.a)?;
    let b = store.find_experiment(&args.b)?;
    let (rows, changes) = compare(&store, &a, &b)?;
    match args.format {
        CompareFormat::Text => print_stdout(&compare_text(
            &label(&a),
            &label(&b),
            &rows,
            &changes,
            &globals.stdout_theme(),
            globals.width(),
        )),
        CompareFormat::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string(&compare_json(&a.id, &b.id, &rows, &changes)).unwrap_or_default()
        )),
    }
    Ok(if args.fail_on_regression && rows.iter().any(|r| r.worse) {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    })
}

/// `eval --baseline NAME`: the comparison with the baseline after the report (on stdout under
/// the text format, else on stderr so that stdout stays one JSON document). Whether B is
/// significantly worse on any scorer.
pub(crate) fn against_baseline(
    store: &Store,
    baseline: &str,
    b: &Experiment,
    text_on_stdout: bool,
    globals: &Globals,
) -> Result<bool, Error> {
    let a = store.find_experiment(baseline)?;
    let (rows, changes) = compare(store, &a, b)?;
    let text = compare_text(
        &label(&a),
        &label(b),
        &rows,
        &changes,
        &globals.stdout_theme(),
        globals.width(),
    );
    if text_on_stdout {
        print_stdout(&format!("\n{text}"));
    } else if !globals.quiet {
        eprint!("{text}");
    }
    let worse: Vec<&str> = rows
        .iter()
        .filter(|r| r.worse)
        .map(|r| r.name.as_str())
        .collect();
    if !worse.is_empty() {
        eprintln!(
            "regression against {}: worse on {}",
            a.name,
            worse.join(", ")
        );
    }
    Ok(!worse.is_empty())
}

fn label(e: &Experiment) -> String {
    format!("{} ({})", e.name, e.id)
}
