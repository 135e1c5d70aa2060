//! What an experiment leaves behind once its cases ran: the report on stdout (tables or JSON),
//! `--junit FILE` (a testcase per case and scorer, plus one for the run itself), the GitHub
//! step summary when `GITHUB_STEP_SUMMARY` is set, and the exit code of `--min-pass-rate`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::EvalFormat;
use crate::cli::github::{cell, escape_data, escape_property};
use crate::cli::{Globals, print_stdout};
use crate::error::{Error, ExitCode};
use crate::render::eval::{
    CaseResult, ExperimentInfo, case_label, failure_reasons, report_json, report_text, summarize,
};
use crate::trace::Status;

/// The outputs asked for.
pub(crate) struct Gates<'a> {
    pub format: EvalFormat,
    pub junit: Option<&'a Path>,
    pub min_pass_rate: Option<f64>,
    /// The workflow file as the user named it (the JUnit suite's and summary's label).
    pub label: &'a str,
    /// The dataset file as the user named it, and the line of each case (for annotations).
    pub dataset: &'a str,
    pub lines: &'a std::collections::HashMap<String, u32>,
}

/// Prints the report, writes the CI outputs, and gives the exit code of the gates.
pub(crate) fn report(
    info: &ExperimentInfo,
    results: &[CaseResult],
    gates: &Gates<'_>,
    globals: &Globals,
) -> Result<ExitCode, Error> {
    match gates.format {
        EvalFormat::Text => print_stdout(&report_text(
            info,
            results,
            &globals.stdout_theme(),
            globals.width(),
        )),
        EvalFormat::Json => {
            let mut json = report_json(info, results);
            crate::trace::redact::redact_value(&mut json);
            print_stdout(&format!(
                "{}\n",
                serde_json::to_string(&json).unwrap_or_default()
            ));
        }
        EvalFormat::None => {}
    }
    if let Some(path) = gates.junit {
        write_junit(path, gates.label, info, results)?;
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        eprint!("{}", annotations(gates, info.repeat, results));
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    {
        crate::cli::github::append_summary(&path, &step_summary(info, results));
    }
    let code = super::gate(results, info.runs, info.repeat, gates.min_pass_rate);
    if let Some(p) = gates.min_pass_rate
        && code == ExitCode::Failed
    {
        let s = summarize(results, info.runs, info.repeat);
        eprintln!(
            "error: pass rate {:.1}% is below --min-pass-rate {:.1}%",
            s.pass_rate * 100.0,
            p * 100.0
        );
    }
    Ok(code)
}

/// One `<testsuite>` for the experiment; per case a `run` testcase (the run's own status) and
/// one testcase per score (classname = the case, name = the scorer).
fn write_junit(
    path: &Path,
    label: &str,
    info: &ExperimentInfo,
    results: &[CaseResult],
) -> Result<(), Error> {
    let mut report = Report::new(format!("agentrace eval {label}"));
    let mut suite = TestSuite::new(info.name.clone());
    suite.add_property(Property::new("experiment", info.id.clone()));
    suite.add_property(Property::new("workflow", info.workflow.clone()));
    suite.add_property(Property::new("dataset", info.dataset.clone()));
    for c in results {
        let class = case_label(c, info.repeat);
        let time = Duration::from_secs_f64(c.duration_ms.unwrap_or(0.0).max(0.0) / 1000.0);
        let run_status = match c.status {
            Some(Status::Ok) => TestCaseStatus::success(),
            None => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(failure_reasons(c).join("; "));
                s
            }
            Some(_) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type("run");
                s.set_message(failure_reasons(c).first().cloned().unwrap_or_default());
                s
            }
        };
        let mut run = TestCase::new("run", run_status);
        run.set_classname(class.clone()).set_time(time);
        if let Some(t) = c.trace_id {
            run.add_property(Property::new("trace_id", t.to_string()));
        }
        suite.add_test_case(run);
        for s in &c.scores {
            let status = if s.error.is_some() {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_type("score");
                st.set_message(s.error.clone().unwrap_or_default());
                st
            } else if s.passed == Some(false) {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_type("score");
                let value = s.value.map(|v| format!(" {v}")).unwrap_or_default();
                st.set_message(format!(
                    "{} failed{value}{}",
                    s.name,
                    s.explanation
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ));
                st
            } else {
                TestCaseStatus::success()
            };
            let mut tc = TestCase::new(s.name.clone(), status);
            tc.set_classname(class.clone());
            if let Some(v) = s.value {
                tc.add_property(Property::new("value", v.to_string()));
            }
            suite.add_test_case(tc);
        }
    }
    report.add_test_suite(suite);
    let xml = report
        .to_string()
        .map_err(|e| Error::usage(format!("cannot write the JUnit report: {e}")))?;
    let tmp = path.with_extension("xml.tmp");
    std::fs::write(&tmp, xml)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Under GitHub Actions, one `::error` per failing run, at its case's line in the dataset.
