//! `agentrace eval FILE --dataset cases.jsonl`: the workflow once per case, every run a trace of
//! its own, all of them one experiment; then the report, the CI outputs and the gates.
//!
//! Everything that can be wrong with the input (the workflow, the dataset, a case's var that the
//! workflow does not declare, model access) is found before the experiment is created, so bad
//! input leaves nothing in the store. The cases run on one tokio runtime through one store
//! writer (see [`drive`]); the report is read back from the store, so a resumed experiment
//! (`--resume`) reports every case, those of the earlier process included.

mod compare;
mod drive;
mod outputs;
mod report;
mod results;
mod sharded;

use crate::eval::report::info_of;
use results::{case_results, gate};

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{Globals, parse_key_value};
use crate::engine::{Engine, RunOptions};
use crate::error::{Error, ExitCode};
use crate::eval::dataset::{self, Case, Dataset, DatasetError};
use crate::eval::shard::Shard;
use crate::store::experiment::{CASE_KEY, shard_lock_id};
use crate::store::{Experiment, ExperimentStatus, Store};
use crate::trace::Timestamp;
use crate::workflow::diagnostic::{Diagnostic, Loc};
use crate::workflow::{self, Workflow};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalFormat {
    /// The tables of the report
    Text,
    /// One JSON object (docs/contract.md)
    Json,
    /// Nothing (the exit code says how it went)
    None,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<EvalCommand>,

    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum EvalCommand {
    /// Compare two experiments case by case: per scorer, the change, its 95% interval and a
    /// verdict
    Compare(compare::Args),
    /// The report of a stored experiment, with the gates of `eval`: the merged report of a
    /// sharded experiment once all its shards are in (exit 3 naming those missing otherwise)
    Report(report::Args),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The workflow file
    #[arg(value_name = "FILE", required = true)]
    file: Option<PathBuf>,

    /// The cases: a .jsonl, .csv or .yaml file [default: the workflow's `dataset:`]
    #[arg(long, value_name = "FILE")]
    dataset: Option<PathBuf>,

    /// The experiment's name [default: the workflow's name and the time]
    #[arg(long, value_name = "NAME", conflicts_with = "resume")]
    experiment: Option<String>,

    /// Continue an interrupted experiment (id, id prefix or name): only the cases without a
    /// finished trace run (its own --filter, --limit and --repeat apply)
    #[arg(long, value_name = "EXPERIMENT")]
    resume: Option<String>,

    /// Add metadata to the experiment and to every case's trace (repeatable)
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    meta: Vec<(String, String)>,

    /// Cases run at once
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 8)]
    jobs: usize,

    /// Run each case K times (the report gives pass@k and pass^k)
    #[arg(long, value_name = "K", default_value_t = 1, conflicts_with = "resume")]
    repeat: u32,

    /// Only the first N cases (after --filter)
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    limit: Option<usize>,

    /// Only the cases whose var or reference field K equals V (repeatable: all must hold)
    #[arg(long = "filter", value_name = "K=V", value_parser = parse_key_value, conflicts_with = "resume")]
    filter: Vec<(String, String)>,

    /// Use the built-in deterministic offline model: no network, no key
    #[arg(long)]
    offline: bool,

    /// Keep prompts and outputs out of the store
    #[arg(long)]
    no_content: bool,

    /// At most N model calls in flight at once across all cases
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,

    /// Stop the experiment once its model calls have used more than N tokens
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,

    /// Stop the experiment once its model calls have cost more than USD
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,

    /// Run only shard K of N: the cases whose id hashes to K (every repeat of a case in the
    /// same shard); needs --experiment NAME, which all N shards share (see `eval report`)
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    shard: Option<Shard>,

    #[command(flatten)]
    gates: GateArgs,
}

/// The report's outputs and gates: the same for `eval FILE` and `eval report EXPERIMENT`.
#[derive(Debug, clap::Args)]
pub(crate) struct GateArgs {
    #[arg(long, value_enum, default_value_t = EvalFormat::Text)]
    format: EvalFormat,

    /// Write a JUnit XML report to FILE: a testcase per case and scorer
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Write the report as one self-contained HTML file: the experiment as `serve` shows it,
    /// with every case's trace
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,

    /// Exit 1 when the share of passing runs is below P (0 to 1); without it any failing case
    /// exits 1
    #[arg(long, value_name = "P")]
    min_pass_rate: Option<f64>,

