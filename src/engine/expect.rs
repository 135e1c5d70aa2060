//! Expectations: the `expect:` checks of a step (run inside the step function, while its span is
//! still open, so that each result lands as an `expectation` event on that span and a failure
//! ends it as `error` like any other step failure) and of the workflow (checked after the last
//! trace's steps, on an `expect` span of their own at the end of that trace).
//!
//! It also keeps, per trace, where each failure started (the step, or the failing check), which
//! the CI outputs of `run` (GitHub annotations) point at.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::executor::{Frame, TraceRun, error_at};
use super::path::{self, AgentPath};
use super::{Failure, TraceOutcome};
use crate::trace::bound::truncate;
use crate::trace::{ErrorInfo, SpanHandle, SpanKind, Status, Timestamp, Usage};
use crate::workflow::expect::{Check, CheckKind, Expect};
use crate::workflow::{Loc, Step};

/// How much of a text an event attribute or a message quotes.
const QUOTE_CHARS: usize = 200;

/// A failure of the run, located in the workflow file: a step that failed (at the failing check
/// when an expectation failed), or a workflow-level expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct StepFailure {
    /// The step's id or display name, or the workflow's name.
    pub title: String,
    pub loc: Loc,
    pub message: String,
    /// The step has `continue_on_error`: the run went on.
    pub continued: bool,
}

/// What a step (or the run) produced, as the checks see it.
pub(crate) struct Measured<'a> {
    pub output: &'a str,
    pub usage: Usage,
    pub duration: Duration,
    /// `None` when a model without a known price was used.
    pub cost_usd: Option<f64>,
    /// The agent's path (agent steps only).
    pub path: Option<&'a AgentPath>,
}

/// One check's result.
struct Verdict {
    passed: bool,
    /// The `actual` attribute (content for text checks).
    actual: Value,
    /// What went wrong, as a phrase ("expected output to contain …, got …").
    phrase: String,
}

/// A text quoted for a message: JSON string syntax, so quotes and newlines stay visible.
fn quote(s: &str) -> String {
    serde_json::to_string(&truncate(s, QUOTE_CHARS)).unwrap_or_default()
}

pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.2}s", ms / 1000.0)
    }
}

fn evaluate(check: &Check, m: &Measured, no_content: bool) -> Verdict {
    let got = if no_content {
        String::new()
    } else {
        format!(", got {}", quote(m.output))
    };
    let text = |passed: bool, phrase: String| Verdict {
        passed,
        actual: Value::String(truncate(m.output, QUOTE_CHARS)),
        phrase: format!("{phrase}{got}"),
    };
    match &check.kind {
        CheckKind::Contains(needle) => text(
            m.output.contains(needle.as_str()),
            format!("expected output to contain {}", quote(needle)),
        ),
        CheckKind::NotContains(needle) => text(
            !m.output.contains(needle.as_str()),
            format!("expected output not to contain {}", quote(needle)),
        ),
        CheckKind::Matches(re) => text(
            re.is_match(m.output),
            format!("expected output to match /{}/", re.as_str()),
        ),
        CheckKind::Equals(expected) => text(
            m.output.trim() == expected.trim(),
            format!("expected output to equal {}", quote(expected)),
        ),
        CheckKind::JsonSchema(schema) => {
            let why = match serde_json::from_str::<Value>(m.output) {
                Err(_) if no_content => Some("is not JSON".to_string()),
                Err(e) => Some(format!("is not JSON ({e})")),
                Ok(value) => match jsonschema::validator_for(schema) {
                    // Validation compiled it already; a failure here would be a bug.
                    Err(e) => Some(format!("cannot be checked: {e}")),
                    Ok(validator) => {
                        let errors: Vec<String> = validator
                            .iter_errors(&value)
                            .map(|e| {
                                let path = e.instance_path().to_string();
                                match (no_content, path.is_empty()) {
                                    (true, true) => "at the top level".to_string(),
                                    (true, false) => format!("at {path}"),
                                    (false, true) => e.to_string(),
                                    (false, false) => format!("{e} (at {path})"),
                                }
                            })
                            .collect();
                        (!errors.is_empty())
                            .then(|| format!("does not match it: {}", errors.join("; ")))
                    }
                },
            };
            let phrase = match &why {
                Some(why) => format!("expected output to match the JSON Schema, but it {why}"),
                None => "expected output to match the JSON Schema".to_string(),
            };
            text(why.is_none(), phrase)
        }
        CheckKind::MaxTokens(max) => {
            let used = m.usage.total_tokens;
            Verdict {
                passed: used <= *max,
                actual: json!(used),
                phrase: format!("expected at most {max} tokens, used {used}"),
            }
        }
        CheckKind::MaxDuration(max) => Verdict {
            passed: m.duration <= *max,
            actual: Value::String(format_duration(m.duration)),
            phrase: format!(
                "expected to take at most {}, took {}",
                check.written,
                format_duration(m.duration)
            ),
        },
        CheckKind::Path(check) => match m.path {
            Some(p) => {
                let v = path::check(check, p);
                Verdict {
                    passed: v.passed,
                    actual: v.actual,
                    phrase: v.phrase,
                }
            }
            // Validation keeps path checks on agent steps.
            None => Verdict {
                passed: false,
                actual: Value::Null,
                phrase: format!("`{}` only applies to agent steps", check.key()),
            },
        },
        CheckKind::MaxCostUsd(max) => match m.cost_usd {
            Some(cost) => Verdict {
                passed: cost <= *max,
                actual: json!(cost),
                phrase: format!("expected to cost at most ${max}, cost ${cost}"),
            },
            None => Verdict {
                passed: false,
                actual: Value::Null,
                phrase: format!(
                    "expected to cost at most ${max}, but the cost is unknown: a model without a \
                     price was used (add it to `prices:`)"
                ),
            },
        },
    }
}

