//! `agentrace eval compare A B`.

use crate::cli::Globals;
use crate::error::{Error, ExitCode};
use crate::store::{Experiment, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The baseline experiment (id, id prefix or name)
    #[arg(value_name = "A")]
    a: String,
    /// The experiment compared with it
    #[arg(value_name = "B")]
    b: String,
}

pub fn run(_args: Args, _globals: &Globals) -> Result<ExitCode, Error> {
    Ok(ExitCode::Ok)
}

pub(crate) fn against_baseline(
    _store: &Store,
    _baseline: &str,
    _b: &Experiment,
    _globals: &Globals,
) -> Result<bool, Error> {
    Ok(false)
}
