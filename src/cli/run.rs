//! `agentrace run FILE`: validate, resolve model access, then run and record the trace(s).
//!
//! Nothing is written before the workflow is valid and model access is settled, so bad input
//! never leaves a half-written store. The one write before that is the claim of a joined
//! `TRACEPARENT`'s trace id, which the engine's options need; a refused run gives it back.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{Globals, parse_key_value, print_stdout};
use crate::engine::{Engine, RunOptions, RunOutcome, StreamFn};
use crate::error::{Error, ExitCode};
use crate::export::otlp;
use crate::llm::replay::Recording;
use crate::render;
use crate::store::{Store, StoreWriter};
use crate::trace::context::TraceContext;
use crate::trace::{Sink, Status, TraceDoc, TraceId, redact};
use crate::workflow;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunFormat {
    /// The trace tree
    Tree,
    /// One JSON object per trace, one per line
    Json,
    /// Nothing (the exit code says how it went)
    None,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The workflow file
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Override a declared var (repeatable)
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    vars: Vec<(String, String)>,

    /// The group id (conversation) of the traces; overrides the file's `group_id`
    #[arg(long, value_name = "ID")]
    group: Option<String>,

    /// Add or override trace metadata (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    meta: Vec<(String, String)>,

    /// Use the built-in deterministic offline model: no network, no key
    #[arg(long)]
    offline: bool,

    /// Keep prompts and outputs out of the store
    #[arg(long)]
    no_content: bool,

    /// Answer every model call from the model calls recorded in this trace (id, prefix or
    /// `last`): no network, no key. Repeat it for each trace of a multi-trace workflow
    #[arg(long, value_name = "TRACE_ID", conflicts_with = "offline")]
    replay: Vec<String>,

    /// Show agents' text on stderr as it streams from the model
    #[arg(long)]
    stream: bool,

    /// At most N model calls in flight at once across the run
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,

    /// Stop the run once its model calls have used more than N tokens
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,

    /// Stop the run once its model calls have cost more than USD (from the price table)
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,

    #[arg(long, value_enum, default_value_t = RunFormat::Tree)]
    format: RunFormat,

    /// Write a JUnit XML report to FILE: a testsuite per trace, a testcase per step
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Record through this `agentrace serve` (its base URL; the token is AGENTRACE_TOKEN)
    /// instead of the store; kept in a local spool while it cannot be reached [env:
    /// AGENTRACE_REMOTE]
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let wf = workflow::load(&args.file)?;
    if wf.fans_out() {
        // Before any thread starts (the remote sink's, the store writer's, the runtime's).
        super::reserve_fds(crate::engine::models::most_connections(&wf));
    }
    let remote = super::push::remote(args.remote.as_deref())?;
    // -- W3C trace context (OTLP export): join the caller's trace when TRACEPARENT is valid.
    let trace_context = TraceContext::from_env();
    if trace_context.is_none() && std::env::var_os("TRACEPARENT").is_some_and(|v| !v.is_empty()) {
        eprintln!(
            "warning: TRACEPARENT is not a valid W3C traceparent; the run starts its own trace"
        );
    }
    // -- Replay: the recorded trace is found and read before anything runs.
    let replay = if args.replay.is_empty() {
        None
    } else {
        Some(Arc::new(load_replay(&args.replay, globals)?))
    };
    let mut meta = args.meta;
    if let Some(recording) = &replay {
        let ids: Vec<String> = recording
            .trace_ids()
            .iter()
            .map(ToString::to_string)
            .collect();
        meta.push((REPLAY_OF.to_string(), ids.join(",")));
    }
    // -- Claim first: a trace id is unique in a store, so a second run under the same
    // TRACEPARENT links instead of joining. Claimed atomically, so that of runs started at the
    // same instant only one joins, and before the engine is built, so that it is built with
    // complete options. Without a trace context the store is opened only once the engine is
    // built: bad input then leaves no store behind. A pushing run cannot check the claim (the
    // server may be down, and another runner may push the same id later): it always starts a
    // trace of its own and links to the caller's, so that two runs never share a trace row.
    let (store, claim) = match &trace_context {
        Some(_) if remote.is_some() => (None, None),
        Some(c) => {
            let store = Store::open(&globals.store)?;
            let id = c.parent.trace_id;
            let claimed = store.claim_trace_id(id, &wf.name.value)?;
            (Some(store), Some((id, claimed)))
        }
        None => (None, None),
    };
    let links = remote.is_some() && trace_context.is_some();
    let options = RunOptions {
        vars: args.vars,
        group: args.group,
        meta,
        offline: args.offline,
        replay,
        no_content: args.no_content,
        max_concurrency: args.max_concurrency,
        max_tokens: args.max_tokens,
        max_cost_usd: args.max_cost,
        trace_context,
        trace_id_taken: claim.is_some_and(|(_, claimed)| !claimed) || links,
        case: None,
    };
    let engine = match build_engine(wf, options, globals) {
        Ok(engine) => engine,
        Err(e) => {
            if let (Some(store), Some((id, true))) = (&store, claim) {
                // Bad input after a won claim: the placeholder row and the run lock go, so
                // nothing half-written stays and a later run can join. Should that fail too,
                // the input's error is the one to show; readers close the placeholder as a
                // dead run's once its lock is free.
                let _ = store.release_trace_id(id);
            }
            return Err(e);
        }
    };
    // -- A pushing run records into a scratch store, which the tree and the CI outputs read
    // back, and through the remote sink to the server; the store stays untouched.
    let pushing = super::push::pushing(remote, globals)?;
    let local = pushing.as_ref().map_or(globals, |p| &p.globals);
    let pusher = pushing.as_ref().map(|p| p.sink.clone());
    let store = match store {
        Some(store) => store,
        None => Store::open(&local.store)?,
    };
    let printer = Arc::new(Mutex::new(StreamPrinter::default()));
    let engine = if args.stream {
        engine.with_text_stream(stream_printer(printer.clone()))
    } else {
        engine
    };
    let writer = StoreWriter::spawn(store);
    let mut sinks: Vec<Arc<dyn Sink>> = vec![writer.sink()];
    if let Some(pusher) = &pusher {
        sinks.push(pusher.clone());
    }
    if let Some(progress) = render::progress::sink(globals.quiet, args.stream, globals.color) {
        sinks.push(progress);
    }
    let runtime = super::engine_runtime(engine.fans_out())?;
    let engine = Arc::new(engine);
    let outcome = runtime.block_on(drive(&engine, sinks));
    // The runtime's teardown (closing every connection of a wide fan-out) and the store's
    // final write take milliseconds each: they overlap. The engine stays here: its sessions'
    // store connection must close after the writer's, so that the last one to close (which
    // checkpoints the WAL away) is not left to a race between two threads.
    let teardown = std::thread::Builder::new()
        .name("agentrace-teardown".into())
        .spawn(move || runtime.shutdown_background());
    if args.stream {
        printer.lock().unwrap_or_else(|p| p.into_inner()).finish();
    }
    let closed = writer.close();
    if let Some(pusher) = &pusher {
        // Waits for the last batch (or its spool); a failure was said on stderr already.
        pusher.close();
    }
    if let Ok(teardown) = teardown {
        let _ = teardown.join();
    }
    closed?;

    let mut finished = Finished::new(&outcome, local);
    match args.format {
        RunFormat::Tree => {
            let theme = globals.stdout_theme();
            // The header's short id, as `show` prints it; a pushing run's local store is a
            // scratch one, where a tail is unique only among its own traces.
            let opts = render::tree::TreeOptions {
                short_ids: if pushing.is_some() {
                    HashMap::new()
                } else {
                    finished.short_ids()
                },
                ..Default::default()
            };
            let mut out = String::new();
            for doc in finished.docs()? {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&render::tree::tree_with(
                    doc,
                    &theme,
                    globals.width(),
                    &opts,
                ));
            }
            print_stdout(&out);
        }
        RunFormat::Json => {
            let mut out = String::new();
            for t in &outcome.traces {
                let mut json = render::json::run_json(&t.trace, &t.outputs);
                // The outputs are the steps' own values, not read back from the store: a key a
                // server echoed into an answer is taken out here too.
                redact::redact_value(&mut json);
                out.push_str(&serde_json::to_string(&json).unwrap_or_default());
                out.push('\n');
            }
            print_stdout(&out);
        }
        RunFormat::None => {}
    }
    // -- OTLP export at the end of the run (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT): the traces
    // are stored by now, so a failure is only a warning.
    auto_export(&outcome, &mut finished);
    // -- CI outputs (JUnit XML, GitHub step summary and annotations), whatever the outcome.
    ci_outputs(&args.file, args.junit.as_deref(), &outcome, &mut finished)?;
    // Say why a failed run failed, even under --quiet: the exit code alone does not.
    if outcome.status == Status::Error
        && let Some(error) = outcome.traces.last().and_then(|t| t.trace.error.as_ref())
    {
        eprintln!("error: {}", error.message);
    }
    Ok(match outcome.status {
        Status::Ok => ExitCode::Ok,
        Status::Cancelled => ExitCode::Interrupted,
        _ => ExitCode::Failed,
    })
}