/// Runs every check of `expect`, adding one `expectation` event per check to `span`. Returns the
/// error for the span when any failed: `<subject>: <phrase>; <phrase>`, with the failed checks
/// (and their places in the file) as data.
fn run_checks(
    expect: &Expect,
    span: &SpanHandle,
    m: &Measured,
    no_content: bool,
    subject: &str,
) -> Result<(), ErrorInfo> {
    let mut phrases = Vec::new();
    let mut failed = Vec::new();
    for check in &expect.checks {
        let verdict = evaluate(check, m, no_content);
        let expected = match &check.kind {
            CheckKind::MaxTokens(n) => json!(n),
            CheckKind::MaxCostUsd(usd) => json!(usd),
            CheckKind::Path(crate::workflow::scores::PathCheck::MaxTurns(n)) => json!(n),
            _ => Value::String(truncate(&check.written, QUOTE_CHARS)),
        };
        let mut attrs = Map::new();
        attrs.insert("check".into(), Value::String(check.name().into()));
        attrs.insert("expected".into(), expected.clone());
        attrs.insert("passed".into(), Value::Bool(verdict.passed));
        if !(no_content && check.is_text()) {
            attrs.insert("actual".into(), verdict.actual.clone());
        }
        span.add_event("expectation", attrs);
        if !verdict.passed {
            let mut data = json!({
                "check": check.name(),
                "expected": expected,
                "line": check.loc.line,
                "col": check.loc.col,
            });
            if !(no_content && check.is_text()) {
                data["actual"] = verdict.actual;
            }
            failed.push(data);
            phrases.push(verdict.phrase);
        }
    }
    if phrases.is_empty() {
        return Ok(());
    }
    Err(error_at(
        format!("{subject}: {}", phrases.join("; ")),
        json!({ "expectations": failed }),
    ))
}

/// The place a failure points at: its first failed check, if it is an expectation failure.
fn failed_check_loc(error: &ErrorInfo) -> Option<Loc> {
    let first = error.data.get("expectations")?.get(0)?;
    Some(Loc {
        line: u32::try_from(first.get("line")?.as_u64()?).ok()?,
        col: u32::try_from(first.get("col")?.as_u64()?).ok()?,
    })
}

