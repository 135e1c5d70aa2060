//! `agentrace validate FILE...`: parse and check without running anything.

use std::path::PathBuf;

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::workflow;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow files to check
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let mut code = ExitCode::Ok;
    for file in &args.files {
        match workflow::load(file) {
            Ok(wf) => {
                if !globals.quiet {
                    let steps = wf.all_steps().len();
                    let traces = wf.traces.len();
                    print_stdout(&format!(
                        "{}: ok ({traces} trace{}, {steps} step{})\n",
                        file.display(),
                        if traces == 1 { "" } else { "s" },
                        if steps == 1 { "" } else { "s" },
                    ));
                }
            }
            Err(e) => {
                super::report(&Error::from(e));
                code = ExitCode::Usage;
            }
        }
    }
    Ok(code)
}