    /// Compare with this experiment (id, prefix or name) at the end
    #[arg(long, value_name = "EXPERIMENT")]
    baseline: Option<String>,

    /// With --baseline: exit 1 when any scorer is significantly worse
    #[arg(long, requires = "baseline")]
    fail_on_regression: bool,

    /// Record the experiment and its traces through this `agentrace serve` (its base URL; the
    /// token is AGENTRACE_TOKEN) instead of the store; kept in a local spool while it cannot
    /// be reached [env: AGENTRACE_REMOTE]
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

impl GateArgs {
    fn check(&self) -> Result<(), Error> {
        if let Some(p) = self.min_pass_rate
            && !(0.0..=1.0).contains(&p)
        {
            return Err(Error::usage("--min-pass-rate is a share between 0 and 1"));
        }
        Ok(())
    }
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    match args.command {
        Some(EvalCommand::Compare(c)) => compare::run(c, globals),
        Some(EvalCommand::Report(r)) => report::run(r, globals),
        None => run_eval(args.run, globals),
    }
}

/// The metadata keys of an experiment that `--resume` reads back.
const FILTER_KEY: &str = "eval.filter";
const LIMIT_KEY: &str = "eval.limit";

/// One run to make: a case and its attempt (1..=repeat).
#[derive(Clone, Debug)]
pub(super) struct Job {
    pub case: Case,
    pub attempt: u32,
}

/// The cases to run: `--dataset`'s file, else the workflow's `dataset:` (a file beside the
/// workflow, or the cases written in it); and how the dataset is named in messages.
fn load_dataset(
    wf: &workflow::Workflow,
    file: &std::path::Path,
    flag: Option<&std::path::Path>,
) -> Result<(Dataset, String), Error> {
    if let Some(path) = flag {
        let shown = path.display().to_string();
        return Ok((dataset::load(path, &shown)?, shown));
    }
    match &wf.dataset {
        Some(workflow::DatasetDef::File(name)) => {
            let path = file
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join(&name.value);
            let shown = path.display().to_string();
            Ok((dataset::load(&path, &shown)?, shown))
        }
        Some(workflow::DatasetDef::Inline(rows)) => {
            let shown = file.display().to_string();
            let data = dataset::inline(rows.clone(), &wf.name.value, &shown, &wf.source)?;
            Ok((data, shown))
        }
        None => Err(Error::usage(format!(
            "{}: no cases: give --dataset FILE or write `dataset:` in the workflow",
            file.display()
        ))),
    }
}

fn run_eval(args: RunArgs, globals: &Globals) -> Result<ExitCode, Error> {
    let Some(file) = args.file.clone() else {
        return Err(Error::usage("eval needs a workflow FILE"));
    };
    if args.jobs == 0 {
        return Err(Error::usage("-j must be at least 1"));
    }
    if args.repeat == 0 {
        return Err(Error::usage("--repeat must be at least 1"));
    }
    args.gates.check()?;
    if args.shard.is_some() && args.experiment.is_none() && args.resume.is_none() {
        return Err(Error::usage(
            "--shard needs --experiment NAME: the name all the shards record into",
        ));
    }
    let remote = super::push::remote(args.gates.remote.as_deref())?;
    if remote.is_some() {
        // Both read earlier experiments from the store, which a pushing eval does not have.
        for (flag, given) in [
            ("--resume", args.resume.is_some()),
            ("--baseline", args.gates.baseline.is_some()),
        ] {
            if given {
                return Err(Error::usage(format!(
                    "{flag} reads experiments from the store: it cannot be used with a remote \
                     (--remote, AGENTRACE_REMOTE); run `agentrace eval compare` against the \
                     server's store instead"
                )));
            }
        }
    }
    let wf = workflow::load(&file)?;
    if wf.traces.len() > 1 {
        return Err(Error::usage(format!(
            "{}: eval runs workflows of one trace; this one has {} (`traces:`)",
            file.display(),
            wf.traces.len()
        )));
    }
    let (data, shown) = load_dataset(&wf, &file, args.dataset.as_deref())?;
    check_vars(&wf, &data, &shown)?;
    // Model access and the options are checked once, on the first case, before the store is
    // opened: every case runs the same workflow with the same options.
    let options = RunOptions {
        meta: args.meta.clone(),
        offline: args.offline,
        no_content: args.no_content,
        ..RunOptions::default()
    };
    let prototype = Engine::new(wf.clone(), options.clone())?;
    if let Some(first) = data.cases.first() {
        let job = Job {
            case: first.clone(),
            attempt: 1,
        };
        prototype.for_case(drive::case_options(&options, "exp_", &job))?;
    }
    if args.resume.is_none() && select(&data, &args.filter, args.limit).is_empty() {
        let mut why: Vec<String> = args
            .filter
            .iter()
            .map(|(k, v)| format!("--filter {k}={v}"))
            .collect();
        why.extend(args.limit.map(|n| format!("--limit {n}")));
        return Err(Error::usage(format!(
            "no case of {shown} is left to run by {}",
            why.join(" ")
        )));
    }
    if args.jobs > 1 || wf.fans_out() {
        // Before any thread starts (the remote sink's, the store writer's, the runtime's).
        super::reserve_fds(crate::engine::models::most_connections(&wf));
    }
    // -- A pushing eval records into a scratch store, which the report reads back, and
    // through the remote sink to the server; the store stays untouched.
    let pushing = super::push::pushing(remote, globals)?;
    let globals = pushing.as_ref().map_or(globals, |p| &p.globals);
    let pusher = pushing.as_ref().map(|p| p.sink.clone());
    let store = if args.resume.is_some() {
        Store::open_existing(&globals.store)?
    } else {
        Store::open(&globals.store)?
    };
    // -- The experiment: a new one, or the one to resume (with its filter, limit and repeat).
    let (mut experiment, filter, limit) = match &args.resume {
        Some(reference) => {
            let e = store.find_experiment(reference)?;
            if e.dataset_hash != data.hash {
                return Err(Error::usage(format!(
                    "--resume {reference}: {shown} is not the dataset {} ran on (its hash was {}, \
                     the file's is {})",
                    e.id, e.dataset_hash, data.hash
                )));
            }
            sharded::check_resume(&e, args.shard, reference)?;
            if e.workflow != wf.name.value {
                return Err(Error::usage(format!(
                    "--resume {reference}: {} ran workflow `{}`, {} is `{}`",
                    e.id,
                    e.workflow,
                    file.display(),
                    wf.name.value
                )));
            }
            let filter: Vec<(String, String)> = e
                .metadata
                .get(FILTER_KEY)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .filter_map(|s| parse_key_value(s).ok())
                        .collect()
                })
                .unwrap_or_default();
            let limit = e
                .metadata
                .get(LIMIT_KEY)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok());
            (e, filter, limit)
        }
        None => {
            let name = args
                .experiment
                .clone()
                .unwrap_or_else(|| generated_name(&wf.name.value));
            let mut e = Experiment::start(name, wf.name.value.clone());
            e.dataset = data.name.clone();
            e.dataset_hash = data.hash.clone();
            e.repeat = args.repeat;
            e.metadata = experiment_metadata(&wf, &file, &args);
            if let Some(shard) = args.shard {
                sharded::shape(&mut e, shard);
            }
            (e, args.filter.clone(), args.limit)
        }
    };
    let mut cases = select(&data, &filter, limit);
    // A sharded experiment counts the cases of all its shards; this process runs its own.
    experiment.cases = cases.len() as u64;
    if let Some(shard) = args.shard {
        cases.retain(|c| shard.holds(&c.id));
    }
    let jobs: Vec<Job> = cases
        .iter()
        .flat_map(|c| {
            (1..=experiment.repeat).map(|attempt| Job {
                case: (*c).clone(),
                attempt,
            })
        })
        .collect();
    // Held until this process ends: a second `--resume` of a running experiment would run its
    // cases twice. The shards of one experiment each hold their own.
    let lock = match args.shard {
        Some(shard) => shard_lock_id(&experiment.id, shard.index),
        None => experiment.id.clone(),
    };
    if !store.hold_experiment(&lock) {
        return Err(Error::usage(format!(
            "experiment {} ({}){} is running in another process",
            experiment.name,
            experiment.id,
            args.shard
                .map(|s| format!(" shard {s}"))
                .unwrap_or_default()
        )));
    }
    // How this process's part stands: the experiment's status, or its shard's.
    let set_status = |status: ExperimentStatus, ended: Option<Timestamp>| match args.shard {
        Some(shard) => sharded::mark(
            &store,
            &experiment.id,
            shard,
            cases.len() as u64,
            status,
            ended,
        ),
        None => Ok(store.set_experiment_status(&experiment.id, status, ended)?),
    };
    // -- What is done already (resume): runs whose trace is in the store. Whatever an
    // interrupted case left behind goes: it runs again from the start.
    let todo: Vec<Job> = if args.resume.is_some() {
        let runs = store.experiment_runs(&experiment.id)?;
        let ids: Vec<_> = runs.iter().map(|r| r.trace_id).collect();
        let present: std::collections::HashSet<_> = store
            .traces_by_id(&ids)?
            .into_iter()
            .map(|t| t.trace_id)
            .collect();
        let done: std::collections::HashSet<(String, u32)> = runs
            .into_iter()
            .filter(|r| present.contains(&r.trace_id))
            .map(|r| (r.case_id, r.attempt))
            .collect();
        let mut leftovers = store.unrecorded_traces(&experiment.id)?;
        if args.shard.is_some() {
            // Another shard's, in a shared store, are not this one's to delete.
            let mine: std::collections::HashSet<&str> =
                cases.iter().map(|c| c.id.as_str()).collect();
            leftovers = store
                .traces_by_id(&leftovers)?
                .into_iter()
                .filter(|t| {
                    t.metadata
                        .get(CASE_KEY)
                        .and_then(Value::as_str)
                        .is_some_and(|c| mine.contains(c))
                })
                .map(|t| t.trace_id)
                .collect();
        }
        store.delete(&leftovers)?;
        set_status(ExperimentStatus::Running, None)?;
        jobs.iter()
            .filter(|j| !done.contains(&(j.case.id.clone(), j.attempt)))
            .cloned()
            .collect()
    } else {
        match args.shard {
            Some(shard) => {
                sharded::join(&store, &experiment, shard)?;
                set_status(ExperimentStatus::Running, None)?;
            }
            None => store.create_experiment(&experiment)?,
        }
        jobs.clone()
    };
    if let Some(pusher) = &pusher {
        pusher.experiment(push_body(&experiment, Vec::new()));
    }
    if !globals.quiet {
        eprintln!(
            "experiment {} ({}){}: {} runs{}",
            experiment.name,
            experiment.id,
            args.shard
                .map(|s| format!(" shard {s}"))
                .unwrap_or_default(),
            todo.len(),
            if todo.len() == jobs.len() {
                String::new()
            } else {
                format!(" of {}", jobs.len())
            }
        );
    }
    let ended = drive::drive(
        prototype,
        &wf,
        &experiment,
        todo,
        &drive::Limits {
            jobs: args.jobs,
            max_concurrency: args.max_concurrency,
            max_tokens: args.max_tokens,
            max_cost_usd: args.max_cost,
            push: pusher
                .clone()
                .map(|p| p as std::sync::Arc<dyn crate::trace::Sink>),
        },
        &options,
        globals,
    )?;
    set_status(ended.status, Some(Timestamp::now()))?;
    store.release_experiment(&lock);
    if let Some(pusher) = &pusher {
        // After every case's trace: the server has the traces its runs name.
        let done = store.find_experiment(&experiment.id)?;
        let runs = store.experiment_runs(&experiment.id)?;
        pusher.experiment(push_body(&done, runs));
        pusher.close();
    }
    if let Some(reason) = &ended.reason {
        eprintln!("error: {reason}");
    }
    let experiment = store.find_experiment(&experiment.id)?;
    let results = case_results(&store, &experiment, &jobs)?;
    let info = info_of(&experiment, jobs.len() as u64);
    let code = conclude(
        &store,
        &experiment,
        &info,
        &results,
        &args.gates,
        &Labels {
            workflow: &file.display().to_string(),
            dataset: &shown,
            lines: &data.cases.iter().map(|c| (c.id.clone(), c.line)).collect(),
        },
        globals,
    )?;
    Ok(match ended.status {
        ExperimentStatus::Cancelled => ExitCode::Interrupted,
        ExperimentStatus::Error => ExitCode::Failed,
        _ => code,
    })
}

