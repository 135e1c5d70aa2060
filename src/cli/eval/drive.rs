//! Running the cases of an experiment: `-j N` at once on one tokio runtime, each an engine of
//! its own (its case in [`RunOptions::case`]) recording through one store writer, under the
//! experiment's budgets and its cap on model calls in flight; Ctrl-C cancels them all.
//!
//! A case's run is recorded in the experiment only when it ran to its end (ok or error), by the
//! writer and after its trace's close: a case cut short by Ctrl-C or `kill -9` has no run, and
//! `--resume` runs it again.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::Job;
use crate::cli::Globals;
use crate::cli::run::next;
use crate::engine::{CaseInput, Engine, RunOptions};
use crate::error::{Error, ExitCode};
use crate::render::eval::{CaseResult, live_line, plain_case_line};
use crate::render::progress::under_ci;
use crate::store::experiment::{CASE_KEY, EXPERIMENT_KEY};
use crate::store::{Experiment, ExperimentRun, ExperimentStatus, Store, StoreWriter};
use crate::trace::score::Score;
use crate::trace::{Sink, Span, StartedSpan, Status, Trace};
use crate::workflow::Workflow;

/// What bounds an experiment as a whole, and where its runs go besides the store.
pub(crate) struct Limits {
    pub jobs: usize,
    pub max_concurrency: Option<u32>,
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    /// The remote sink of a pushing eval (`AGENTRACE_REMOTE`).
    pub push: Option<Arc<dyn Sink>>,
}

/// How the runs of this process ended.
pub(crate) struct Ended {
    pub status: ExperimentStatus,
    /// Why it stopped early (a budget).
    pub reason: Option<String>,
}

/// The options of one case's run: the command line's, the case, and the metadata that ties its
/// trace to the experiment.
pub(crate) fn case_options(base: &RunOptions, experiment: &str, job: &Job) -> RunOptions {
    let mut meta = base.meta.clone();
    meta.push((EXPERIMENT_KEY.to_string(), experiment.to_string()));
    meta.push((CASE_KEY.to_string(), job.case.id.clone()));
    meta.push(("eval.attempt".to_string(), job.attempt.to_string()));
    // The case's vars go to the engine typed, through `case` (over the workflow's defaults).
    RunOptions {
        meta,
        case: Some(CaseInput {
            id: job.case.id.clone(),
            vars: job.case.vars.clone(),
            reference: job.case.reference.clone(),
        }),
        ..base.clone()
    }
}

/// Collects the scores of a run as its spans end, for the live line.
#[derive(Default)]
struct ScoreTap {
    scores: Mutex<Vec<Score>>,
}

impl Sink for ScoreTap {
    fn trace_started(&self, _: &Trace) {}
    fn span_started(&self, _: &Arc<StartedSpan>) {}
    fn span_ended(&self, span: &Arc<Span>) {
        let found: Vec<Score> = span.events.iter().filter_map(Score::from_event).collect();
        if !found.is_empty() {
            self.scores
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(found);
        }
    }
    fn trace_ended(&self, _: &Trace) {}
}

/// What the runs so far have done, for the budgets and the live line.
#[derive(Default)]
struct Tally {
    done: u64,
    passed: u64,
    tokens: u64,
    cost_usd: Option<f64>,
    stopped: Option<String>,
}

struct Ctx<'a> {
    /// The engine every case's is made from: the workflow parsed, its schemas compiled and its
    /// model clients (with their connection pools) built once for all the cases.
    prototype: Engine,
    experiment: &'a Experiment,
    base: &'a RunOptions,
    limits: &'a Limits,
    writer: &'a StoreWriter,
    /// The remote sink of a pushing eval.
    push: Option<Arc<dyn Sink>>,
    limiter: Option<Arc<tokio::sync::Semaphore>>,
    cancel: CancellationToken,
    tally: Mutex<Tally>,
    total: u64,
    plain: bool,
    repeat: u32,
}

