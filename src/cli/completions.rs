//! `agentrace completions SHELL` and `agentrace man`: shell completions and a roff man page,
//! generated from the same clap definitions as the parser, so they never drift from it.

use clap::CommandFactory;

use super::{Cli, Globals, print_stdout};
use crate::error::{Error, ExitCode};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for
    #[arg(value_enum, value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn run(args: Args, _globals: &Globals) -> Result<ExitCode, Error> {
    print_stdout(&completions(args.shell));
    Ok(ExitCode::Ok)
}

pub fn run_man(_args: ManArgs, _globals: &Globals) -> Result<ExitCode, Error> {
    print_stdout(&man_page());
    Ok(ExitCode::Ok)
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "agentrace", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The roff man page, `agentrace(1)`, with the subcommands listed.
pub fn man_page() -> String {
    let mut buf = Vec::new();
    // Rendering into a Vec cannot fail for I/O reasons.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_subcommands() {
        use clap::ValueEnum;
        for shell in clap_complete::Shell::value_variants() {
            let script = completions(*shell);
            for sub in ["run", "stats", "diff", "prune", "completions"] {
                assert!(script.contains(sub), "{shell} completions lack {sub}");
            }
        }
    }

    #[test]
    fn the_man_page_is_roff_and_lists_the_subcommands() {
        let page = man_page();
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
        assert!(page.contains(".TH agentrace 1"));
        for sub in ["run", "show", "stats", "diff", "rm", "prune", "man"] {
            assert!(
                page.contains(&format!("agentrace\\-{sub}")),
                "man page lacks {sub}"
            );
        }
    }
}