impl TraceRun {
    /// Checks a step's `expect:` against what it produced, with its span still open. A failure
    /// is the step's failure: the caller ends the span with it.
    pub(crate) fn check_expectations(
        &self,
        step: &Step,
        span: &SpanHandle,
        output: &str,
        usage: Usage,
        duration: Duration,
        path: Option<&AgentPath>,
    ) -> Result<(), Failure> {
        let Some(expect) = &step.expect else {
            return Ok(());
        };
        let measured = Measured {
            output,
            usage,
            duration,
            cost_usd: None,
            path,
        };
        let subject = format!("step `{}`", self.display_name(step));
        run_checks(
            expect,
            span,
            &measured,
            self.engine.opts.no_content,
            &subject,
        )
        .map_err(Failure::error)
    }

    /// The workflow's `expect:` when a step failed: never checked, recorded as a skipped
    /// `expect` span like the steps that did not run.
    pub(crate) fn skip_run_expectations(&self, expect: &Expect, failure: &Failure) {
        let mut attrs = Map::new();
        attrs.insert("checks".into(), json!(expect.checks.len()));
        let reason = self.not_run_reason(failure);
        self.rec
            .skipped_span(None, SpanKind::Custom, "expect", attrs, &reason);
    }

    /// Checks the workflow's `expect:` after the last trace's steps, on an `expect` span at the
    /// end of that trace: tokens, cost and time of the whole run (every trace), and the text
    /// checks on the output of the last step that produced one.
    pub(crate) fn check_run_expectations(
        &self,
        frame: &Frame,
        expect: &Expect,
        earlier: &[TraceOutcome],
    ) -> Result<(), Failure> {
        let current = self.rec.trace();
        let mut usage = Usage::default();
        let mut cost: Option<f64> = None;
        for trace in earlier.iter().map(|t| &t.trace).chain([&current]) {
            usage.add(trace.usage);
            if let Some(c) = trace.cost_usd {
                cost = Some(cost.unwrap_or(0.0) + c);
            }
        }
        // No model call costs nothing; calls without a known price leave the cost unknown.
        let cost = cost.or(usage.is_zero().then_some(0.0));
        let started = earlier
            .first()
            .map_or(current.started_at, |t| t.trace.started_at);
        let elapsed_ms = started.ms_until(Timestamp::now()).max(0.0);
        let output = frame.ctx.steps.last();
        let measured = Measured {
            output: output.as_ref().map_or("", |o| o.text()),
            usage,
            duration: Duration::from_secs_f64(elapsed_ms / 1000.0),
            cost_usd: cost.map(|c| (c * 1e9).round() / 1e9),
            path: None,
        };
        let mut attrs = Map::new();
        attrs.insert("checks".into(), json!(expect.checks.len()));
        let span = self.rec.span(None, SpanKind::Custom, "expect", attrs);
        let subject = format!("workflow `{}`", self.engine.wf.name.value);
        match run_checks(
            expect,
            &span,
            &measured,
            self.engine.opts.no_content,
            &subject,
        ) {
            Ok(()) => {
                span.end(Status::Ok, None);
                Ok(())
            }
            Err(error) => {
                self.note(StepFailure {
                    title: self.engine.wf.name.value.clone(),
                    loc: failed_check_loc(&error).unwrap_or(expect.loc),
                    message: error.message.clone(),
                    continued: false,
                });
                span.end(Status::Error, Some(error.clone()));
                Err(Failure::error(error))
            }
        }
    }

    /// Records where a step's failure started. The steps around a failing step fail with the
    /// same error; only the innermost is kept (and one per place, for loops).
    pub(crate) fn note_step_failure(&self, step: &Step, failure: &Failure) {
        if failure.cancelled {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.iter().any(|f| f.message == failure.error.message) {
            return;
        }
        failures.push(StepFailure {
            title: self.display_name(step),
            loc: failed_check_loc(&failure.error).unwrap_or(step.loc),
            message: failure.error.message.clone(),
            continued: false,
        });
    }

    /// A step with `continue_on_error` failed: the failures it holds did not stop the run.
    pub(crate) fn note_continued(&self, failure: &Failure) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for f in failures.iter_mut() {
            if f.message == failure.error.message {
                f.continued = true;
            }
        }
    }

