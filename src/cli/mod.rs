//! The command line: clap types, one file per subcommand, and the one dispatcher.

mod completions;
mod diff;
mod eval;
mod export;
mod github;
mod history;
mod junit;
mod list;
mod merge;
mod prune;
mod push;
mod rm;
mod run;
mod score;
mod serve;
mod show;
mod stats;
mod store_copy;
mod validate;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{Error, ExitCode};
use crate::render::theme::{ColorChoice, Theme};
use crate::store::Location;

/// The heading of the options every subcommand takes, apart from each one's own in `--help`.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "agentrace",
    version,
    about = "Run LLM agent workflows from YAML and keep every run as a nested trace",
    propagate_version = true
)]
pub struct Cli {
    /// The trace store: an SQLite file (a path or sqlite:PATH) or a PostgreSQL database
    /// (postgres://USER@HOST:PORT/DB) [default: $XDG_DATA_HOME/agentrace/traces.db] [env:
    /// AGENTRACE_STORE]
    // Read as text and parsed after clap: clap's own error for a bad value quotes the value,
    // and a URL's password must never reach the terminal. AGENTRACE_STORE is read after clap
    // too (`store_location`): clap counts a value from the environment as given on the
    // command line, so every usage error printed `--store <PATH|URL>` as if it were required,
    // and `--help` printed the value, password and all.
    #[arg(long, global = true, value_name = "PATH|URL", help_heading = GLOBAL)]
    store: Option<String>,

    /// Print nothing but the result
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    quiet: bool,

    /// When to use colour (NO_COLOR is respected under `auto`)
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColorArg::Auto,
        value_name = "WHEN",
        help_heading = GLOBAL
    )]
    color: ColorArg,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow and record its trace(s)
    Run(run::Args),
    /// Check workflow files without running anything
    Validate(validate::Args),
    /// Run a workflow once per case of a dataset and report the scores, as one experiment
    Eval(Box<eval::Args>),
    /// Print one stored trace
    Show(show::Args),
    /// List stored traces, newest first
    List(list::Args),
    /// Export stored traces: OTLP, Perfetto, the OpenAI traces payload, HTML
    Export(export::Args),
    /// Count, error rate, p50/p95/max duration, tokens and cost per span name, agent, model…
    Stats(stats::Args),
    /// Compare two traces span by span: added, removed, slower, costlier, changed outputs
    Diff(diff::Args),
    /// Receive traces (OpenAI Agents SDK, OpenTelemetry) and browse the store in a web UI
    Serve(serve::Args),
    /// Add a person's score to a stored trace (or one of its spans)
    Score(score::Args),
    /// Delete traces with their spans and events
    Rm(rm::Args),
    /// Delete the traces that started before a given age (never one still running)
    Prune(prune::Args),
    /// Move data between stores: `store copy SRC DST`
    Store(store_copy::Args),
    /// Merge stores into one (the shards of an eval run on several machines): idempotent
    Merge(merge::Args),
    /// Send what pushing runs (AGENTRACE_REMOTE) kept while the server was down
    Push(push::Args),
    /// Print a shell completion script: bash, zsh, fish, powershell, elvish
    Completions(completions::Args),
    /// Print the man page (roff), a command's with its name; `--dir` writes one per command
    Man(completions::ManArgs),
}

/// `--color`: clap's view of [`ColorChoice`], which the renderers define without clap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ColorArg {
    Auto,
    Always,
    Never,
}

impl From<ColorArg> for ColorChoice {
    fn from(color: ColorArg) -> ColorChoice {
        match color {
            ColorArg::Auto => ColorChoice::Auto,
            ColorArg::Always => ColorChoice::Always,
            ColorArg::Never => ColorChoice::Never,
        }
    }
}

/// Options every subcommand shares.
pub struct Globals {
    pub store: Location,
    pub quiet: bool,
    pub color: ColorChoice,
}