/// The engine for `wf`, with the store for `session:` conversations when it keeps any. Fails
/// on input errors (exit code 2) before anything of the run is written.
fn build_engine(
    wf: workflow::Workflow,
    options: RunOptions,
    globals: &Globals,
) -> Result<Engine, Error> {
    let engine = Engine::new(wf, options)?;
    Ok(if engine.uses_sessions() {
        // A second connection: conversations are read and written while the writer thread
        // records spans.
        engine.with_sessions(Arc::new(Mutex::new(Store::open(&globals.store)?)))
    } else {
        engine
    })
}

/// The run's traces as stored, read back once, and only if something after the run needs them
/// (the tree, the CI outputs, the OTLP export): `--format none` alone reads nothing.
struct Finished<'a> {
    outcome: &'a RunOutcome,
    globals: &'a Globals,
    store: Option<Store>,
    docs: Option<Vec<TraceDoc>>,
}

impl<'a> Finished<'a> {
    fn new(outcome: &'a RunOutcome, globals: &'a Globals) -> Self {
        Finished {
            outcome,
            globals,
            store: None,
            docs: None,
        }
    }

    /// The store the run wrote, opened once for everything read back from it.
    fn store(&mut self) -> Result<&Store, Error> {
        let store = match self.store.take() {
            Some(store) => store,
            None => Store::open_existing(&self.globals.store)?,
        };
        Ok(self.store.insert(store))
    }