impl Ctx<'_> {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The budgets left for the next case; `None` when one is spent.
    fn remaining(&self) -> Option<(Option<u64>, Option<f64>)> {
        let mut t = self.tally();
        let tokens = self.limits.max_tokens.map(|m| m.saturating_sub(t.tokens));
        let cost = self
            .limits
            .max_cost_usd
            .map(|m| m - t.cost_usd.unwrap_or(0.0));
        let spent = if tokens == Some(0) {
            Some(format!(
                "the experiment's budget of {} tokens is spent",
                self.limits.max_tokens.unwrap_or(0)
            ))
        } else if cost.is_some_and(|c| c <= 0.0) {
            Some(format!(
                "the experiment's budget of ${} is spent",
                self.limits.max_cost_usd.unwrap_or(0.0)
            ))
        } else {
            None
        };
        if let Some(reason) = spent {
            t.stopped.get_or_insert(reason);
            return None;
        }
        Some((tokens, cost))
    }
}

/// Runs one case to its end and records its run; `None` when it did not run (cancelled, a
/// budget spent).
async fn run_case(ctx: &Ctx<'_>, job: Job) -> Option<()> {
    if ctx.cancel.is_cancelled() {
        return None;
    }
    let (tokens, cost) = ctx.remaining()?;
    let mut options = case_options(ctx.base, &ctx.experiment.id, &job);
    options.max_tokens = tokens;
    options.max_cost_usd = cost;
    let started = Instant::now();
    let mut result = CaseResult {
        case_id: job.case.id.clone(),
        attempt: job.attempt,
        trace_id: None,
        status: Some(Status::Error),
        missing: false,
        error: None,
        duration_ms: None,
        tokens: 0,
        cost_usd: None,
        scores: Vec::new(),
    };
    match ctx.prototype.for_case(options) {
        Err(e) => {
            // Checked on the first case before anything ran; a later case cannot differ, but
            // should one, it fails alone.
            result.error = Some(e.to_string());
        }
        Ok(mut engine) => {
            if ctx.limiter.is_some() {
                engine.limiter = ctx.limiter.clone();
            }
            let tap = Arc::new(ScoreTap::default());
            let mut sinks: Vec<Arc<dyn Sink>> = vec![ctx.writer.run_sink(), tap.clone()];
            sinks.extend(ctx.push.clone());
            // A child token: a case that stops itself (its budget) must not stop the others.
            // The case runs as a task of its own, on whichever worker thread is free; dropped
            // (the experiment interrupted), it is aborted, as its future would be.
            let engine = Arc::new(engine);
            let cancel = ctx.cancel.child_token();
            let task = tokio::spawn(async move { engine.run(sinks, cancel).await });
            let outcome = crate::engine::join_task(task).await?;
            let trace = outcome.traces.first().map(|t| &t.trace)?;
            if outcome.status == Status::Cancelled || trace.status == Status::Cancelled {
                return None;
            }
            ctx.writer.record_run(ExperimentRun {
                experiment: ctx.experiment.id.clone(),
                case_id: job.case.id.clone(),
                attempt: job.attempt,
                trace_id: trace.trace_id,
            });
            result.trace_id = Some(trace.trace_id);
            result.status = Some(trace.status);
            result.error = trace
                .error
                .as_ref()
                .map(|e| e.message.lines().next().unwrap_or("").to_string());
            result.duration_ms = trace.duration_ms();
            result.tokens = trace.usage.total_tokens;
            result.cost_usd = trace.cost_usd;
            result.scores =
                std::mem::take(&mut *tap.scores.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }
    if result.duration_ms.is_none() {
        result.duration_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    }
    let line = {
        let mut t = ctx.tally();
        t.done += 1;
        t.passed += u64::from(result.passed());
        t.tokens += result.tokens;
        if let Some(c) = result.cost_usd {
            t.cost_usd = Some(t.cost_usd.unwrap_or(0.0) + c);
        }
        plain_case_line(t.done, ctx.total, &result, ctx.repeat)
    };
    if ctx.plain {
        eprintln!("{line}");
    }
    Some(())
}

/// Runs `todo`, each case an engine made from `prototype`, and waits until every record of the
/// writer is committed.
pub(crate) fn drive(
    prototype: Engine,
    wf: &Workflow,
    experiment: &Experiment,
    todo: Vec<Job>,
    limits: &Limits,
    base: &RunOptions,
    globals: &Globals,
) -> Result<Ended, Error> {
    let writer = StoreWriter::spawn(Store::open(&globals.store)?);
    let sessions = if wf_uses_sessions(wf) {
        Some(Arc::new(Mutex::new(Store::open(&globals.store)?)))
    } else {
        None
    };
    let cap = limits
        .max_concurrency
        .or(wf.max_concurrency.as_ref().map(|m| m.value));
    if cap == Some(0) {
        return Err(Error::usage("--max-concurrency must be at least 1"));
    }
    let live = !globals.quiet && std::io::stderr().is_terminal() && !under_ci();
    let mut prototype = prototype;
    if let Some(s) = &sessions {
        prototype = prototype.with_sessions(s.clone());
    }
    let ctx = Ctx {
        prototype,
        experiment,
        base,
        limits,
        writer: &writer,
        push: limits.push.clone(),
        limiter: cap.map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
        cancel: CancellationToken::new(),
        tally: Mutex::new(Tally::default()),
        total: todo.len() as u64,
        plain: !globals.quiet && !live,
        repeat: experiment.repeat,
    };
    let runtime = crate::cli::engine_runtime(limits.jobs > 1 || ctx.prototype.fans_out())?;
    let started = Instant::now();
    runtime.block_on(async {
        let mut sigint = signal(SignalKind::interrupt()).ok();
        let mut sigterm = signal(SignalKind::terminate()).ok();
        let work = futures::stream::iter(todo)
            .map(|job| run_case(&ctx, job))
            .buffer_unordered(limits.jobs.max(1))
            .for_each(|_| async {});
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                () = &mut work => break,
                _ = tick.tick(), if live => {
                    let t = ctx.tally();
                    let eta = (t.done > 0).then(|| {
                        let per = started.elapsed().as_secs_f64() * 1000.0 / t.done as f64;
                        per * ctx.total.saturating_sub(t.done) as f64
                    });
                    let line = live_line(t.done, ctx.total, t.passed, t.cost_usd, eta);
                    drop(t);
                    // Redrawn with `\r`: a line that wrapped would leave its first rows behind,
                    // so it is cut to the terminal's width now, less a column.
                    let width = terminal_size::terminal_size_of(std::io::stderr())
                        .map_or(80, |(terminal_size::Width(w), _)| usize::from(w));
                    let line = crate::trace::bound::truncate(&line, width.saturating_sub(1).max(1));
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                }
                () = next(&mut sigint) => {
                    if ctx.cancel.is_cancelled() {
                        eprintln!("\ninterrupted again: exiting now");
                        crate::llm::mcp::kill_all_now();
                        std::process::exit(ExitCode::Interrupted.code());
                    }
                    eprintln!("\ninterrupted: cancelling the running cases (Ctrl-C again to exit at once; `--resume {}` continues)", experiment.id);
                    ctx.cancel.cancel();
                }
                () = next(&mut sigterm) => {
                    eprintln!("\nterminated: cancelling the running cases");
                    ctx.cancel.cancel();
                }
            }
        }
        ctx.prototype.shutdown().await;
    });
    if live {
        eprint!("\r\x1b[2K");
    }
    runtime.shutdown_background();
    let stopped = ctx.tally().stopped.take();
    let cancelled = ctx.cancel.is_cancelled();
    drop(ctx);
    writer.close()?;
    Ok(if cancelled {
        Ended {
            status: ExperimentStatus::Cancelled,
            reason: None,
        }
    } else if let Some(reason) = stopped {
        Ended {
            status: ExperimentStatus::Error,
            reason: Some(reason),
        }
    } else {
        Ended {
            status: ExperimentStatus::Ok,
            reason: None,
        }
    })
}

/// Whether any agent step keeps a conversation (`session:`): the cases then share the store's.
fn wf_uses_sessions(wf: &Workflow) -> bool {
    wf.all_steps().iter().any(|s| {
        matches!(
            &s.kind,
            crate::workflow::StepKind::Agent {
                session: Some(_),
                ..
            }
        )
    })
}