impl Globals {
    /// The store for a command that reports on what it holds (`list`, `stats`, `prune`): `None`
    /// when nothing was ever recorded there (no file yet, a database without agentrace's
    /// tables), which such a command reports as an empty result, exit 0, creating nothing. A
    /// CI job's first run then reads the same as its later ones.
    pub fn existing_store(&self) -> Result<Option<crate::store::Store>, Error> {
        match crate::store::Store::open_existing(&self.store) {
            Ok(store) => Ok(Some(store)),
            Err(crate::store::StoreError::Empty { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The theme for stdout.
    pub fn stdout_theme(&self) -> Theme {
        Theme::detect(self.color, std::io::stdout().is_terminal())
    }

    /// The zone a table's times are shown in: the system's (`TZ`, else the machine's), as the
    /// web UI shows the browser's; UTC under CI, whose logs are read from anywhere. Only for
    /// people: JSON keeps RFC 3339 in UTC.
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        if crate::render::progress::under_ci() {
            jiff::tz::TimeZone::UTC
        } else {
            jiff::tz::TimeZone::system()
        }
    }

    /// The width to render for: `COLUMNS`, else the terminal's width, else 120 (output to a
    /// pipe or a file is rarely read at a narrow width).
    pub fn width(&self) -> usize {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .or_else(|| {
                terminal_size::terminal_size_of(std::io::stdout())
                    .map(|(terminal_size::Width(w), _)| usize::from(w))
            })
            .filter(|&c| c >= 40)
            .unwrap_or(120)
    }
}

/// `$XDG_DATA_HOME/agentrace/traces.db`, i.e. `~/.local/share/agentrace/traces.db`.
fn default_store() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("agentrace").join("traces.db")
}

/// The environment variable that names the store when `--store` is not given.
const STORE_ENV: &str = "AGENTRACE_STORE";

/// The store `--store` names, else `AGENTRACE_STORE`, else the default. A bad or empty value is
/// a one-line message that names where it came from (and masks a URL's password, see
/// `Location::parse`).
fn store_location(flag: Option<&str>, env: Option<OsString>) -> Result<Location, String> {
    if let Some(text) = flag {
        return Location::parse(text).map_err(|message| format!("--store: {message}"));
    }
    match env {
        None => Ok(Location::Sqlite(default_store())),
        Some(value) => match value.to_str() {
            Some(text) => {
                Location::parse(text).map_err(|message| format!("{STORE_ENV}: {message}"))
            }
            None => Err(format!("{STORE_ENV}: not valid UTF-8")),
        },
    }
}

/// The program: parse arguments, run the subcommand, render any error, return the exit code.
pub fn main_entry() -> i32 {
    crate::workflow::budget::leave_memory_to_the_kernel_at_exit();
    // `.env` never overrides the real environment; a missing file is fine.
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
            let _ = e.print();
            return code.code();
        }
    };
    let store = match store_location(cli.store.as_deref(), std::env::var_os(STORE_ENV)) {
        Ok(store) => store,
        Err(message) => return report(&Error::usage(message)),
    };
    let globals = Globals {
        store,
        quiet: cli.quiet,
        color: cli.color.into(),
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args, &globals),
        Command::Validate(args) => validate::run(args, &globals),
        Command::Eval(args) => eval::run(*args, &globals),
        Command::Show(args) => show::run(args, &globals),
        Command::List(args) => list::run(args, &globals),
        Command::Export(args) => export::run(args, &globals),
        Command::Stats(args) => stats::run(args, &globals),
        Command::Diff(args) => diff::run(args, &globals),
        Command::Serve(args) => serve::run(args, &globals),
        Command::Score(args) => score::run(args, &globals),
        Command::Rm(args) => rm::run(args, &globals),
        Command::Prune(args) => prune::run(args, &globals),
        Command::Store(args) => store_copy::run(args, &globals),
        Command::Merge(args) => merge::run(args, &globals),
        Command::Push(args) => push::run(args, &globals),
        Command::Completions(args) => completions::run(args, &globals),
        Command::Man(args) => completions::run_man(args, &globals),
    };
    match result {
        Ok(code) => code.code(),
        Err(e) => report(&e),
    }
}

/// Prints an error to stderr and gives its exit code.
fn report(e: &Error) -> i32 {
    // A server may have echoed a key into the error: it never reaches the terminal or a log.
    eprint!("{}", crate::trace::redact::redact(&e.render()));
    e.exit_code().code()
}