    /// The short id of each trace of the run, as `show` prints it; none when the store
    /// cannot say.
    fn short_ids(&mut self) -> HashMap<TraceId, String> {
        let ids: Vec<TraceId> = self
            .outcome
            .traces
            .iter()
            .map(|t| t.trace.trace_id)
            .collect();
        self.store().map(|s| s.short_ids(ids)).unwrap_or_default()
    }

    fn docs(&mut self) -> Result<&[TraceDoc], Error> {
        let docs = match self.docs.take() {
            Some(docs) => docs,
            None => {
                let outcome = self.outcome;
                let store = self.store()?;
                outcome
                    .traces
                    .iter()
                    .map(|t| store.load(t.trace.trace_id))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(self.docs.insert(docs))
    }
}

/// `--junit FILE`, `$GITHUB_STEP_SUMMARY` and, under `GITHUB_ACTIONS=true`, annotations of the
/// failed steps on stderr (see `junit.rs` and `github.rs`).
fn ci_outputs(
    file: &std::path::Path,
    junit: Option<&std::path::Path>,
    outcome: &RunOutcome,
    finished: &mut Finished<'_>,
) -> Result<(), Error> {
    let label = file.display().to_string();
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        eprint!("{}", super::github::annotations(&label, outcome));
    }
    let summary = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if junit.is_none() && summary.is_none() {
        return Ok(());
    }
    let docs = finished.docs()?;
    if let Some(path) = &summary {
        super::github::append_summary(path, &super::github::summary(&label, docs));
    }
    if let Some(path) = junit {
        let workflow = docs
            .first()
            .map_or(label.as_str(), |d| d.trace.workflow.as_str());
        super::junit::write(path, workflow, docs)?;
    }
    Ok(())
}

/// Pushes the run's traces to the OTLP endpoint the environment names, if any. Never fails the
/// run: a problem is a warning that says how to retry.
fn auto_export(outcome: &RunOutcome, finished: &mut Finished<'_>) {
    let Some(config) = otlp::PushConfig::auto_from_env() else {
        return;
    };
    let ids: Vec<String> = outcome
        .traces
        .iter()
        .map(|t| t.trace.trace_id.to_string())
        .collect();
    if ids.is_empty() {
        return;
    }
    let retry = format!(
        "the trace is stored, run `agentrace export {} --otlp` to retry",
        ids.join(" ")
    );
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "warning: OTLP export skipped: {}; {retry}",
                redact::redact(&e)
            );
            return;
        }
    };
    let quiet = finished.globals.quiet;
    let result = finished
        .docs()
        .map_err(|e| e.to_string())
        .and_then(|docs| otlp::push_blocking(docs, &config));
    match result {
        Ok(delivered) => {
            if let Some(warning) = delivered.rejection(&config) {
                eprintln!("warning: {warning}");
            } else if !quiet {
                eprintln!(
                    "exported {} spans to {}",
                    delivered.spans,
                    config.display_url()
                );
            }
        }
        Err(e) => eprintln!(
            "warning: OTLP export to {} failed: {}; {retry}",
            config.display_url(),
            redact::redact(&e)
        ),
    }
}

