//! End-to-end tests of `agentrace eval`: a workflow once per dataset case, each run a trace of
//! the experiment; the report (JSON, JUnit parsed back, the GitHub step summary), the gates,
//! `--filter`/`--limit`/`--repeat`, bad input refused before anything runs, and `--resume`
//! after `kill -9`.
//!
//! Scores reach a trace here as `gen_ai.evaluation.result` events written by `event:` steps:
//! the report reads whatever evaluation events a case's trace holds, whoever wrote them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// A command that sleeps, then says its word; a score `has_good` that passes when the word
/// holds "good".
const SCORED: &str = r#"name: Scored
vars:
  word: hello
steps:
  - span: check
    steps:
      - id: say
        run: ["sh", "-c", "sleep 0.5; echo {{ vars.word }}"]
      - event: gen_ai.evaluation.result
        attributes:
          gen_ai.evaluation.name: has_good
          gen_ai.evaluation.score.value: "{{ 1 if 'good' in steps.say.output else 0 }}"
          gen_ai.evaluation.explanation: "said {{ steps.say.output | trim }}"
          agentrace.evaluation.passed: "{{ 'good' in steps.say.output }}"
"#;

const CASES: &str = r#"{"id": "a", "word": "good day"}
{"id": "b", "word": "bad day"}
{"id": "c", "vars": {"word": "good night"}, "expected": "x"}
{"id": "d", "word": "good morning"}
{"id": "e", "word": "good evening"}
{"id": "f", "word": "good grief"}
{"id": "g", "word": "good luck"}
{"id": "h", "word": "good bye"}
"#;

fn env() -> TestEnv {
    let env = TestEnv::new().workflow("scored.yaml", SCORED);
    env.write("cases.jsonl", CASES);
    env
}

fn by_id(report: &Value) -> HashMap<String, Value> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c.clone()))
        .collect()
}

/// The stored traces tagged with the report's experiment, and their case ids, sorted.
fn traces_of(env: &TestEnv, report: &Value) -> (Vec<Value>, Vec<String>) {
    let id = report["experiment"]["id"].as_str().unwrap();
    let traces = env.list_json(&[
        "--meta",
        &format!("eval.experiment={id}"),
        "--limit",
        "1000",
    ]);
    let mut tagged: Vec<String> = traces
        .iter()
        .map(|t| t["metadata"]["eval.case"].as_str().unwrap().to_string())
        .collect();
    tagged.sort();
    (traces, tagged)
}

#[test]
fn every_case_is_a_trace_of_the_experiment_run_at_once_and_scored_from_its_events() {
    let env = env();
    let started = Instant::now();
    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--experiment",
        "first",
        "--format",
        "json",
        "--meta",
        "team=support",
    ]);
    let took = started.elapsed();
    // One case fails its score: without --min-pass-rate any failing case exits 1.
    assert_exit(&out, 1);
    // Eight cases of 0.5 s each, eight at once (the default -j 8): far below the 4 s in turn.
    assert!(took < Duration::from_millis(3000), "took {took:?}");
    let report = parse_json(&out.stdout);
    assert_eq!(report["experiment"]["name"], "first");
    assert_eq!(report["experiment"]["status"], "ok");
    assert_eq!(report["experiment"]["metadata"]["team"], "support");
    assert_eq!(report["summary"]["runs"], 8);
    assert_eq!(report["summary"]["passed"], 7);
    assert_eq!(report["summary"]["pass_rate"], 0.875);
    let scorer = &report["scorers"][0];
    assert_eq!(scorer["name"], "has_good");
    assert_eq!(
        (scorer["n"].as_u64(), scorer["pass_rate"].as_f64()),
        (Some(8), Some(0.875))
    );
    let cases = by_id(&report);
    assert_eq!(cases["b"]["passed"], false);
    assert_eq!(cases["b"]["scores"][0]["explanation"], "said bad day");
    assert_eq!(cases["c"]["scores"][0]["passed"], true, "the vars form");
    // Every case is a trace of its own, tagged with the experiment and the case.
    let (traces, tagged) = traces_of(&env, &report);
    assert_eq!(tagged, ["a", "b", "c", "d", "e", "f", "g", "h"]);
    assert!(traces.iter().all(|t| t["metadata"]["team"] == "support"));
    let trace_b = cases["b"]["trace_id"].as_str().unwrap();
    assert!(traces.iter().any(|t| t["trace_id"] == trace_b));
}