/// Cores from which a run that fans out gets a worker thread per core.
pub(crate) const MULTI_THREAD_FROM_CORES: usize = 3;

/// The runtime that drives a run's engine. One thread when the run does one thing at a time:
/// its work is waiting on model servers and processes, and one thread saves the cross-thread
/// wake-ups that dominated the per-step cost of sequential runs (the store writes on its own
/// thread; blocking session reads go to tokio's blocking pool). A worker thread per usable core
/// (`available_parallelism`, which taskset and cgroup limits narrow) when it fans out, or
/// evaluates cases at once, on a machine of [`MULTI_THREAD_FROM_CORES`] cores or more: each
/// branch or case is then a task of its own, and what the engine does per branch (spans,
/// templates, request bodies, parsing answers) spreads over the cores. On two cores the store
/// writer's thread already has the second core, and worker threads cost more in wake-ups than
/// they gave (measured: a 2000-wide fan-out at 100 ms took 668 ms on two workers, 587 ms on one
/// thread). `AGENTRACE_WORKER_THREADS=N` sets the number (1: one thread), for measuring.
pub(crate) fn engine_runtime(concurrent: bool) -> Result<tokio::runtime::Runtime, Error> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let workers = match std::env::var("AGENTRACE_WORKER_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        Some(n) => n,
        None if concurrent && cores >= MULTI_THREAD_FROM_CORES => cores,
        None => 1,
    };
    if workers > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(Error::Runtime)
}

/// Descriptors kept free beyond the model connections by [`reserve_fds`]: the store's files,
/// the runtime's, the standard streams, MCP servers' and command steps' pipes.
const FD_MARGIN: usize = 64;

/// Grows this process's table of file descriptors, while the process still has one thread, to
/// hold `connections` sockets and [`FD_MARGIN`] more (at most the open-files limit allows).
///
/// Linux grows the table by doubling as descriptors are opened, and once the process has a
/// second thread each growth waits for an RCU grace period (`synchronize_rcu` in
/// `expand_fdtable`): about 10 ms during which the thread opening the descriptor stops. A
/// 2000-wide fan-out grew it in mid-launch (the store writer's thread is running by then),
/// three of its growths stopping the engine thread for 31 ms in all; grown here, before any
/// thread starts, it costs microseconds (docs/benchmarks.md, "File descriptors"). The table
/// for the default 2000 connections takes 32 KiB; a child process copies only the part in use.
pub(crate) fn reserve_fds(connections: usize) {
    use nix::fcntl::{FcntlArg, fcntl};
    let highest = connections
        .saturating_add(FD_MARGIN)
        .min(crate::llm::openai::open_files_limit().saturating_sub(1));
    let Ok(any) = std::fs::File::open("/dev/null") else {
        return;
    };
    // A duplicate at the highest number makes the kernel size the table for it; closing it
    // leaves the table as large.
    let Ok(highest) = i32::try_from(highest) else {
        return;
    };
    if let Ok(fd) = fcntl(&any, FcntlArg::F_DUPFD_CLOEXEC(highest)) {
        let _ = nix::unistd::close(fd);
    }
}

/// `K=V` for `--var` and `--meta`.
pub(crate) fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Writes to stdout, treating a closed pipe (`| head`) as success rather than a panic.
pub(crate) fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn the_store_is_the_flag_else_the_variable_else_the_default_and_errors_name_the_source() {
        let env = |v: &str| Some(OsString::from(v));
        assert_eq!(
            store_location(Some("a.db"), env("b.db")),
            Ok(Location::Sqlite("a.db".into()))
        );
        assert_eq!(
            store_location(None, env("b.db")),
            Ok(Location::Sqlite("b.db".into()))
        );
        assert_eq!(
            store_location(None, None),
            Ok(Location::Sqlite(default_store()))
        );
        let empty = "the store location is empty: give a path or a postgres:// URL";
        assert_eq!(
            store_location(None, env(" ")),
            Err(format!("AGENTRACE_STORE: {empty}"))
        );
        assert_eq!(
            store_location(Some(""), env("b.db")),
            Err(format!("--store: {empty}"))
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
