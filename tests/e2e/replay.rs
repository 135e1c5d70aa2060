//! End-to-end tests of `run --replay TRACE_ID`: a run recorded against the
//! fake server is replayed with the server out of reach and no key, from its generation spans.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::*;
use crate::traces::{of_kind, outline, run_json, usage};

const SHOP: &str = r#"
name: Replayed shop
vars: { sku: SKU-1 }
model: gpt-4o-mini
tools:
  lookup:
    description: Look up the stock of a SKU
    parameters:
      type: object
      properties: { sku: { type: string } }
      required: [sku]
    command: ["./lookup.sh"]
agents:
  clerk:
    instructions: You check stock.
    tools: [lookup]
  writer:
    instructions: You write a one-line note.
steps:
  - id: ask
    agent: clerk
    input: "Is {{ vars.sku }} in stock?"
  - id: note
    agent: writer
    input: "Write a note: {{ steps.ask.output }}"
"#;

/// The shop workflow, with a `lookup` tool that logs each run.
fn shop() -> TestEnv {
    TestEnv::with_fake().workflow("shop.yaml", SHOP).script(
        "lookup.sh",
        "#!/bin/sh\nargs=$(cat)\necho run >> lookups.log\nprintf 'stock of %s: 4\\n' \"$args\"\n",
    )
}

/// Records the shop run against the fake: a tool call, the clerk's answer, the writer's note.
/// Returns the `run --format json` line.
fn record_shop(env: &TestEnv, extra: &[&str]) -> Value {
    env.server().push_all([
        Reply::tool_call("lookup", json!({"sku": "SKU-1"})),
        Reply::text("SKU-1: 4 in stock.", 20, 6),
        Reply::text("Note: SKU-1 has 4 units.", 30, 8),
    ]);
    let (out, lines) = run_json(env, "shop.yaml", extra);
    assert_exit(&out, 0);
    assert_eq!(env.server().request_count(), 3);
    lines[0].clone()
}

/// Runs with the server out of reach (a refused port) and no API key at all.
fn offline_run(env: &TestEnv, args: &[&str]) -> Output {
    let refused = refused_url();
    env.run_with(args, |c: &mut Command| {
        c.env("OPENAI_BASE_URL", &refused)
            .env_remove("OPENAI_API_KEY");
    })
}

/// The generation spans of a trace, in the order they started.
pub(crate) fn generations(trace: &Value) -> Vec<&Value> {
    let mut g = of_kind(trace, "generation");
    g.sort_by_key(|s| s["started_at"].as_str().unwrap_or_default().to_string());
    g
}

/// What a replay must reproduce of each model call.
fn answer(generation: &Value) -> Value {
    let a = &generation["attributes"];
    json!({
        "model": a["model"], "input": a["input"], "output": a["output"],
        "tool_calls": a["tool_calls"], "usage": a["usage"],
        "response_model": a["response_model"], "finish_reason": a["finish_reason"],
    })
}

#[test]
fn a_replay_answers_every_model_call_from_the_recorded_trace_without_any_server() {
    let env = shop();
    let recorded = record_shop(&env, &[]);
    assert_eq!(recorded["outputs"]["note"], "Note: SKU-1 has 4 units.");
    let original_id = recorded["trace_id"].as_str().unwrap().to_string();
    let original = env.show_json(&original_id);

    // The server is out of reach and there is no key: the replay needs neither.
    let prefix = &original_id[..14];
    let out = offline_run(
        &env,
        &[
            "run",
            "shop.yaml",
            "--replay",
            prefix,
            "--format",
            "json",
            "--stream",
        ],
    );
    assert_exit(&out, 0);
    assert_eq!(
        env.server().request_count(),
        3,
        "no request reached the fake"
    );
    let replayed = &parse_json_lines(&out.stdout)[0];
    assert_ne!(replayed["trace_id"], recorded["trace_id"]);
    assert_eq!(replayed["outputs"], recorded["outputs"]);
    assert_eq!(replayed["usage"], recorded["usage"]);
    assert_eq!(replayed["usage"], usage(12 + 20 + 30, 7 + 6 + 8));
    // --stream shows each answer as one delta.
    assert!(
        stderr(&out).contains("Note: SKU-1 has 4 units."),
        "{}",
        stderr(&out)
    );

    let trace = env.show_json("last");
    assert_eq!(
        trace["metadata"]["agentrace.replay_of"],
        original_id.as_str()
    );
    let (theirs, ours) = (generations(&original), generations(&trace));
    assert_eq!(ours.len(), 3, "{:#?}", outline(&trace));
    for (o, r) in theirs.iter().zip(&ours) {
        assert_eq!(answer(r), answer(o));
        assert_eq!(r["attributes"]["replayed"], true);
        assert_eq!(r["status"], "ok");
        assert!(r["attributes"].get("base_url").is_none());
        assert!(o["attributes"].get("replayed").is_none());
    }
    assert_eq!(
        ours[0]["attributes"]["tool_calls"][0]["name"], "lookup",
        "the tool call is replayed"
    );
    // Tools run for real, as usual.
    let lookups = std::fs::read_to_string(env.path().join("lookups.log")).unwrap();
    assert_eq!(lookups.lines().count(), 2);
    let function = &of_kind(&trace, "function")[0];
    assert_eq!(function["status"], "ok");

    // `last` works too, and a replay can itself be replayed.
    let out = offline_run(
        &env,
        &["run", "shop.yaml", "--replay", "last", "--format", "none"],
    );
    assert_exit(&out, 0);
    let again = env.show_json("last");
    assert_eq!(
        again["metadata"]["agentrace.replay_of"], trace["trace_id"],
        "the replay of a replay names the trace it answered from"
    );
    assert_eq!(env.server().request_count(), 3);
}