fn annotations(gates: &Gates<'_>, repeat: u32, results: &[CaseResult]) -> String {
    let mut out = String::new();
    for c in results.iter().filter(|c| !c.passed()) {
        let line = gates.lines.get(&c.case_id).copied().unwrap_or(1);
        out.push_str(&format!(
            "::error file={},line={line},title={}::{}\n",
            escape_property(gates.dataset),
            escape_property(&format!("agentrace eval: case {}", case_label(c, repeat))),
            escape_data(&failure_reasons(c).join("\n"))
        ));
    }
    out
}

/// The Markdown of the GitHub step summary: the totals, the scorers, the failing cases.
fn step_summary(info: &ExperimentInfo, results: &[CaseResult]) -> String {
    let s = summarize(results, info.runs, info.repeat);
    let icon = if s.passed == s.runs { "✅" } else { "❌" };
    let mut out = format!(
        "### {icon} agentrace eval: {} — {}/{} passed ({:.1}%)\n\n",
        cell(&info.name),
        s.passed,
        s.runs,
        s.pass_rate * 100.0
    );
    out.push_str(&format!(
        "Workflow `{}`, dataset `{}`, experiment `{}`\n\n",
        cell(&info.workflow),
        cell(&info.dataset),
        info.id
    ));
    if !s.scorers.is_empty() {
        out.push_str("| scorer | n | mean | pass rate | errors |\n|---|---:|---:|---:|---:|\n");
        for r in &s.scorers {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(&r.name),
                r.n,
                r.mean.map_or_else(|| "-".into(), |m| format!("{m:.3}")),
                r.pass_rate
                    .map_or_else(|| "-".into(), |p| format!("{:.1}%", p * 100.0)),
                r.errors
            ));
        }
        out.push('\n');
    }
    let failing: Vec<&CaseResult> = results.iter().filter(|c| !c.passed()).collect();
    if !failing.is_empty() {
        out.push_str("| failing case | why |\n|---|---|\n");
        for c in failing.iter().take(50) {
            out.push_str(&format!(
                "| {} | {} |\n",
                cell(&case_label(c, info.repeat)),
                cell(&failure_reasons(c).join("; "))
            ));
        }
        if failing.len() > 50 {
            out.push_str(&format!("\n…and {} more\n", failing.len() - 50));
        }
        out.push('\n');
    }
    out
}

/// `eval -o report.html`: the report and every case's trace in one page that fetches nothing
/// (`export::html::render_experiment`), written whole or not at all.
pub(crate) fn write_html(
    store: &crate::store::Store,
    path: &Path,
    info: &ExperimentInfo,
    results: &[CaseResult],
) -> Result<(), Error> {
    let mut json = report_json(info, results);
    crate::trace::redact::redact_value(&mut json);
    let docs = results
        .iter()
        .filter_map(|r| r.trace_id)
        .map(|id| store.find(&id.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let page = crate::export::html::render_experiment(&info.name, &json, &docs);
    crate::cli::junit::write_atomic(path, &page)
}
