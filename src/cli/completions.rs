//! `agentrace completions SHELL` and `agentrace man`: shell completions and roff man pages,
//! generated from the same clap definitions as the parser, so they never drift from it.
//!
//! A packager installs a page per command, as git's and cargo's are: `agentrace man --dir DIR`
//! writes `agentrace.1` (which lists the commands) and `agentrace-<command>.1` for every command,
//! nested ones included (`agentrace-store-copy.1`), each with its own options and the global
//! ones. `agentrace man [COMMAND…]` prints one of them.

use std::path::PathBuf;

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
pub struct ManArgs {
    /// Write every page into DIR (created if missing): agentrace.1 and agentrace-COMMAND.1 for
    /// each command, e.g. agentrace-show.1, agentrace-store-copy.1
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    dir: Option<PathBuf>,

    /// The command whose page to print, e.g. `show` or `store copy` [default: agentrace's own
    /// page, which lists the commands]
    #[arg(value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(args: Args, _globals: &Globals) -> Result<ExitCode, Error> {
    print_stdout(&completions(args.shell));
    Ok(ExitCode::Ok)
}

pub fn run_man(args: ManArgs, _globals: &Globals) -> Result<ExitCode, Error> {
    let pages = man_pages();
    if let Some(dir) = args.dir {
        std::fs::create_dir_all(&dir).map_err(|source| Error::WriteFile {
            path: dir.clone(),
            source,
        })?;
        // Every page is rendered before the first is written; each lands whole or not at all.
        for (name, page) in &pages {
            super::junit::write_atomic(&dir.join(name), page)?;
        }
        return Ok(ExitCode::Ok);
    }
    let name = std::iter::once("agentrace")
        .chain(args.command.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-");
    let file = format!("{name}.1");
    match pages.iter().find(|(f, _)| *f == file) {
        Some((_, page)) => {
            print_stdout(page);
            Ok(ExitCode::Ok)
        }
        None => Err(Error::usage(format!(
            "no command `{}`: `agentrace --help` lists them",
            name.replace('-', " ")
        ))),
    }
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "agentrace", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Every man page as `(file name, roff)`: `agentrace.1` first, then a page per command, nested
/// ones after their parent.
pub fn man_pages() -> Vec<(String, String)> {
    // Built as `clap_mangen::generate_to` builds it, so that a command's page carries the
    // global options and its name reads `agentrace-show`; but into memory, so that nothing is
    // written when a page cannot be made.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    add_pages(cmd, &mut pages);
    pages
}

fn add_pages(cmd: clap::Command, pages: &mut Vec<(String, String)>) {
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    // The footer names the program, not the command: `agentrace 0.1.0`, not `show 0.1.0`.
    let man = clap_mangen::Man::new(cmd).source(format!("agentrace {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    // Rendering into a Vec cannot fail for I/O reasons.
    let _ = man.render(&mut buf);
    pages.push((
        man.get_filename(),
        String::from_utf8_lossy(&buf).into_owned(),
    ));
    for sub in subs {
        add_pages(sub, pages);
    }
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
    fn every_command_has_a_page_with_its_own_options_and_the_global_ones() {
        let pages = man_pages();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "agentrace.1");
        for name in [
            "agentrace-run.1",
            "agentrace-show.1",
            "agentrace-store-copy.1",
            "agentrace-man.1",
        ] {
            assert!(names.contains(&name), "no {name} in {names:?}");
        }
        assert!(!names.contains(&"agentrace-help.1"), "{names:?}");
        let show = &pages
            .iter()
            .find(|(n, _)| n == "agentrace-show.1")
            .unwrap()
            .1;
        assert!(show.contains(".TH agentrace-show 1"), "{show}");
        let footer = format!("\"agentrace {}\"", env!("CARGO_PKG_VERSION"));
        assert!(show.contains(&footer), "{show}");
        assert!(show.contains("\\-\\-format"), "{show}");
        assert!(show.contains(".SH \"GLOBAL OPTIONS\""), "{show}");
        assert!(show.contains("\\-\\-store"), "{show}");
    }

    #[test]
    fn the_man_page_is_roff_and_lists_the_subcommands() {
        let page = man_pages().swap_remove(0).1;
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
