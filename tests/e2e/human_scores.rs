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
