//! `agentrace show ID|PREFIX|last`: one stored trace as a tree or as JSON.

use super::{Globals, print_stdout};
use crate::error::{EXIT_OK, Error};
use crate::render;
use crate::store::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Tree,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A trace id, a unique prefix of one, or `last`
    #[arg(value_name = "ID")]
    id: String,

    #[arg(long, value_enum, default_value_t = ShowFormat::Tree)]
    format: ShowFormat,
}

pub fn run(args: Args, globals: &Globals) -> Result<i32, Error> {
    let store = Store::open_existing(&globals.store)?;
    let id = store.resolve(&args.id)?;
    let doc = store.load(id)?;
    match args.format {
        ShowFormat::Tree => print_stdout(&render::tree::tree(
            &doc,
            &globals.stdout_theme(),
            globals.width(),
        )),
        ShowFormat::Json => {
            let json = render::json::trace_doc_json(&doc);
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            ));
        }
    }
    Ok(EXIT_OK)
}
