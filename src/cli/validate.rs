//! `agentrace validate FILE...`: parse and check without running anything. With `--var`, the
//! values are checked as `run` would take them (declared, and JSON of the var's kind for a list
//! or map var), so a CI job can check its command line too.

use std::path::PathBuf;

use super::{Globals, parse_key_value, print_stdout};
use crate::error::{Error, ExitCode};
use crate::workflow;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Workflow files to check
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Check a var as `run --var` would take it (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    vars: Vec<(String, String)>,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let mut code = ExitCode::Ok;
    for file in &args.files {
        match workflow::load(file) {
            Ok(wf) => {
                if let Err(e) = workflow::vars::with_overrides(&wf, &args.vars) {
                    super::report(&Error::usage(e.to_string()));
                    code = ExitCode::Usage;
                    continue;
                }
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