/// How the report names the workflow, the dataset and each case's line in it.
pub(super) struct Labels<'a> {
    pub workflow: &'a str,
    pub dataset: &'a str,
    pub lines: &'a std::collections::HashMap<String, u32>,
}

/// The report and its outputs (`--format`, `--junit`, `-o`, the GitHub summary), the
/// comparison with `--baseline`, and the exit code of the gates: what `eval FILE` does at its
/// end and `eval report EXPERIMENT` does for a stored experiment.
pub(super) fn conclude(
    store: &Store,
    experiment: &Experiment,
    info: &crate::render::eval::ExperimentInfo,
    results: &[crate::render::eval::CaseResult],
    gates: &GateArgs,
    labels: &Labels<'_>,
    globals: &Globals,
) -> Result<ExitCode, Error> {
    let code = outputs::report(
        info,
        results,
        &outputs::Gates {
            format: gates.format,
            junit: gates.junit.as_deref(),
            min_pass_rate: gates.min_pass_rate,
            label: labels.workflow,
            dataset: labels.dataset,
            lines: labels.lines,
        },
        globals,
    )?;
    if let Some(path) = &gates.output {
        outputs::write_html(store, path, info, results)?;
    }
    let regression = match &gates.baseline {
        Some(baseline) => compare::against_baseline(
            store,
            baseline,
            experiment,
            gates.format == EvalFormat::Text,
            globals,
        )?,
        None => false,
    };
    Ok(if regression && gates.fail_on_regression {
        ExitCode::Failed
    } else {
        code
    })
}

