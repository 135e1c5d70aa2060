//! `serve`'s experiments: `GET /api/experiments`, `/api/experiments/{ref}` and `/api/compare`
//! answer with exactly the JSON of `list --experiments`, `show EXPERIMENT` and `eval compare`,
//! and the Experiments page (list, one experiment's cases, two side by side) in headless
//! Chromium.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::serve::Served;
use crate::support::*;

/// Says the case's word; two scores from its events: `has_good` (passes when the word holds
/// "good") and `has_day` (a value only, no verdict).
const SCORED: &str = r#"name: Scored
vars:
  word: hello
steps:
  - span: check
    steps:
      - id: say
        run: ["echo", "{{ vars.word }}"]
      - event: gen_ai.evaluation.result
        attributes:
          gen_ai.evaluation.name: has_good
          gen_ai.evaluation.score.value: "{{ 1 if 'good' in steps.say.output else 0 }}"
          agentrace.evaluation.passed: "{{ 'good' in steps.say.output }}"
      - event: gen_ai.evaluation.result
        attributes:
          gen_ai.evaluation.name: has_day
          gen_ai.evaluation.score.value: "{{ 1 if 'day' in steps.say.output else 0 }}"
"#;

/// The baseline: two of five cases fail `has_good`.
const BASE: &str = r#"{"id": "a", "word": "good day"}
{"id": "b", "word": "bad day"}
{"id": "c", "word": "good night"}
{"id": "d", "word": "bad night"}
{"id": "e", "word": "good day"}
"#;

/// The candidate: `b` and `d` now pass, `c` regresses.
const NEXT: &str = r#"{"id": "a", "word": "good day"}
{"id": "b", "word": "good day"}
{"id": "c", "word": "bad night"}
{"id": "d", "word": "good night"}
{"id": "e", "word": "good day"}
"#;

/// A store with the experiments `base` and `next`, each five cases of `scored.yaml`, and their
/// HTML reports `base.html` and `next.html` (`eval -o`).
pub(crate) fn two_experiments() -> TestEnv {
    let env = TestEnv::new().workflow("scored.yaml", SCORED);
    env.write("base.jsonl", BASE);
    env.write("next.jsonl", NEXT);
    for (name, data) in [("base", "base.jsonl"), ("next", "next.jsonl")] {
        let out = env.run(&[
            "eval",
            "scored.yaml",
            "--dataset",
            data,
            "--experiment",
            name,
            "--format",
            "json",
            "-o",
            &format!("{name}.html"),
        ]);
        // A failing case exits 1; the experiment is recorded all the same.
        assert_exit(&out, 1);
    }
    env
}

#[test]
fn the_experiment_routes_answer_with_the_clis_json() {
    let env = two_experiments();
    let served = Served::start(&env, &[]);

    let listed = env.json(&["list", "--experiments", "--format", "json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(served.get_json("/api/experiments"), listed);
    assert_eq!(
        served.get_json("/api/experiments?limit=1"),
        Value::Array(vec![listed[0].clone()])
    );

    let id = listed[1]["id"].as_str().unwrap();
    assert_eq!(listed[1]["name"], "base");
    let shown = env.json(&["show", id, "--format", "json"]);
    assert_eq!(shown["cases"].as_array().map(Vec::len), Some(5));
    for reference in [id, &id[..id.len() - 4], "base"] {
        assert_eq!(
            served.get_json(&format!("/api/experiments/{reference}")),
            shown,
            "{reference}"
        );
    }

    let compared = env.json(&["eval", "compare", "base", "next", "--format", "json"]);
    assert!(
        !compared["scorers"].as_array().unwrap().is_empty(),
        "{compared}"
    );
    assert_eq!(served.get_json("/api/compare?a=base&b=next"), compared);

    let missing = served.get("/api/experiments/nightly");
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(
        missing.json()["error"],
        "no experiment matches nightly in the store"
    );
    let missing = served.get("/api/compare?a=base&b=nightly");
    assert_eq!(missing.status, 404, "{}", missing.text());
    for bad in [
        "/api/compare?a=base",
        "/api/compare?a=x&b=y&c=z",
        "/api/experiments?limit=many",
    ] {
        let r = served.get(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{bad}");
    }
}

#[test]
fn the_experiment_routes_need_the_token_like_every_api_route() {
    let env = two_experiments().env("AGENTRACE_TOKEN", "tok-s3cret-token");
    let served = Served::start(&env, &[]);
    for path in [
        "/api/experiments",
        "/api/experiments/base",
        "/api/compare?a=base&b=next",
    ] {
        assert_eq!(served.get(path).status, 401, "{path}");
        let r = served.request(
            "GET",
            path,
            &[("Authorization", "Bearer tok-s3cret-token")],
            &[],
        );
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
}

#[test]
fn the_experiments_pages_list_filter_sort_link_and_compare_in_headless_chromium() {
    let Some(browser) = crate::files::chromium() else {
        return;
    };
    let Some(node_path) = crate::serve::playwright() else {
        return;
    };
    let env = two_experiments();
    let served = Served::start(&env, &[]);
    let screenshot = env.path().join("compare.png");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/experiments.mjs"))
        .args(["--base", &served.url("")])
        .args(["--a", "base", "--b", "next", "--scorer", "has_good"])
        .args(["--screenshot", screenshot.to_str().unwrap()])
        .args(["--report", env.path().join("base.html").to_str().unwrap()])
        .env("CHROMIUM", &browser)
        .env("NODE_PATH", &node_path);
    let out = output_within(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "the Experiments pages failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let summary: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    // base: a, c and e pass has_good; b and d fail it.
    assert_eq!(summary["cases"], 5, "{summary}");
    assert_eq!(summary["failing"], 2, "{summary}");
    assert_eq!(summary["sorted"], json!([1, 1, 1, 0, 0]), "{summary}");
    let compared = env.json(&["eval", "compare", "base", "next", "--format", "json"]);
    for row in compared["scorers"].as_array().unwrap() {
        assert_eq!(
            summary["verdicts"][row["name"].as_str().unwrap()],
            row["verdict"],
            "{summary}"
        );
    }
    assert_eq!(
        summary["changed"],
        compared["changes"].as_array().unwrap().len(),
        "{summary}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    // The HTML report of `base` shows its cases, filters and sorts them as serve does, and opens
    // a case's trace from the file itself.
    let report = &summary["report"];
    assert_eq!(report["rendered"], "5 cases", "{summary}");
    assert_eq!(report["traces"], "5", "{summary}");
    assert_eq!(report["failing"], 2, "{summary}");
    let opened = report["trace"].as_str().unwrap();
    assert!(opened.starts_with("trace_"), "{summary}");
    assert!(report["spans"].as_u64() > Some(0), "{summary}");
}
