//! `agentrace score TRACE NAME VALUE`: a person's score on a stored trace, whoever recorded it
//! (`run`, `eval`, or a program that sent it to `serve`). It lands on the trace's first root span
//! (or `--span`) as the evaluation event every other score is, marked `human`.

use super::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::store::Store;
use crate::trace::score::trace_score_span;
use crate::trace::{Score, ScoreSource, SpanId, Status};

/// The longest score name, label and explanation kept.
const MAX_NAME: usize = 128;
const MAX_TEXT: usize = 4096;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trace: its id, a unique prefix or suffix of it (the short id `list` shows), or `last`
    #[arg(value_name = "TRACE")]
    trace: String,

    /// What is scored (`correct`, `helpfulness`); a second score of the same name on the same
    /// span replaces the first
    #[arg(value_name = "NAME")]
    name: String,

    /// A number, or `pass` / `fail`
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    value: String,

    /// A category for the score (`correct`, `partially correct`)
    #[arg(long, value_name = "LABEL")]
    label: Option<String>,

    /// Why
    #[arg(long, value_name = "TEXT")]
    explanation: Option<String>,

    /// The value at or above which the score passes
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    threshold: Option<f64>,

    /// The span to score (its id); default the trace's first root span
    #[arg(long, value_name = "SPAN_ID")]
    span: Option<String>,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let score = score_of(&args)?;
    let store = Store::open_existing(&globals.store)?;
    let doc = store.find(&args.trace)?;
    let id = doc.trace.trace_id;
    if doc.trace.status == Status::Running {
        return Err(Error::usage(format!(
            "trace {id} is still running; score it once it has ended"
        )));
    }
    let span = match &args.span {
        Some(text) => {
            let span_id = SpanId::parse(text.trim()).ok_or_else(|| {
                Error::usage(format!(
                    "{text:?} is not a span id (span_ and 16 hex digits; see `agentrace show {id} --format json`)"
                ))
            })?;
            doc.spans
                .iter()
                .find(|s| s.span_id == span_id)
                .ok_or_else(|| Error::usage(format!("trace {id} has no span {span_id}")))?
        }
        None => trace_score_span(&doc.spans)
            .ok_or_else(|| Error::usage(format!("trace {id} has no span to hold a score")))?,
    };
    store.add_score(id, span.span_id, &score)?;
    if !globals.quiet {
        let verdict = match score.passed {
            Some(true) => " (pass)",
            Some(false) => " (fail)",
            None => "",
        };
        print_stdout(&format!(
            "scored {id} {} ({}): {} = {}{verdict}\n",
            span.span_id, span.name, score.name, args.value
        ));
    }
    Ok(ExitCode::Ok)
}

/// The score the arguments describe, or a usage error naming what is wrong.
fn score_of(args: &Args) -> Result<Score, Error> {
    let name = args.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "a score name is 1 to {MAX_NAME} printable characters, got {:?}",
            args.name
        )));
    }
    let (value, passed) = match args.value.trim() {
        "pass" => (1.0, Some(true)),
        "fail" => (0.0, Some(false)),
        text => match text.parse::<f64>() {
            Ok(v) if v.is_finite() => (v, None),
            _ => {
                return Err(Error::usage(format!(
                    "the score {:?} is neither a number nor pass/fail",
                    args.value
                )));
            }
        },
    };
    if let Some(t) = args.threshold
        && !t.is_finite()
    {
        return Err(Error::usage("--threshold is a finite number"));
    }
    for (flag, text) in [
        ("--label", &args.label),
        ("--explanation", &args.explanation),
    ] {
        if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT) {
            return Err(Error::usage(format!(
                "{flag} is longer than {MAX_TEXT} characters"
            )));
        }
    }
    Ok(Score {
        value: Some(value),
        label: args.label.clone().filter(|l| !l.trim().is_empty()),
        explanation: args.explanation.clone().filter(|e| !e.trim().is_empty()),
        passed: passed.or(args.threshold.map(|t| value >= t)),
        threshold: args.threshold,
        ..Score::new(name, ScoreSource::Human)
    })
}