/// The body of `POST /v1/experiments` for a pushing eval.
fn push_body(experiment: &Experiment, runs: Vec<crate::store::ExperimentRun>) -> Value {
    let push = crate::store::experiment::ExperimentPush {
        experiment: experiment.clone(),
        runs,
    };
    serde_json::to_value(&push).unwrap_or(Value::Null)
}

/// `<workflow>-<UTC time>`: `support-20261204T171632Z`.
fn generated_name(workflow: &str) -> String {
    let slug: String = workflow
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    format!("{}-{stamp}", slug.trim_matches('-'))
}

/// The git commit of the workflow's directory (when it is in a repository), its models, the
/// workflow file, `--meta`, and what `--resume` needs to pick the same cases.
fn experiment_metadata(wf: &Workflow, file: &Path, args: &RunArgs) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("workflow.file".into(), json!(file.display().to_string()));
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(out) = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        && out.status.success()
    {
        let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !commit.is_empty() {
            m.insert("git.commit".into(), json!(commit));
        }
    }
    let mut models: Vec<String> = wf
        .model
        .iter()
        .map(|m| m.value.clone())
        .chain(
            wf.agents
                .values()
                .filter_map(|a| a.model.as_ref().map(|m| m.value.clone())),
        )
        .collect();
    models.sort();
    models.dedup();
    if args.offline {
        models = vec!["offline".into()];
    }
    m.insert("models".into(), json!(models));
    if !args.filter.is_empty() {
        let f: Vec<String> = args
            .filter
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        m.insert(FILTER_KEY.into(), json!(f));
    }
    if let Some(n) = args.limit {
        m.insert(LIMIT_KEY.into(), json!(n));
    }
    for (k, v) in &args.meta {
        m.insert(k.clone(), json!(v));
    }
    m
}

