//! `run --junit FILE`: the run as JUnit XML, the format every CI system reads test results in
//! (GitHub test reporters, GitLab, Jenkins).
//!
//! One `<testsuite>` per trace (name, timestamp, time, counts; trace id, group and workflow as
//! properties) and one `<testcase>` per step that produced a span (classname = the workflow's
//! name, name = the step's id or display name, time; the span id as a property). A step whose
//! expectations failed has a `<failure type="expectation">` (its message names every failed
//! check; the body lists them one per line); a step that failed otherwise has an
//! `<error type="step">` — JUnit's convention: a failure is an assertion that did not hold, an
//! error is a test that could not run to its end. Skipped and cancelled steps are `<skipped/>`,
//! the steps after a failure among them (the engine records them), so a failing run counts as
//! many tests as a passing one.
//!
//! A failure is reported once, on the step where it happened: a step that holds other steps
//! (`span:`, `parallel:`, `foreach:`) is no test case of its own, since its span fails only
//! because a step inside it did (unless the failure was its own: a `foreach:` list that is not
//! a list). An agent step that failed in a model call reports that call's message. The file is
//! written to a temporary file and renamed into place, so a reader never sees half a report.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;

use crate::error::Error;
use crate::trace::failure::caused_by;
use crate::trace::{Span, SpanId, SpanKind, Status, Timestamp, TraceDoc};

/// One step as CI outputs show it: the span of the step (the last agent of a handoff chain
/// gives the status), its name, and what went wrong.
pub(crate) struct StepRow<'d> {
    pub span: &'d Span,
    pub name: String,
    pub status: Status,
    pub duration_ms: f64,
    pub tokens: u64,
    /// What went wrong, or why a skipped step did not run.
    pub message: Option<String>,
    /// The failure is expectations that did not hold (not an error of the step itself).
    pub expectation: bool,
    /// The failed checks, one line each (`contains: expected "x", got "y"`).
    pub details: Vec<String>,
}

/// A `foreach:` item span (not a step).
fn is_item(span: &Span) -> bool {
    span.kind == SpanKind::Custom
        && span.attributes.contains_key("index")
        && span.attributes.contains_key("item")
}

/// The steps of a trace in span order: agent, command and custom spans, less loop items and the
/// agent spans that continue a handoff (folded into the step they belong to).
pub(crate) fn step_rows(doc: &TraceDoc) -> Vec<StepRow<'_>> {
    let is_step = |span: &Span| match span.kind {
        SpanKind::Agent | SpanKind::Command => true,
        SpanKind::Custom => !is_item(span),
        _ => false,
    };
    // The spans that hold steps (a loop's items hold the steps of their loop).
    let mut holders: HashSet<SpanId> = HashSet::new();
    let mut items: HashMap<SpanId, Option<SpanId>> = HashMap::new();
    for span in &doc.spans {
        if is_item(span) {
            items.insert(span.span_id, span.parent_id);
        }
    }
    for span in doc.spans.iter().filter(|s| is_step(s)) {
        let mut parent = span.parent_id;
        while let Some(id) = parent {
            holders.insert(id);
            match items.get(&id) {
                Some(&up) => parent = up,
                None => break,
            }
        }
    }
    let index: HashMap<SpanId, &Span> = doc.spans.iter().map(|s| (s.span_id, s)).collect();
    let mut rows: Vec<StepRow> = Vec::new();
    for span in &doc.spans {
        let failed_inside = span.error.as_ref().and_then(caused_by).is_some();
        if !is_step(span)
            || (holders.contains(&span.span_id) && (failed_inside || span.error.is_none()))
        {
            continue;
        }
        let (mut message, expectation, details) = failure_of(origin(&index, span));
        if span.status == Status::Skipped {
            message = skip_reason(span);
        }
        let tokens = span.usage().map_or(0, |u| u.total_tokens);
        if span.kind == SpanKind::Agent
            && span.attributes.contains_key("handoff_from")
            && let Some(first) = rows
                .iter_mut()
                .rev()
                .find(|r| r.span.kind == SpanKind::Agent && r.span.parent_id == span.parent_id)
        {
            first.status = span.status;
            first.tokens += tokens;
            if let Some(end) = span.ended_at {
                first.duration_ms = first.span.started_at.ms_until(end);
            }
            first.message = message;
            first.expectation = expectation;
            first.details = details;
            continue;
        }
        rows.push(StepRow {
            span,
            name: step_name(doc, span),
            status: span.status,
            duration_ms: span.duration_ms().unwrap_or(0.0),
            tokens,
            message,
            expectation,
            details,
        });
    }
    rows
}

/// The step id (or the span's name), with the loop items it ran for: `summary [topic A]`.
fn step_name(doc: &TraceDoc, span: &Span) -> String {
    let base = span
        .attributes
        .get("step_id")
        .and_then(Value::as_str)
        .unwrap_or(&span.name)
        .to_string();
    let mut items = Vec::new();
    let mut parent = span.parent_id;
    while let Some(id) = parent {
        let Some(p) = doc.spans.iter().find(|s| s.span_id == id) else {
            break;
        };
        if is_item(p) {
            items.push(p.name.clone());
        }
        parent = p.parent_id;
    }
    if items.is_empty() {
        return base;
    }
    items.reverse();
    format!("{base} [{}]", items.join(" › "))
}