#[test]
fn a_case_var_the_workflow_does_not_declare_is_refused_at_its_line_before_anything_runs() {
    let env = env();
    env.write(
        "bad.jsonl",
        "{\"id\": \"a\", \"word\": \"good\"}\n{\"id\": \"b\", \"wrd\": \"typo\"}\n",
    );
    let out = env.run(&["eval", "scored.yaml", "--dataset", "bad.jsonl"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("bad.jsonl:2:1: case `b` sets var `wrd`, which is not declared"),
        "{err}"
    );
    assert!(!env.store_exists(), "nothing was written");
    env.write("broken.jsonl", "{\"word\": \"good\"}\nnot json\n");
    let out = env.run(&["eval", "scored.yaml", "--dataset", "broken.jsonl"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("broken.jsonl:2:"), "{}", stderr(&out));
    assert!(!env.store_exists(), "nothing was written");
    // No model access: refused before the store is opened.
    env.write("answer.yaml", SLOW_AGENT);
    env.write("q.jsonl", "{\"question\": \"why\"}\n");
    let out = env.run(&["eval", "answer.yaml", "--dataset", "q.jsonl"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no model access"), "{}", stderr(&out));
    assert!(!env.store_exists(), "nothing was written");
    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--filter",
        "word=x",
    ]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("no case of cases.jsonl is left to run by --filter word=x"));
    assert!(!env.store_exists(), "nothing was written");
    // An experiment to resume that does not exist.
    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--resume",
        "nope",
    ]);
    assert_exit(&out, 2);
    assert!(!env.store_exists(), "nothing was written");
}

#[test]
fn the_pass_rate_gate_junit_and_the_step_summary() {
    let env = env();
    let summary = env.path().join("summary.md");
    let out = env.run_with(
        &[
            "eval",
            "scored.yaml",
            "--dataset",
            "cases.jsonl",
            "--min-pass-rate",
            "0.8",
            "--junit",
            "report.xml",
            "--format",
            "none",
        ],
        |c| {
            c.env("GITHUB_STEP_SUMMARY", &summary)
                .env("GITHUB_ACTIONS", "true");
        },
    );
    assert_exit(&out, 0);
    // The failing case is annotated at its line of the dataset.
    assert!(
        stderr(&out).contains(
            "::error file=cases.jsonl,line=2,title=agentrace eval%3A case b::has_good: failed 0: said bad day\n"
        ),
        "{}",
        stderr(&out)
    );
    let xml = std::fs::read_to_string(env.path().join("report.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<(String, String, bool)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("classname").unwrap().to_string(),
                n.attribute("name").unwrap().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
            )
        })
        .collect();
    // A `run` testcase and one per scorer, for each of the 8 cases.
    assert_eq!(cases.len(), 16);
    let failed: Vec<_> = cases.iter().filter(|c| c.2).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].0.as_str(), failed[0].1.as_str()),
        ("b", "has_good")
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("7/8 passed (87.5%)"), "{md}");
    assert!(
        md.contains("| b | has_good: failed 0: said bad day |"),
        "{md}"
    );

    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--min-pass-rate",
        "0.9",
        "--format",
        "none",
    ]);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("pass rate 87.5% is below --min-pass-rate 90.0%"));
}

#[test]
fn filter_limit_and_repeat_choose_the_runs() {
    let env = env();
    let report = parse_json(
        &env.run(&[
            "eval",
            "scored.yaml",
            "--dataset",
            "cases.jsonl",
            "--filter",
            "expected=x",
            "--repeat",
            "2",
            "--format",
            "json",
        ])
        .stdout,
    );
    let runs: Vec<(String, u64)> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().into(),
                c["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(runs, [("c".to_string(), 1), ("c".to_string(), 2)]);
    assert_eq!(report["summary"]["pass_at_k"], 1.0);
    assert_eq!(report["summary"]["pass_all_k"], 1.0);
    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--filter",
        "word=bad day",
        "--limit",
        "1",
        "--format",
        "json",
    ]);
    assert_exit(&out, 1);
    let report = parse_json(&out.stdout);
    assert_eq!(report["summary"]["runs"], 1);
    assert_eq!(report["cases"][0]["id"], "b");
}