/// Every var a case sets must be a declared var of the workflow: all the problems at once,
/// each at the case's line.
fn check_vars(wf: &Workflow, data: &Dataset, shown: &str) -> Result<(), Error> {
    let declared: Vec<&str> = wf.vars.keys().map(String::as_str).collect();
    let mut problems = Vec::new();
    for case in &data.cases {
        for name in case.vars.keys() {
            if !wf.vars.contains_key(name) {
                let hint = if declared.is_empty() {
                    format!("{} declares no vars", wf.path.display())
                } else {
                    format!("{} declares: {}", wf.path.display(), declared.join(", "))
                };
                problems.push(Diagnostic::new(
                    shown,
                    Loc {
                        line: case.line,
                        col: 1,
                    },
                    format!(
                        "case `{}` sets var `{name}`, which is not declared ({hint})",
                        case.id
                    ),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DatasetError { problems }.into())
    }
}

/// A value as `--filter` compares it: text as it is, anything else as JSON.
pub(super) fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The cases `--filter` keeps (every K=V holds on a var or a reference field), at most `limit`.
fn select<'d>(
    data: &'d Dataset,
    filter: &[(String, String)],
    limit: Option<usize>,
) -> Vec<&'d Case> {
    data.cases
        .iter()
        .filter(|c| {
            filter.iter().all(|(k, v)| {
                c.vars
                    .get(k)
                    .or_else(|| c.reference.get(k))
                    .is_some_and(|x| as_text(x) == *v)
            })
        })
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}