#[test]
fn a_request_that_differs_from_the_recording_fails_the_run_and_says_where() {
    let env = shop();
    let recorded = record_shop(&env, &[]);
    let id = recorded["trace_id"].as_str().unwrap();
    let out = offline_run(
        &env,
        &[
            "run",
            "shop.yaml",
            "--replay",
            id,
            "--var",
            "sku=SKU-2",
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 1);
    let expected = "replay: no recorded model call matches this request (agent `clerk`, model \
                    gpt-4o-mini, 2 messages; first difference: message 2 content \"Is SKU-2 in \
                    stock?\" vs recorded \"Is SKU-1 in stock?\")";
    assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(trace["metadata"]["agentrace.replay_of"], id);
    let generation = &of_kind(&trace, "generation")[0];
    assert_eq!(generation["status"], "error");
    assert_eq!(generation["error"]["message"], expected);
    assert!(
        generation["events"].as_array().unwrap().is_empty(),
        "a mismatch is not retried"
    );
    assert_eq!(env.server().request_count(), 3);
}

#[test]
fn unusable_replay_sources_exit_2_before_anything_runs() {
    let env = shop();
    // Recorded without content: nothing to answer with.
    record_shop(&env, &["--no-content"]);
    let before = env.list_json(&[]).len();
    let out = offline_run(&env, &["run", "shop.yaml", "--replay", "last"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("--no-content") && err.contains("replay needs the content"),
        "{err}"
    );
    // An unknown trace id.
    let out = offline_run(&env, &["run", "shop.yaml", "--replay", "ffffffff"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("--replay ffffffff: no trace matches ffffffff"),
        "{}",
        stderr(&out)
    );
    // Replay answers from a recording, the offline model from mocks: not both.
    let out = offline_run(&env, &["run", "shop.yaml", "--replay", "last", "--offline"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--offline"), "{}", stderr(&out));
    assert_eq!(env.list_json(&[]).len(), before, "nothing was recorded");
    // Without any store, the id cannot be found either.
    let empty = TestEnv::new().workflow("shop.yaml", SHOP);
    let out = empty.run(&["run", "shop.yaml", "--replay", "last"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--replay last"), "{}", stderr(&out));
    assert!(!empty.store_exists(), "nothing was created");
}

const BRANCHES: &str = r#"
name: Replayed branches
vars: { delay_a: "0", delay_b: "0.8" }
model: gpt-4o-mini
agents:
  stock: { instructions: You check stock. }
  payments: { instructions: You check payments. }
steps:
  - name: Checks
    parallel:
      - span: A
        steps:
          - run: ["sleep", "{{ vars.delay_a }}"]
          - { id: inventory, agent: stock, input: "Is SKU-1 in stock?" }
      - span: B
        steps:
          - run: ["sleep", "{{ vars.delay_b }}"]
          - { id: payment, agent: payments, input: "Is the card valid?" }
"#;

#[test]
fn parallel_branches_replay_whatever_order_they_call_in() {
    let env = TestEnv::with_fake().workflow("branches.yaml", BRANCHES);
    let (out, lines) = run_json(&env, "branches.yaml", &[]);
    assert_exit(&out, 0);
    let original = env.show_json("last");
    let order = |trace: &Value| -> Vec<String> {
        generations(trace)
            .iter()
            .map(|g| {
                g["attributes"]["input"][1]["content"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        order(&original),
        ["Is SKU-1 in stock?", "Is the card valid?"]
    );

    // Now branch B calls the model first.
    let out = offline_run(
        &env,
        &[
            "run",
            "branches.yaml",
            "--replay",
            "last",
            "--var",
            "delay_a=0.8",
            "--var",
            "delay_b=0",
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 0);
    let replayed = &parse_json_lines(&out.stdout)[0];
    assert_eq!(replayed["outputs"], lines[0]["outputs"]);
    assert_eq!(replayed["outputs"]["payment"], "echo: Is the card valid?");
    let trace = env.show_json("last");
    assert_eq!(order(&trace), ["Is the card valid?", "Is SKU-1 in stock?"]);
    assert_eq!(env.server().request_count(), 2);
}

#[test]
fn a_multi_trace_workflow_replays_from_all_its_traces() {
    let env = TestEnv::new().workflow(
        "support.yaml",
        &std::fs::read_to_string(
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/support.yaml"),
        )
        .unwrap(),
    );
    // The conversation id is part of every request (it names the session): the replays use the
    // recorded one, whose stored history by then holds the recorded run's turns.
    let conversation = |id: &str| format!("conversation_id={id}");
    let recorded = env.run(&[
        "run",
        "support.yaml",
        "--offline",
        "--var",
        &conversation("recorded"),
        "--format",
        "json",
    ]);
    assert_exit(&recorded, 0);
    let recorded = parse_json_lines(&recorded.stdout);
    assert_eq!(recorded.len(), 2, "support.yaml records two traces");
    let ids: Vec<&str> = recorded
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();

    // One trace's calls do not answer the other trace's requests.
    let out = offline_run(
        &env,
        &[
            "run",
            "support.yaml",
            "--var",
            &conversation("recorded"),
            "--replay",
            ids[0],
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no recorded model call matches"),
        "{}",
        stderr(&out)
    );

    let out = offline_run(
        &env,
        &[
            "run",
            "support.yaml",
            "--var",
            &conversation("recorded"),
            "--replay",
            ids[0],
            "--replay",
            ids[1],
            "--format",
            "json",
        ],
    );
    assert_exit(&out, 0);
    let replayed = parse_json_lines(&out.stdout);
    assert_eq!(replayed.len(), 2);
    for (r, o) in replayed.iter().zip(&recorded) {
        assert_eq!(r["outputs"], o["outputs"]);
        assert_eq!(r["usage"], o["usage"]);
        let doc = env.show_json(r["trace_id"].as_str().unwrap());
        assert_eq!(doc["metadata"]["agentrace.replay_of"], ids.join(","));
    }

    let out = offline_run(
        &env,
        &[
            "run",
            "support.yaml",
            "--replay",
            ids[0],
            "--replay",
            ids[0],
        ],
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
}

const CHAT: &str = r#"
name: Chat
vars: { conversation_id: c0 }
model: gpt-4o-mini
agents:
  support: { instructions: You support. }
steps:
  - id: ask
    agent: support
    session: "{{ vars.conversation_id }}"
    input: Where is my order?
  - id: follow_up
    agent: support
    session: "{{ vars.conversation_id }}"
    input: Can you expedite it?
"#;

#[test]
fn a_session_run_replays_against_the_history_it_had_and_leaves_the_conversation_alone() {
    let env = TestEnv::with_fake().workflow("chat.yaml", CHAT);
    let run = |replies: [&str; 2]| {
        env.server()
            .push_all(replies.map(|text| Reply::text(text, 9, 3)));
        let (out, lines) = run_json(&env, "chat.yaml", &["--var", "conversation_id=c1"]);
        assert_exit(&out, 0);
        lines[0].clone()
    };
    run(["Tomorrow.", "Expedited."]);
    // The second run continues the conversation: its requests carry the first run's turns.
    let second = run(["Still tomorrow.", "Already expedited."]);
    let second_id = second["trace_id"].as_str().unwrap();
    let recorded = env.show_json(second_id);
    let messages = |trace: &Value| -> Vec<usize> {
        generations(trace)
            .iter()
            .map(|g| g["attributes"]["input"].as_array().unwrap().len())
            .collect()
    };
    assert_eq!(messages(&recorded), [6, 8], "{:#?}", outline(&recorded));

    // Replayed twice in the same store, where the second run's own turns now are: each time
    // the requests are the recorded ones, and nothing is added to the conversation.
    for _ in 0..2 {
        let out = offline_run(
            &env,
            &[
                "run",
                "chat.yaml",
                "--var",
                "conversation_id=c1",
                "--replay",
                second_id,
                "--format",
                "json",
            ],
        );
        assert_exit(&out, 0);
        let replayed = &parse_json_lines(&out.stdout)[0];
        assert_eq!(replayed["outputs"], second["outputs"]);
        let trace = env.show_json(replayed["trace_id"].as_str().unwrap());
        assert_eq!(messages(&trace), [6, 8]);
        let inputs = |t: &Value| -> Vec<Value> {
            generations(t)
                .iter()
                .map(|g| g["attributes"]["input"].clone())
                .collect()
        };
        assert_eq!(inputs(&trace), inputs(&recorded));
    }

    // A real third run continues after the two real runs only.
    let before = env.server().request_count();
    run(["Yes.", "Done."]);
    let sent = env.server().requests()[before].messages();
    assert_eq!(
        sent.len(),
        1 + 8 + 1,
        "system, four turns, the new question: {sent:#?}"
    );
}
