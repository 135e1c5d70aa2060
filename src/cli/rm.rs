//! `agentrace rm ID...`: deletes traces with their spans, events and search index rows, all in
//! one transaction. Every id is resolved first, so an unknown one deletes nothing (exit 2).

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::store::Store;
use crate::trace::Status;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace ids, unique prefixes or suffixes of them (the short ids `list` shows), or `last`
    #[arg(value_name = "ID", required = true)]
    ids: Vec<String>,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = Store::open_existing(&globals.store)?;
    let mut ids = Vec::with_capacity(args.ids.len());
    for text in &args.ids {
        let id = store.resolve(text)?;
        // Loading closes a run that died; one still going would write spans into a trace
        // that no longer exists.
        if store.load(id)?.trace.status == Status::Running {
            return Err(Error::usage(format!(
                "trace {id} is still running; nothing was deleted"
            )));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    store.delete(&ids)?;
    let mut out = String::new();
    for id in &ids {
        out.push_str(&format!("deleted {id}\n"));
    }
    print_stdout(&out);
    Ok(ExitCode::Ok)
}
