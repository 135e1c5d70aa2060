//! `agentrace merge a.db b.db … --into all.db`: the stores of the shards of a CI matrix (or any
//! stores) copied into one, like Playwright's `merge-reports`. Each input is a `store copy`
//! into `--into`, so merging is idempotent: merging twice, or inputs that overlap, stores
//! nothing twice. Shards of one experiment that disagree (another dataset, another number of
//! shards) are refused.

use crate::store::Location;

use super::Globals;
use super::store_copy::{CountsFormat, copy_into, print_counts, same_store};
use crate::error::{Error, ExitCode};
use crate::store::copy::{CopyReport, experiment_mismatch};
use crate::store::{Experiment, Store, StoreError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stores to merge (SQLite files, or any store location)
    #[arg(value_name = "STORE", required = true)]
    inputs: Vec<Location>,

    /// The store they are merged into (created if it does not exist): a path, or a team
    /// store's postgres:// URL
    #[arg(long, value_name = "STORE")]
    into: Location,

    #[arg(long, value_enum, default_value_t = CountsFormat::Text)]
    format: CountsFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    // Every input is checked before anything is written.
    for input in &args.inputs {
        if let Location::Sqlite(path) = input
            && !path.is_file()
        {
            return Err(Error::usage(format!(
                "{}: no such store to merge",
                path.display()
            )));
        }
        if same_store(input, &args.into) {
            return Err(Error::usage(format!(
                "{input} is the store merged into (--into); it cannot be an input too"
            )));
        }
    }
    precheck(&args)?;
    let mut total = CopyReport::default();
    for input in &args.inputs {
        let report = copy_into(input, &args.into, globals)?;
        total.merge(&report);
    }
    print_counts(&total, args.format, globals);
    Ok(ExitCode::Ok)
}

/// The experiments of every input (and of `--into`, when it exists) that share an id must be
/// the same experiment: found before the first input is copied, so that a refused merge
/// writes nothing.
fn precheck(args: &Args) -> Result<(), Error> {
    let mut seen: std::collections::HashMap<String, Experiment> = Default::default();
    for location in args.inputs.iter().chain([&args.into]) {
        let store = match Store::open_existing(location) {
            Ok(store) => store,
            // `--into` may not exist yet: it holds nothing to disagree with.
            Err(StoreError::Empty { .. }) if location == &args.into => continue,
            Err(e) => return Err(e.into()),
        };
        for e in store.experiments()? {
            if let Some(first) = seen.get(&e.id) {
                if let Some(why) = experiment_mismatch(first, &e) {
                    return Err(StoreError::ExperimentMismatch {
                        name: e.name.clone(),
                        id: e.id.clone(),
                        why,
                    }
                    .into());
                }
            } else {
                seen.insert(e.id.clone(), e);
            }
        }
    }
    Ok(())
}
