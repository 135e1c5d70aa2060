//! `agentrace score`: a person's score on any stored trace, shown by `show` and carried by the
//! exports as the OpenTelemetry GenAI evaluation event.

use crate::serve::{now_plus, sdk_body};
use crate::support::serve::Served;
use crate::support::*;
use serde_json::Value;

const TINY: &str = "name: Tiny\nsteps:\n  - id: greet\n    run: [echo, hello]\n";

/// Every evaluation event of a trace, as (span id, attributes).
fn scores(env: &TestEnv, id: &str) -> Vec<(String, Value)> {
    let doc = env.show_json(id);
    let mut out = Vec::new();
    for span in doc["spans"].as_array().unwrap() {
        for event in span["events"].as_array().unwrap() {
            if event["name"] == "gen_ai.evaluation.result" {
                out.push((
                    span["span_id"].as_str().unwrap().to_string(),
                    event["attributes"].clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn a_human_score_lands_on_the_root_span_and_a_second_one_of_its_name_replaces_it() {
    let env = TestEnv::new().workflow("tiny.yaml", TINY);
    assert_exit(&env.run(&["run", "tiny.yaml", "--format", "none"]), 0);
    let doc = env.show_json("last");
    let root = doc["spans"][0]["span_id"].as_str().unwrap().to_string();

    let out = env.run(&[
        "score",
        "last",
        "correct",
        "0.8",
        "--label",
        "good",
        "--explanation",
        "answers the question",
        "--threshold",
        "0.5",
    ]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("correct = 0.8 (pass)"),
        "{}",
        stdout(&out)
    );
    let got = scores(&env, "last");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, root);
    let a = &got[0].1;
    assert_eq!(a["gen_ai.evaluation.name"], "correct");
    assert_eq!(a["gen_ai.evaluation.score.value"], 0.8);
    assert_eq!(a["gen_ai.evaluation.score.label"], "good");
    assert_eq!(a["gen_ai.evaluation.explanation"], "answers the question");
    assert_eq!(a["agentrace.evaluation.passed"], true);
    assert_eq!(a["agentrace.evaluation.source"], "human");

    // The tree shows it as a score, not as a raw event.
    let tree = stdout(&env.run(&["show", "last", "--color", "never"]));
    assert!(
        tree.contains("◆ correct  0.8  good  pass  answers the question"),
        "{tree}"
    );

    // Scoring the same name again corrects the verdict; another name adds one.
    assert_exit(&env.run(&["score", "last", "correct", "fail"]), 0);
    assert_exit(&env.run(&["score", "last", "tone", "4"]), 0);
    let got = scores(&env, "last");
    assert_eq!(got.len(), 2, "{got:?}");
    let correct = got
        .iter()
        .find(|(_, a)| a["gen_ai.evaluation.name"] == "correct")
        .unwrap();
    assert_eq!(correct.1["gen_ai.evaluation.score.value"], 0.0);
    assert_eq!(correct.1["agentrace.evaluation.passed"], false);
    let tone = got
        .iter()
        .find(|(_, a)| a["gen_ai.evaluation.name"] == "tone")
        .unwrap();
    assert_eq!(
        tone.1.get("agentrace.evaluation.passed"),
        None,
        "no threshold, no verdict"
    );

    // The OTLP export carries it as the GenAI evaluation event.
    let otlp = stdout(&env.run(&["export", "last", "--format", "otlp-json"]));
    assert!(otlp.contains("\"gen_ai.evaluation.result\""), "{otlp}");
    assert!(otlp.contains("\"gen_ai.evaluation.score.value\""), "{otlp}");
}

#[test]
fn bad_scores_are_refused_and_nothing_is_written() {
    let env = TestEnv::new().workflow("tiny.yaml", TINY);
    assert_exit(&env.run(&["run", "tiny.yaml", "--format", "none"]), 0);
    let cases: &[(&[&str], &str)] = &[
        (
            &["score", "last", "correct", "high"],
            "neither a number nor pass/fail",
        ),
        (
            &["score", "last", " ", "1"],
            "a score name is 1 to 128 printable characters",
        ),
        (&["score", "trace_ffff", "correct", "1"], "no trace matches"),
        (
            &["score", "last", "correct", "1", "--span", "nope"],
            "is not a span id",
        ),
        (
            &[
                "score",
                "last",
                "correct",
                "1",
                "--span",
                "span_00000000000000aa",
            ],
            "has no span span_00000000000000aa",
        ),
        (
            &["score", "last", "correct", "NaN"],
            "neither a number nor pass/fail",
        ),
    ];
    for (args, message) in cases {
        let out = env.run(args);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    assert!(scores(&env, "last").is_empty());
}

#[test]
fn a_trace_sent_to_serve_can_be_scored_too() {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    let hex = "cccc0000cccc0000cccc0000cccc0001";
    let r = served.post(
        "/v1/traces/ingest",
        "application/json",
        &sdk_body(hex, "Sent here", &now_plus(-3), &now_plus(-2)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let id = format!("trace_{hex}");
    assert_exit(&env.run(&["score", &id, "useful", "pass"]), 0);
    let got = scores(&env, &id);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1["agentrace.evaluation.passed"], true);
    // serve's API shows it with the trace.
    let api = served.get_json(&format!("/api/traces/{id}"));
    assert!(
        api.to_string().contains("gen_ai.evaluation.result"),
        "{api}"
    );
}

#[test]
fn real_phoenix_shows_scores_as_span_annotations_and_a_second_export_updates_them() {
    let Some(phoenix) = crate::otlp::phoenix_url() else {
        return;
    };
    let env = TestEnv::new().workflow(
        "two.yaml",
        "name: Two steps\nsteps:\n  - id: a\n    run: [echo, one]\n  - id: b\n    run: [echo, two]\n",
    );
    assert_exit(&env.run(&["run", "two.yaml", "--format", "none"]), 0);
    let doc = env.show_json("last");
    let root = doc["spans"][0]["span_id"].as_str().unwrap().to_string();
    let second = doc["spans"][1]["span_id"].as_str().unwrap().to_string();
    assert_exit(
        &env.run(&[
            "score",
            "last",
            "correct",
            "0.5",
            "--label",
            "partly",
            "--explanation",
            "misses a step",
            "--threshold",
            "0.7",
        ]),
        0,
    );
    assert_exit(
        &env.run(&["score", "last", "useful", "pass", "--span", &second]),
        0,
    );
    let out = env.run(&["export", "last", "--phoenix", &phoenix]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("and 2 score(s) to Phoenix"),
        "{}",
        stderr(&out)
    );

    let hex = |id: &str| id.trim_start_matches("span_").to_string();
    let url = format!(
        "{phoenix}/v1/projects/default/span_annotations?span_ids={}&span_ids={}",
        hex(&root),
        hex(&second)
    );
    // The spans land shortly after the push; annotations are written synchronously but need
    // their span, so poll.
    let read = || -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(body) = crate::otlp::http_get_json(&url)
                && let Some(data) = body["data"].as_array()
                && data.len() >= 2
            {
                return data.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Phoenix did not show 2 annotations within 30 s: {:?}",
                crate::otlp::http_get_json(&url)
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    let data = read();
    assert_eq!(data.len(), 2, "{data:#?}");
    let correct = data.iter().find(|a| a["name"] == "correct").unwrap();
    assert_eq!(correct["annotator_kind"], "HUMAN");
    assert_eq!(correct["result"]["score"], 0.5);
    assert_eq!(correct["result"]["label"], "partly");
    assert_eq!(correct["result"]["explanation"], "misses a step");
    assert_eq!(correct["metadata"]["passed"], false);
    let useful = data.iter().find(|a| a["name"] == "useful").unwrap();
    assert_eq!(useful["result"]["score"], 1.0);

    // A corrected score, exported again, updates the annotation instead of adding one.
    assert_exit(
        &env.run(&["score", "last", "correct", "0.9", "--threshold", "0.7"]),
        0,
    );
    assert_exit(&env.run(&["export", "last", "--phoenix", &phoenix]), 0);
    let data = read();
    assert_eq!(data.len(), 2, "{data:#?}");
    let correct = data.iter().find(|a| a["name"] == "correct").unwrap();
    assert_eq!(correct["result"]["score"], 0.9);
    assert_eq!(correct["metadata"]["passed"], true);
}
