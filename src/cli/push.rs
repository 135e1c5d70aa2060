//! `agentrace push`: sends what pushing runs (`AGENTRACE_REMOTE`) kept in the spool while the
//! server could not be reached; and what `run` and `eval` share to push: the remote from the
//! flag or the environment, the one warning line when the server is down, and the scratch
//! store a pushing command reads its own results back from.
//!
//! Ingest is idempotent (spans by id, experiments by id, runs by case and attempt), so a record
//! sent twice (a push killed between the server's answer and the spool's rewrite) is stored once.

use std::path::{Path, PathBuf};

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::remote::send::{Failure, client, send};
use crate::remote::spool::Step;
use crate::remote::{Remote, RemoteSink};
use crate::trace::redact;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The `agentrace serve` to send to (its base URL; the token is AGENTRACE_TOKEN) [env:
    /// AGENTRACE_REMOTE]
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

/// The spool: `AGENTRACE_SPOOL`, else `spool.jsonl` beside the default store.
fn spool_path() -> PathBuf {
    match std::env::var_os("AGENTRACE_SPOOL").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => super::default_store().with_file_name("spool.jsonl"),
    }
}

/// The remote that `--remote` or `AGENTRACE_REMOTE` names (`None` when neither does), with
/// `AGENTRACE_TOKEN`. The variable is read here rather than by clap, which counts a value from
/// the environment as given and so printed `--remote <URL>` in every usage error as if it were
/// required (as it did `--store`, see `store_location`).
pub(super) fn remote(flag: Option<&str>) -> Result<Option<Remote>, Error> {
    let from_env = std::env::var("AGENTRACE_REMOTE").ok();
    let Some(url) = flag
        .or(from_env.as_deref())
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let token = std::env::var("AGENTRACE_TOKEN").ok();
    Remote::new(url, token.as_deref(), spool_path())
        .map(Some)
        .map_err(Error::usage)
}

/// What went wrong, for a message: the server, and what it said (never the token).
fn cause(remote: &Remote, failure: &Failure) -> String {
    let url = remote.display_url();
    let reason = redact::redact(failure.message()).into_owned();
    match failure {
        Failure::Unreachable(_) => format!("agentrace serve at {url} cannot be reached ({reason})"),
        Failure::Token(_) if !remote.has_token() => format!(
            "agentrace serve at {url} needs a token ({reason}): set AGENTRACE_TOKEN to the \
             server's token"
        ),
        Failure::Token(_) => format!(
            "agentrace serve at {url} refused the token ({reason}): set AGENTRACE_TOKEN to the \
             server's token"
        ),
        Failure::Refused(_) => format!("agentrace serve at {url} refused a batch ({reason})"),
    }
}

/// The one line a pushing command prints when the server cannot take its records.
fn warning(remote: &Remote, failure: &Failure) -> String {
    format!(
        "warning: {}; the records are kept in {} for `agentrace push` or the next run",
        cause(remote, failure),
        remote.spool.path().display()
    )
}

/// The sink of a pushing command; its first failure is said once on stderr.
fn sink(remote: Remote) -> Result<std::sync::Arc<RemoteSink>, Error> {
    RemoteSink::spawn(remote, |remote, failure| {
        eprintln!("{}", warning(remote, failure));
    })
    .map_err(Error::usage)
}

/// What a pushing command records through: its scratch store (in `globals`) and the sink.
pub(super) struct Pushing {
    pub globals: Globals,
    pub sink: std::sync::Arc<RemoteSink>,
    _scratch: Scratch,
}

/// The scratch store and the sink for `remote`, if any.
pub(super) fn pushing(remote: Option<Remote>, globals: &Globals) -> Result<Option<Pushing>, Error> {
    let Some(remote) = remote else {
        return Ok(None);
    };
    let scratch = Scratch::new()?;
    Ok(Some(Pushing {
        globals: scratch.globals(globals),
        sink: sink(remote)?,
        _scratch: scratch,
    }))
}

/// A private folder for the store a pushing command records into and reads its results back
/// from (the tree, the report, JUnit); removed when dropped. The records themselves go to the
/// server.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "agentrace-push-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(Error::Runtime)?;
        Ok(Scratch { dir })
    }

    /// The options of `globals` with the scratch store in place of the store.
    fn globals(&self, globals: &Globals) -> Globals {
        Globals {
            store: crate::store::Location::Sqlite(self.store()),
            quiet: globals.quiet,
            color: globals.color,
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.join("traces.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let Some(remote) = remote(args.remote.as_deref())? else {
        return Err(Error::usage(
            "push needs a server: --remote URL or AGENTRACE_REMOTE (and AGENTRACE_TOKEN)",
        ));
    };
    let spool = remote.spool.path().to_path_buf();
    let pending = remote.spool.pending().map_err(Error::usage)?;
    if pending == 0 {
        if !globals.quiet {
            print_stdout(&format!("nothing to push: {} is empty\n", shown(&spool)));
        }
        return Ok(ExitCode::Ok);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let client = client(&remote).map_err(Error::usage)?;
    let mut failure: Option<Failure> = None;
    let drained = remote
        .spool
        .drain(
            |record| match runtime.block_on(send(&client, &remote, record)) {
                Ok(()) => Step::Sent,
                Err(f) => {
                    let stops = f.stops();
                    failure.get_or_insert(f);
                    if stops { Step::Stop } else { Step::Keep }
                }
            },
        )
        .map_err(Error::usage)?;
    if !globals.quiet || drained.sent > 0 {
        print_stdout(&format!(
            "pushed {} record(s) ({} spans) to {}\n",
            drained.sent,
            drained.spans,
            remote.display_url()
        ));
    }
    if drained.unreadable > 0 {
        eprintln!(
            "warning: {} line(s) of {} were cut short (a crash while writing) and are dropped",
            drained.unreadable,
            shown(&spool)
        );
    }
    if drained.left > 0 {
        let why = failure
            .as_ref()
            .map(|f| format!(": {}", cause(&remote, f)))
            .unwrap_or_default();
        eprintln!("{} record(s) left in {}{why}", drained.left, shown(&spool));
    }
    Ok(if drained.sent == 0 && drained.left > 0 {
        ExitCode::Failed
    } else {
        ExitCode::Ok
    })
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}