const SLOW_AGENT: &str = r#"name: Answer
model: gpt-4o-mini
vars:
  question: hi
agents:
  helper: { instructions: Answer. }
steps:
  - span: answer
    steps:
      - id: reply
        agent: helper
        input: "{{ vars.question }}"
      - event: gen_ai.evaluation.result
        attributes:
          gen_ai.evaluation.name: replied
          gen_ai.evaluation.score.value: 1
          agentrace.evaluation.passed: true
"#;

/// The fake server answering `reply` to every call, `answer.yaml` and 8 questions.
fn questions(reply: Reply) -> TestEnv {
    let env = TestEnv::with_fake().workflow("answer.yaml", SLOW_AGENT);
    env.server().set_default(reply);
    let cases: String = (1..=8)
        .map(|i| format!("{{\"id\": \"q{i}\", \"question\": \"question {i}\"}}\n"))
        .collect();
    env.write("questions.jsonl", &cases);
    env
}

#[test]
fn resume_after_kill_9_runs_only_the_unfinished_cases_and_reports_every_case_once() {
    let env = questions(Reply::delayed(700, Reply::text("an answer", 3, 2)));
    let child = env.spawn(&[
        "eval",
        "answer.yaml",
        "--dataset",
        "questions.jsonl",
        "--experiment",
        "nightly",
        "-j",
        "2",
    ]);
    // Kill it once a few cases have finished and others are mid-way.
    let deadline = Instant::now() + DEADLINE;
    loop {
        if env.store_exists() {
            let ok = env
                .list_json(&["--status", "ok"])
                .iter()
                .filter(|t| t["metadata"]["eval.case"].is_string())
                .count();
            if ok >= 2 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no case finished in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    crate::processes::signal(child.id(), nix::sys::signal::Signal::SIGKILL);
    let killed = wait_within(child, DEADLINE);
    assert_eq!(killed.status.code(), None, "killed by a signal");
    // Its process is gone: the experiment reads as interrupted.
    assert_eq!(env.list_json(&["--experiments"])[0]["status"], "cancelled");
    let before = env.server().requests().len();
    assert!(before < 8, "the kill came mid-way ({before} model calls)");

    let out = env.run(&[
        "eval",
        "answer.yaml",
        "--dataset",
        "questions.jsonl",
        "--resume",
        "nightly",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    let report = parse_json(&out.stdout);
    assert_eq!(report["experiment"]["name"], "nightly");
    assert_eq!(report["summary"]["runs"], 8);
    assert_eq!(report["summary"]["passed"], 8);
    // Only the cases without a finished trace ran again.
    let finished_before = 8 - (env.server().requests().len() - before);
    assert!(finished_before >= 2, "{finished_before}");
    // Every case exactly once: in the report, and among the experiment's traces in the store.
    let (traces, tagged) = traces_of(&env, &report);
    let want: Vec<String> = (1..=8).map(|i| format!("q{i}")).collect();
    assert_eq!(tagged, want, "{traces:#?}");
    let reported: Vec<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trace_id"].as_str().unwrap())
        .collect();
    assert!(
        reported
            .iter()
            .all(|t| traces.iter().any(|x| x["trace_id"] == *t))
    );
}

#[test]
fn compare_pairs_cases_by_id_and_the_regression_gate_fails_on_a_worse_scorer() {
    let env = env();
    // B's scorer passes only the "bad" word: 7 cases regress, 1 improves.
    env.write(
        "worse.yaml",
        &SCORED.replace("'good' in steps.say.output", "'bad' in steps.say.output"),
    );
    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--experiment",
        "base",
        "--format",
        "none",
    ]);
    assert_exit(&out, 1);
    let out = env.run(&[
        "eval",
        "worse.yaml",
        "--dataset",
        "cases.jsonl",
        "--experiment",
        "cand",
        "--min-pass-rate",
        "0",
        "--baseline",
        "base",
        "--fail-on-regression",
    ]);
    // The pass-rate gate passes (0), the regression gate does not.
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("has_good: B is worse than A"), "{text}");
    assert!(stderr(&out).contains("regression against base: worse on (case), has_good"));

    let cmp = env.json(&["eval", "compare", "base", "cand", "--format", "json"]);
    let has_good = cmp["scorers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "has_good")
        .unwrap()
        .clone();
    assert_eq!(has_good["pairs"], 8);
    assert_eq!(
        (
            has_good["improved"].as_u64(),
            has_good["regressed"].as_u64()
        ),
        (Some(1), Some(7))
    );
    assert_eq!(has_good["change"], -0.75);
    assert_eq!(has_good["verdict"], "worse");
    // McNemar on 7 against 1: 2 · (1 + 8) / 256.
    assert!((has_good["p_value"].as_f64().unwrap() - 18.0 / 256.0).abs() < 1e-6);
    let regressed: Vec<&str> = cmp["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["scorer"] == "has_good" && c["regressed"] == true)
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    assert_eq!(regressed, ["a", "c", "d", "e", "f", "g", "h"]);
    // The same experiments compared with themselves: nothing to tell apart, exit 0 under the gate.
    let out = env.run(&["eval", "compare", "base", "base", "--fail-on-regression"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("has_good: B is not distinguishable from A"));
    let out = env.run(&["eval", "compare", "base", "cand", "--fail-on-regression"]);
    assert_exit(&out, 1);

    // The experiments are listed newest first, and `show` prints one's report again.
    let listed = env.list_json(&["--experiments"]);
    let names: Vec<&str> = listed.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cand", "base"]);
    assert_eq!(listed[1]["runs"], 8);
    let shown = env.json(&["show", "base", "--format", "json"]);
    assert_eq!(shown["experiment"]["id"], listed[1]["id"]);
    assert_eq!(shown["summary"]["passed"], 7);
    let by_prefix = env.run(&["show", &listed[1]["id"].as_str().unwrap()[..28]]);
    assert_exit(&by_prefix, 0);
    assert!(stdout(&by_prefix).contains("experiment base ("));
    assert!(stdout(&by_prefix).contains("has_good: failed 0: said bad day"));
}

#[test]
fn the_token_budget_is_the_whole_experiments_and_no_case_starts_once_it_is_spent() {
    let env = questions(Reply::text("an answer", 3, 2));
    let out = env.run(&[
        "eval",
        "answer.yaml",
        "--dataset",
        "questions.jsonl",
        "-j",
        "1",
        "--max-tokens",
        "12",
        "--format",
        "json",
    ]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("the experiment's budget of 12 tokens is spent"),
        "{}",
        stderr(&out)
    );
    let report = parse_json(&out.stdout);
    assert_eq!(report["experiment"]["status"], "error");
    // 5 tokens a case: two within the budget, the third crosses it, and no fourth starts.
    assert_eq!(report["summary"]["ran"], 3);
    assert_eq!(env.server().requests().len(), 3);
    assert_eq!(report["cases"][2]["status"], "error");
    assert_eq!(report["cases"][3]["status"], Value::Null);
}

#[test]
fn ctrl_c_cancels_the_running_cases_exits_130_and_resume_finishes_the_experiment() {
    let env = env();
    let child = env.spawn(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--experiment",
        "cut",
        "-j",
        "2",
    ]);
    let deadline = Instant::now() + DEADLINE;
    while !env.store_exists()
        || env
            .list_json(&["--status", "ok"])
            .iter()
            .all(|t| !t["metadata"]["eval.case"].is_string())
    {
        assert!(Instant::now() < deadline, "no case finished in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Resuming it while it runs would run its cases twice.
    let twice = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--resume",
        "cut",
    ]);
    assert_exit(&twice, 2);
    assert!(
        stderr(&twice).contains("is running in another process"),
        "{}",
        stderr(&twice)
    );
    assert_eq!(env.list_json(&["--experiments"])[0]["status"], "running");
    crate::processes::signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let out = wait_within(child, DEADLINE);
    assert_exit(&out, 130);
    assert!(stderr(&out).contains("--resume exp_"), "{}", stderr(&out));
    let cut = &env.list_json(&["--experiments"])[0];
    assert_eq!(cut["status"], "cancelled");
    let out = env.run(&[
        "eval",
        "scored.yaml",
        "--dataset",
        "cases.jsonl",
        "--resume",
        "cut",
        "--format",
        "json",
    ]);
    assert_exit(&out, 1);
    let report = parse_json(&out.stdout);
    assert_eq!(report["experiment"]["status"], "ok");
    assert_eq!(report["summary"]["ran"], 8);
    let (_, tagged) = traces_of(&env, &report);
    assert_eq!(tagged, ["a", "b", "c", "d", "e", "f", "g", "h"]);
}

#[test]
fn on_a_terminal_a_live_line_counts_the_cases_and_stdout_is_only_the_report() {
    let env = env();
    let (code, out, term) = crate::terminal::run_in_pty(
        &env,
        &[
            "eval",
            "scored.yaml",
            "--dataset",
            "cases.jsonl",
            "-j",
            "2",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(parse_json(out.as_bytes())["summary"]["runs"], 8);
    // The line is redrawn in place: done/total, the pass rate so far, the cost, the ETA.
    assert!(
        term.contains("\r\u{1b}[2Keval 0/8  pass -  cost -  ETA -"),
        "{term:?}"
    );
    let counted = term.split("\r\u{1b}[2K").any(|line| {
        line.starts_with("eval ")
            && !line.starts_with("eval 0/8")
            && line.contains("/8  pass ")
            && line.contains("%  cost -  ETA ")
    });
    assert!(counted, "{term:?}");
    assert!(
        !term.contains("[1/8]"),
        "no plain lines on a terminal: {term:?}"
    );
}

#[test]
fn on_a_narrowed_terminal_the_live_line_is_cut_to_its_width() {
    let env = env();
    let (code, _, term, mark) = crate::terminal::run_in_pty_with(
        &env,
        &[
            "eval",
            "scored.yaml",
            "--dataset",
            "cases.jsonl",
            "-j",
            "1",
            "--format",
            "none",
        ],
        |pty| {
            std::thread::sleep(std::time::Duration::from_millis(500));
            pty.resize(24, 40);
            std::thread::sleep(std::time::Duration::from_millis(300));
            pty.received()
        },
    );
    assert_eq!(code, Some(1), "{term:?}");
    let mut mark = mark.min(term.len());
    while !term.is_char_boundary(mark) {
        mark -= 1;
    }
    let after = &term[mark..];
    let lines: Vec<&str> = after.split("\r\u{1b}[2K").skip(1).collect();
    assert!(
        lines.iter().any(|l| l.starts_with("eval ")),
        "the line is redrawn after the resize: {after:?}"
    );
    for line in lines {
        assert!(line.chars().count() < 24, "{line:?} in {after:?}");
    }
}

/// A workflow whose cases are its own: `dataset:` names a file beside it, or holds the cases.
fn with_dataset(dataset: &str) -> String {
    format!(
        "name: Own cases\nvars:\n  word: hello\n{dataset}\nsteps:\n  - id: say\n    run: [echo, \"{{{{ vars.word }}}}\"]\n    scores:\n      - {{ name: expected, contains: \"{{{{ case.expected }}}}\" }}\n"
    )
}

#[test]
fn the_workflows_own_dataset_is_run_when_no_dataset_is_given() {
    let env = TestEnv::new();
    env.write(
        "evals/cases.jsonl",
        "{\"id\": \"a\", \"word\": \"good\", \"expected\": \"good\"}\n{\"id\": \"b\", \"word\": \"bad\", \"expected\": \"good\"}\n",
    );
    env.write("evals/file.yaml", &with_dataset("dataset: cases.jsonl"));
    env.write(
        "evals/inline.yaml",
        &with_dataset(
            "dataset:\n  - { id: a, word: good, expected: good }\n  - { id: b, word: bad, expected: good }",
        ),
    );
    for file in ["evals/file.yaml", "evals/inline.yaml"] {
        let out = env.run(&["eval", file, "--format", "json"]);
        assert_exit(&out, 1);
        let report = parse_json(&out.stdout);
        let cases = by_id(&report);
        assert_eq!(cases.len(), 2, "{file}: {report:#}");
        assert_eq!(cases["a"]["passed"], true, "{file}");
        assert_eq!(cases["b"]["passed"], false, "{file}");
    }
    // The inline cases' hash is of the cases alone: editing the steps keeps it.
    let hash = |file: &str| {
        let out = env.run(&["eval", file, "--format", "json"]);
        parse_json(&out.stdout)["experiment"]["dataset_hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = hash("evals/inline.yaml");
    let edited = with_dataset(
        "dataset:\n  - { id: a, word: good, expected: good }\n  - { id: b, word: bad, expected: good }",
    )
    .replace("name: Own cases", "name: Own cases, renamed");
    env.write("evals/inline.yaml", &edited);
    assert_eq!(hash("evals/inline.yaml"), before);
    // --dataset wins over the workflow's; run ignores `dataset:`.
    env.write(
        "other.jsonl",
        "{\"id\": \"z\", \"word\": \"good\", \"expected\": \"good\"}\n",
    );
    let out = env.run(&[
        "eval",
        "evals/file.yaml",
        "--dataset",
        "other.jsonl",
        "--format",
        "json",
    ]);
    assert_exit(&out, 0);
    assert_eq!(by_id(&parse_json(&out.stdout)).len(), 1);
    assert_exit(&env.run(&["run", "evals/file.yaml", "--format", "none"]), 0);
}

#[test]
fn a_bad_workflow_dataset_is_an_error_at_its_place() {
    let env = TestEnv::new();
    env.write("txt.yaml", &with_dataset("dataset: cases.txt"));
    let out = env.run(&["validate", "txt.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out)
            .contains("txt.yaml:4:10: dataset `cases.txt` is not a .jsonl, .csv or .yaml file"),
        "{}",
        stderr(&out)
    );
    env.write(
        "items.yaml",
        &with_dataset("dataset:\n  - { word: good }\n  - 3"),
    );
    let out = env.run(&["validate", "items.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("items.yaml:6:5: a case of `dataset` is a mapping, found a number"),
        "{}",
        stderr(&out)
    );
    // An undeclared var in an inline case is named at its line in the workflow.
    env.write(
        "undeclared.yaml",
        &with_dataset("dataset:\n  - { word: good }\n  - { colour: red }"),
    );
    let out = env.run(&["eval", "undeclared.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("undeclared.yaml:6:"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
    // No dataset anywhere.
    env.write("none.yaml", &with_dataset(""));
    let out = env.run(&["eval", "none.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("no cases: give --dataset FILE or write `dataset:` in the workflow"),
        "{}",
        stderr(&out)
    );
    assert!(!env.store_exists(), "nothing was stored");
}

#[cfg(target_os = "linux")]
#[test]
fn an_eval_of_several_cases_at_once_has_room_for_its_connections_from_the_start() {
    // As `run` does for a fan-out (tests/e2e/concurrency.rs): the descriptor table is grown
    // before the writer's thread starts, for every connection the providers allow and 64 more.
    let env = TestEnv::new();
    let workflow = |name: &str| {
        format!(
            "name: {name}\nprovider: {{ max_connections: 300 }}\ndataset:\n  - {{ id: a }}\n  - {{ id: b }}\n\
             steps:\n  - {{ id: size, run: [sh, -c, \"sed -n 's/^FDSize:[[:space:]]*//p' /proc/$PPID/status\"] }}\n"
        )
    };
    env.write("evals/size.yaml", &workflow("Size"));
    let size_with = |jobs: &str| -> u64 {
        let out = env.run(&["eval", "evals/size.yaml", "-j", jobs, "--format", "json"]);
        assert_exit(&out, 0);
        let report = parse_json(&out.stdout);
        let id = by_id(&report)["a"]["trace_id"]
            .as_str()
            .unwrap()
            .to_string();
        let trace = env.show_json(&id);
        let size = crate::traces::find(&trace, "command", "size")["attributes"]["stdout"].clone();
        size.as_str()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("FDSize not read: {trace:#}"))
    };
    let at_once = size_with("2");
    let one_by_one = size_with("1");
    assert!(at_once >= 300 + 64, "two jobs: the table holds {at_once}");
    assert!(
        one_by_one < 300 + 64,
        "one job: the table holds {one_by_one}"
    );
}