/// The trace metadata key that names the trace(s) a replay answered from (comma-separated).
pub const REPLAY_OF: &str = "agentrace.replay_of";

/// `--replay ID...`: the model calls recorded in those traces (exit 2 when one is unknown or was
/// recorded without content).
fn load_replay(ids: &[String], globals: &Globals) -> Result<Recording, Error> {
    let store = Store::open_existing(&globals.store)
        .map_err(|e| Error::usage(format!("--replay {}: {e}", ids.join(" "))))?;
    let mut docs = Vec::with_capacity(ids.len());
    for id in ids {
        let doc = store
            .find(id)
            .map_err(|e| Error::usage(format!("--replay {id}: {e}")))?;
        if docs
            .iter()
            .any(|d: &crate::trace::TraceDoc| d.trace.trace_id == doc.trace.trace_id)
        {
            return Err(Error::usage(format!(
                "--replay {id}: {} is given twice",
                doc.trace.trace_id
            )));
        }
        docs.push(doc);
    }
    Ok(Recording::from_traces(&docs)?)
}

/// Prints agent text to stderr as it arrives, with the agent's name when the speaker changes,
/// and never a key a server echoed into it.
#[derive(Default)]
struct StreamPrinter {
    speaker: Option<String>,
    redactor: redact::StreamRedactor,
}

impl StreamPrinter {
    fn print(&mut self, agent: &str, delta: &str) {
        let mut err = std::io::stderr().lock();
        if delta.is_empty() {
            // The answer is over: what was held back in case it began a key is shown now.
            let _ = write!(err, "{}", self.redactor.finish());
            let _ = err.flush();
            return;
        }
        if self.speaker.as_deref() != Some(agent) {
            let _ = write!(err, "{}\n[{agent}] ", self.redactor.finish());
            self.speaker = Some(agent.to_string());
        }
        let _ = write!(err, "{}", self.redactor.push(delta));
        let _ = err.flush();
    }

    fn finish(&mut self) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", self.redactor.finish());
    }
}

fn stream_printer(printer: Arc<Mutex<StreamPrinter>>) -> Arc<StreamFn> {
    Arc::new(move |agent: &str, delta: &str| {
        printer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .print(agent, delta);
    })
}

pub(super) async fn next(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Runs the engine; SIGINT or SIGTERM cancels it (open spans close as `cancelled`), a second
/// SIGINT exits at once.
async fn drive(engine: &Arc<Engine>, sinks: Vec<Arc<dyn Sink>>) -> RunOutcome {
    let cancel = CancellationToken::new();
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let run = engine.run(sinks, cancel.clone());
    tokio::pin!(run);
    loop {
        tokio::select! {
            outcome = &mut run => {
                engine.shutdown().await;
                return outcome;
            }
            () = next(&mut sigint) => {
                if cancel.is_cancelled() {
                    eprintln!("interrupted again: exiting now");
                    crate::llm::mcp::kill_all_now();
                    std::process::exit(ExitCode::Interrupted.code());
                }
                eprintln!("interrupted: cancelling the run (Ctrl-C again to exit at once)");
                cancel.cancel();
            }
            () = next(&mut sigterm) => {
                eprintln!("terminated: cancelling the run");
                cancel.cancel();
            }
        }
    }
}