    fn note(&self, failure: StepFailure) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind, written: &str) -> Check {
        Check {
            kind,
            written: written.into(),
            loc: Loc { line: 3, col: 7 },
        }
    }

    fn measured(output: &str) -> Measured<'_> {
        Measured {
            output,
            usage: Usage::new(30, 12),
            duration: Duration::from_millis(1500),
            cost_usd: Some(0.002),
            path: None,
        }
    }

    #[test]
    fn text_checks_pass_and_fail_with_a_message_that_quotes_the_output() {
        let m = measured("Your refund is on its way.\nBye");
        let v = evaluate(
            &check(CheckKind::Contains("refund".into()), "refund"),
            &m,
            false,
        );
        assert!(v.passed);
        let v = evaluate(
            &check(CheckKind::Contains("credit".into()), "credit"),
            &m,
            false,
        );
        assert!(!v.passed);
        assert_eq!(
            v.phrase,
            r#"expected output to contain "credit", got "Your refund is on its way.\nBye""#
        );
        let v = evaluate(
            &check(CheckKind::NotContains("Bye".into()), "Bye"),
            &m,
            false,
        );
        assert!(!v.passed);
        let re = regex::Regex::new(r"^Your \w+").unwrap();
        assert!(evaluate(&check(CheckKind::Matches(re), "x"), &m, false).passed);
        let v = evaluate(&check(CheckKind::Equals("nope".into()), "nope"), &m, true);
        assert_eq!(v.phrase, r#"expected output to equal "nope""#, "no content");
        let m = measured("  exact \n");
        assert!(
            evaluate(
                &check(CheckKind::Equals("exact".into()), "exact"),
                &m,
                false
            )
            .passed
        );
    }

    #[test]
    fn json_schema_needs_json_that_validates() {
        let schema =
            json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
        let c = check(CheckKind::JsonSchema(schema), "{}");
        assert!(evaluate(&c, &measured(r#"{"n": 3}"#), false).passed);
        let v = evaluate(&c, &measured(r#"{"n": "x"}"#), false);
        assert!(!v.passed);
        assert!(v.phrase.contains("(at /n)"), "{}", v.phrase);
        let v = evaluate(&c, &measured("plain words"), false);
        assert!(v.phrase.contains("is not JSON"), "{}", v.phrase);
        let v = evaluate(&c, &measured(r#"{"n": "secret"}"#), true);
        assert_eq!(
            v.phrase,
            "expected output to match the JSON Schema, but it does not match it: at /n"
        );
    }

    #[test]
    fn limits_compare_tokens_time_and_cost() {
        let m = measured("x");
        let v = evaluate(&check(CheckKind::MaxTokens(40), "40"), &m, false);
        assert_eq!(
            (v.passed, v.phrase.as_str()),
            (false, "expected at most 40 tokens, used 42")
        );
        assert!(evaluate(&check(CheckKind::MaxTokens(42), "42"), &m, false).passed);
        let v = evaluate(
            &check(CheckKind::MaxDuration(Duration::from_secs(1)), "1s"),
            &m,
            false,
        );
        assert_eq!(v.phrase, "expected to take at most 1s, took 1.50s");
        assert!(!v.passed);
        assert!(evaluate(&check(CheckKind::MaxCostUsd(0.01), "0.01"), &m, false).passed);
        let unknown = Measured {
            cost_usd: None,
            ..measured("x")
        };
        assert!(!evaluate(&check(CheckKind::MaxCostUsd(0.01), "0.01"), &unknown, false).passed);
    }

    #[test]
    fn quotes_are_cut_to_two_hundred_characters() {
        let long = "a".repeat(500);
        let t = truncate(&long, QUOTE_CHARS);
        assert_eq!(t.chars().count(), QUOTE_CHARS);
        assert!(t.ends_with('…'));
    }
}