/// Why a skipped step did not run: its `if:` was false, or an earlier step failed.
fn skip_reason(span: &Span) -> Option<String> {
    span.attributes
        .get("skip_reason")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The span where the failure of `span` happened: `span` itself, or the span its error's
/// `caused_by` points at (a model call inside an agent step).
fn origin<'d>(index: &HashMap<SpanId, &'d Span>, span: &'d Span) -> &'d Span {
    let mut current = span;
    // Each hop goes to another span; the bound guards a damaged store's loops.
    for _ in 0..index.len() {
        match current
            .error
            .as_ref()
            .and_then(caused_by)
            .and_then(|id| index.get(&id))
        {
            Some(next) if next.span_id != current.span_id => current = next,
            _ => break,
        }
    }
    current
}

/// The span's error message, whether it is failed expectations, and those one per line.
fn failure_of(span: &Span) -> (Option<String>, bool, Vec<String>) {
    let Some(error) = &span.error else {
        return (None, false, Vec::new());
    };
    let failed = error.data.get("expectations").and_then(Value::as_array);
    let details = failed
        .map(|checks| {
            checks
                .iter()
                .map(|c| {
                    let text = |v: Option<&Value>| match v {
                        Some(Value::String(s)) => serde_json::to_string(s).unwrap_or_default(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    let mut line = format!(
                        "{}: expected {} (line {}, col {})",
                        c.get("check").and_then(Value::as_str).unwrap_or("check"),
                        text(c.get("expected")),
                        c.get("line").map_or(0, |l| l.as_u64().unwrap_or(0)),
                        c.get("col").map_or(0, |l| l.as_u64().unwrap_or(0)),
                    );
                    if c.get("actual").is_some() {
                        line.push_str(&format!(", got {}", text(c.get("actual"))));
                    }
                    line
                })
                .collect()
        })
        .unwrap_or_default();
    (Some(error.message.clone()), failed.is_some(), details)
}

fn timestamp(ts: Timestamp) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::from_timestamp_micros(ts.micros()).map(|t| t.fixed_offset())
}

fn seconds(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or_default()
}

/// The report of a run: `workflow` names the report and is every testcase's classname.
pub fn report(workflow: &str, docs: &[TraceDoc]) -> Report {
    let mut report = Report::new(workflow);
    let mut total_ms = 0.0;
    for doc in docs {
        let trace = &doc.trace;
        let mut suite = TestSuite::new(trace.name.as_str());
        if let Some(t) = timestamp(trace.started_at) {
            suite.set_timestamp(t);
        }
        let ms = trace.duration_ms().unwrap_or(0.0);
        total_ms += ms;
        suite.set_time(seconds(ms));
        suite.add_property(Property::new("trace_id", trace.trace_id.to_string()));
        suite.add_property(Property::new("workflow", trace.workflow.as_str()));
        suite.add_property(Property::new("status", trace.status.as_str()));
        if let Some(group) = &trace.group_id {
            suite.add_property(Property::new("group_id", group.as_str()));
        }
        for row in step_rows(doc) {
            suite.add_test_case(test_case(workflow, &row));
        }
        report.add_test_suite(suite);
    }
    report.set_time(seconds(total_ms));
    report
}

fn test_case(workflow: &str, row: &StepRow) -> TestCase {
    let status = match row.status {
        Status::Ok => TestCaseStatus::success(),
        Status::Skipped | Status::Cancelled => {
            let mut s = TestCaseStatus::skipped();
            let reason = match row.status {
                Status::Cancelled => Some("cancelled".to_string()),
                _ => row.message.clone(),
            };
            if let Some(reason) = reason {
                s.set_message(reason);
            }
            s
        }
        _ => {
            let (kind, ty) = if row.expectation {
                (NonSuccessKind::Failure, "expectation")
            } else {
                (NonSuccessKind::Error, "step")
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_type(ty);
            s.set_message(row.message.clone().unwrap_or_else(|| "failed".into()));
            if !row.details.is_empty() {
                s.set_description(row.details.join("\n"));
            }
            s
        }
    };
    let mut case = TestCase::new(row.name.as_str(), status);
    case.set_classname(workflow);
    case.set_time(seconds(row.duration_ms));
    case.add_property(Property::new("span_id", row.span.span_id.to_string()));
    case.add_property(Property::new("kind", row.span.kind.as_str()));
    case
}

/// Writes `text` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    let fail = |source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "junit.xml".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

/// `run --junit FILE`: the report of `docs`, written atomically.
pub fn write(path: &Path, workflow: &str, docs: &[TraceDoc]) -> Result<(), Error> {
    let xml = report(workflow, docs)
        .to_string()
        .map_err(|e| Error::WriteFile {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    write_atomic(path, &xml)
}
