//! End-to-end tests of issue 16's shards and data moving: `eval --shard K/N` runs a fixed part
//! of the cases (by the hash of the case id), N shards recorded into N separate SQLite stores
//! and merged with `agentrace merge` equal one unsharded run, `eval report` gives the merged
//! report (and names missing shards), and `agentrace store copy` moves everything between
//! stores, resumably and idempotently, verified by counts.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use serde_json::Value;

use crate::support::*;

/// An agent answers each case (the fake server); the score passes when the case's word holds
/// "good"; the conversation is kept per word (`session:`), so that stores hold messages too.
const GRADED: &str = r#"name: Graded
vars: { word: hello }
model: gpt-4o-mini
agents:
  helper: { instructions: Answer. }
steps:
  - span: answer
    steps:
      - id: reply
        agent: helper
        session: "chat-{{ vars.word }}"
        input: "{{ vars.word }}"
      - event: gen_ai.evaluation.result
        attributes:
          gen_ai.evaluation.name: good_word
          gen_ai.evaluation.score.value: "{{ 1 if 'good' in vars.word else 0 }}"
          agentrace.evaluation.passed: "{{ 'good' in vars.word }}"
"#;

/// `n` cases `c1`…`cn`; every fifth fails its score.
fn cases(n: usize) -> String {
    (1..=n)
        .map(|i| {
            let word = if i % 5 == 0 { "bad" } else { "good" };
            format!("{{\"id\": \"c{i}\", \"word\": \"{word} {i}\"}}\n")
        })
        .collect()
}

fn env(n: usize) -> TestEnv {
    let env = TestEnv::with_fake().workflow("graded.yaml", GRADED);
    env.server().set_default(Reply::text("an answer", 3, 2));
    env.write("cases.jsonl", &cases(n));
    env
}

/// Runs the binary on the store `store` (a file in the test's directory).
fn on(env: &TestEnv, store: &str, args: &[&str]) -> Output {
    let path = env.path().join(store);
    env.run_with(args, |c| {
        c.env("AGENTRACE_STORE", &path);
    })
}

/// The arguments of `eval graded.yaml --shard K/N --experiment NAME --format FORMAT`, gated
/// only by the report (`--min-pass-rate 0`).
fn shard_args(k: u32, n: u32, name: &str, format: &str) -> Vec<String> {
    let spec = format!("{k}/{n}");
    [
        "eval",
        "graded.yaml",
        "--dataset",
        "cases.jsonl",
        "--shard",
        &spec,
        "--experiment",
        name,
        "--format",
        format,
        "--min-pass-rate",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

/// `eval graded.yaml --shard K/N --experiment NAME` into `store`, its JSON report.
fn shard(env: &TestEnv, store: &str, k: u32, n: u32, name: &str, more: &[&str]) -> Value {
    let args = shard_args(k, n, name, "json");
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.extend_from_slice(more);
    let out = on(env, store, &args);
    assert_exit(&out, 0);
    parse_json(&out.stdout)
}

/// The `(case, attempt)` pairs of a JSON report.
fn runs_of(report: &Value) -> BTreeSet<(String, u64)> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["attempt"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The counts table of `store copy` / `merge --format json`: kind → (source, copied, there).
fn counts(out: &Output) -> BTreeMap<String, (u64, u64, u64)> {
    assert_exit(out, 0);
    parse_json(&out.stdout)
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let n = |key: &str| v[key].as_u64().unwrap();
            (k.clone(), (n("source"), n("copied"), n("already_there")))
        })
        .collect()
}

#[test]
fn shards_partition_the_cases_by_id_and_adding_a_case_moves_no_other() {
    let env = env(12);
    let owner = |env: &TestEnv, name: &str| -> BTreeMap<String, u32> {
        let mut owner = BTreeMap::new();
        for k in 1..=4 {
            let report = shard(
                env,
                &format!("{name}-{k}.db"),
                k,
                4,
                name,
                &["--repeat", "2"],
            );
            for (case, attempt) in runs_of(&report) {
                // Every repeat of a case runs in the same shard.
                let before = owner.insert(format!("{case}#{attempt}"), k);
                assert_eq!(before, None, "{case}#{attempt} ran in two shards");
            }
            assert_eq!(report["experiment"]["metadata"]["eval.shards"], 4);
        }
        let by_case: BTreeMap<String, u32> = owner
            .iter()
            .map(|(run, k)| (run.split('#').next().unwrap().to_string(), *k))
            .collect();
        for (run, k) in &owner {
            assert_eq!(by_case[run.split('#').next().unwrap()], *k, "{run}");
        }
        by_case
    };
    let first = owner(&env, "before");
    // Each of the 12 cases ran in exactly one shard.
    let all: BTreeSet<String> = (1..=12).map(|i| format!("c{i}")).collect();
    assert_eq!(first.keys().cloned().collect::<BTreeSet<_>>(), all);
    // Five cases more (one inserted at the top): the first twelve stay where they were.
    env.write(
        "cases.jsonl",
        &format!("{{\"id\": \"c0\", \"word\": \"good 0\"}}\n{}", cases(16)),
    );
    let second = owner(&env, "after");
    assert_eq!(second.len(), 17);
    for (case, k) in &first {
        assert_eq!(second[case], *k, "{case} moved");
    }
}

#[test]
fn four_shards_run_at_once_into_four_stores_merge_into_what_one_unsharded_run_reports() {
    let env = env(20);
    // The four shards at once, each into its own SQLite file, as a CI matrix does.
    let children: Vec<_> = (1..=4)
        .map(|k| {
            let mut cmd = env.cmd();
            cmd.env("AGENTRACE_STORE", env.path().join(format!("shard-{k}.db")))
                .args(shard_args(k, 4, "nightly", "none"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        assert_exit(&wait_within(child, DEADLINE), 0);
    }
    let merged = counts(&env.run(&[
        "merge",
        "shard-1.db",
        "shard-2.db",
        "shard-3.db",
        "shard-4.db",
        "--into",
        "all.db",
        "--format",
        "json",
    ]));
    assert_eq!(merged["traces"], (20, 20, 0));
    assert_eq!(merged["experiment_runs"], (20, 20, 0));
    assert_eq!(merged["experiment_shards"], (4, 4, 0));
    assert_eq!(merged["experiments"].0, 4, "one row per shard store");
    assert_eq!(merged["experiments"].1, 1, "one experiment");
    assert_eq!(merged["scores"], (20, 20, 0));
    // One unsharded run of the same cases, in a store of its own.
    let out = on(
        &env,
        "one.db",
        &[
            "eval",
            "graded.yaml",
            "--dataset",
            "cases.jsonl",
            "--experiment",
            "nightly",
            "--format",
            "none",
        ],
    );
    assert_exit(&out, 1);
    let report = |store: &str, format: &str| -> (Output, String) {
        let out = on(
            &env,
            store,
            &["eval", "report", "nightly", "--format", format],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out, text)
    };
    let (sharded, sharded_json) = report("all.db", "json");
    let (single, single_json) = report("one.db", "json");
    // Four cases fail their score: the gate of `eval` (any failing case exits 1).
    assert_exit(&sharded, 1);
    assert_exit(&single, 1);
    let (a, b) = (
        parse_json(sharded_json.as_bytes()),
        parse_json(single_json.as_bytes()),
    );
    for key in ["runs", "ran", "passed", "failed", "pass_rate", "tokens"] {
        assert_eq!(a["summary"][key], b["summary"][key], "{key}");
    }
    assert_eq!(a["summary"]["passed"], 16);
    let outcome = |r: &Value| -> Vec<(String, Value, Value, Value)> {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().to_string(),
                    c["status"].clone(),
                    c["passed"].clone(),
                    c["scores"][0]["value"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(outcome(&a), outcome(&b));
    assert_eq!(a["cases"].as_array().unwrap().len(), 20);
    // The text reports are the same apart from the experiment's id and the durations.
    let text = |store: &str, id: &Value| {
        let (out, text) = report(store, "text");
        assert_exit(&out, 1);
        redact(&text).replace(id.as_str().unwrap(), "exp_[ID]")
    };
    assert_eq!(
        text("all.db", &a["experiment"]["id"]),
        text("one.db", &b["experiment"]["id"])
    );
    // The gates of eval apply: a pass rate of 80% passes --min-pass-rate 0.8, not 0.9.
    let gate = |p: &str| {
        on(
            &env,
            "all.db",
            &[
                "eval",
                "report",
                "nightly",
                "--format",
                "none",
                "--min-pass-rate",
                p,
            ],
        )
    };
    assert_exit(&gate("0.8"), 0);
    assert_exit(&gate("0.9"), 1);
    // And eval's outputs: the HTML page and the JUnit file of the merged experiment.
    let out = on(
        &env,
        "all.db",
        &[
            "eval",
            "report",
            "nightly",
            "--format",
            "none",
            "--min-pass-rate",
            "0",
            "-o",
            "report.html",
            "--junit",
            "report.xml",
        ],
    );
    assert_exit(&out, 0);
    let page = std::fs::read_to_string(env.path().join("report.html")).unwrap();
    assert!(
        page.contains("nightly") && page.contains("c20"),
        "the page names the cases"
    );
    let junit = std::fs::read_to_string(env.path().join("report.xml")).unwrap();
    assert_eq!(junit.matches("name=\"good_word\"").count(), 20, "{junit}");
    // And the comparison with a baseline (the unsharded run copied in): no regression.
    let copied = counts(&env.run(&["store", "copy", "one.db", "all.db", "--format", "json"]));
    assert_eq!(copied["experiments"], (1, 1, 0));
    let base = b["experiment"]["id"].as_str().unwrap();
    let out = on(
        &env,
        "all.db",
        &[
            "eval",
            "report",
            a["experiment"]["id"].as_str().unwrap(),
            "--baseline",
            base,
            "--fail-on-regression",
            "--min-pass-rate",
            "0.8",
        ],
    );
    assert_exit(&out, 0);
}

#[test]
fn merging_twice_or_overlapping_stores_stores_nothing_twice() {
    let env = env(8);
    for k in 1..=2 {
        shard(&env, &format!("s{k}.db"), k, 2, "twice", &[]);
    }
    let merge = |inputs: &[&str]| {
        let mut args = vec!["merge"];
        args.extend_from_slice(inputs);
        args.extend(["--into", "all.db", "--format", "json"]);
        counts(&env.run(&args))
    };
    let first = merge(&["s1.db", "s2.db"]);
    assert_eq!(first["traces"], (8, 8, 0));
    let sessions = first["session_messages"];
    assert_eq!(sessions.0, 16, "a question and an answer per case");
    // Again, and with an input twice: everything is there already.
    let again = merge(&["s1.db", "s2.db", "s1.db"]);
    let there = |n: u64| (n, 0, n);
    assert_eq!(again["traces"].1, 0);
    assert_eq!(again["spans"].1, 0);
    assert_eq!(again["session_messages"].1, 0);
    assert_eq!(again["experiment_runs"].1, 0);
    assert_eq!(again["experiment_shards"].1, 0);
    assert_eq!(again["traces"], there(again["traces"].0));
    // The store merged into cannot be an input: refused before anything is written.
    let out = env.run(&["merge", "s1.db", "all.db", "--into", "all.db"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("cannot be an input too"),
        "{}",
        stderr(&out)
    );
    let listed = on(
        &env,
        "all.db",
        &["list", "--format", "json", "--limit", "100"],
    );
    assert_exit(&listed, 0);
    assert_eq!(parse_json(&listed.stdout).as_array().unwrap().len(), 8);
    let out = on(
        &env,
        "all.db",
        &["eval", "report", "twice", "--format", "json"],
    );
    let report = parse_json(&out.stdout);
    assert_eq!(report["summary"]["runs"], 8);
    assert_eq!(report["cases"].as_array().unwrap().len(), 8);
}

#[test]
fn a_report_with_missing_shards_names_them_and_exits_3() {
    let env = env(8);
    shard(&env, "s1.db", 1, 4, "partial", &[]);
    shard(&env, "s3.db", 3, 4, "partial", &[]);
    counts(&env.run(&[
        "merge", "s1.db", "s3.db", "--into", "all.db", "--format", "json",
    ]));
    let out = on(
        &env,
        "all.db",
        &["eval", "report", "partial", "--min-pass-rate", "0"],
    );
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(err.contains("missing shards 2/4, 4/4"), "{err}");
    assert!(err.contains("2 of 4 shards are in"), "{err}");
    assert!(out.stdout.is_empty(), "no report, no gate");
    // The same shard twice into one store is refused (a new run needs a new name); `--resume`
    // continues a shard, and runs nothing here, where it finished.
    let eval = |args: &[&str]| {
        let mut all = vec![
            "eval",
            "graded.yaml",
            "--dataset",
            "cases.jsonl",
            "--min-pass-rate",
            "0",
        ];
        all.extend_from_slice(args);
        on(&env, "s3.db", &all)
    };
    let out = eval(&["--shard", "3/4", "--experiment", "partial"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("shard 3/4 of experiment partial"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("is recorded already (ok)"),
        "{}",
        stderr(&out)
    );
    let out = eval(&["--resume", "partial", "--shard", "3/4"]);
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("shard 3/4: 0 runs of"),
        "{}",
        stderr(&out)
    );
    let out = eval(&["--resume", "partial"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("is sharded: give --shard K/4"),
        "{}",
        stderr(&out)
    );
    // The shards that disagree are refused when they meet: another dataset under one name.
    env.write("cases.jsonl", &cases(9));
    shard(&env, "s2.db", 2, 4, "partial", &[]);
    let before = std::fs::read(env.path().join("all.db")).unwrap();
    let out = env.run(&["merge", "s2.db", "--into", "all.db"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("differs between the stores (dataset sha256:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(env.path().join("all.db")).unwrap(),
        before,
        "nothing merged"
    );
    // A shard number out of range, or a shard without an experiment name, is refused.
    for (args, says) in [
        (
            vec!["--shard", "5/4", "--experiment", "x"],
            "between 1 and 4",
        ),
        (
            vec!["--shard", "0/4", "--experiment", "x"],
            "between 1 and 4",
        ),
        (vec!["--shard", "1/0", "--experiment", "x"], "at least 1"),
        (vec!["--shard", "2"], "expected K/N"),
        (vec!["--shard", "1/4"], "--shard needs --experiment NAME"),
    ] {
        let mut all = vec!["eval", "graded.yaml", "--dataset", "cases.jsonl"];
        all.extend(args);
        let out = on(&env, "bad.db", &all);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    assert!(!env.path().join("bad.db").exists(), "nothing was written");
}

#[test]
fn store_copy_both_ways_is_idempotent_resumable_and_verified_by_counts() {
    let env = env(6);
    // Store A: an experiment with its scores and conversations; store B: runs of its own.
    let out = on(
        &env,
        "a.db",
        &[
            "eval",
            "graded.yaml",
            "--dataset",
            "cases.jsonl",
            "--experiment",
            "copied",
            "--format",
            "none",
        ],
    );
    assert_exit(&out, 1);
    for word in ["x", "y"] {
        let out = on(
            &env,
            "b.db",
            &["run", "graded.yaml", "--var", &format!("word={word}")],
        );
        assert_exit(&out, 0);
    }
    let first = counts(&env.run(&["store", "copy", "a.db", "c.db", "--format", "json"]));
    assert_eq!(first["traces"], (6, 6, 0));
    assert_eq!(first["scores"], (6, 6, 0));
    assert_eq!(first["session_messages"], (12, 12, 0));
    assert_eq!(first["experiments"], (1, 1, 0));
    assert_eq!(first["experiment_runs"], (6, 6, 0));
    let spans = first["spans"].0;
    assert!(spans >= 18, "{spans}");
    // Again: everything is there already.
    let again = counts(&env.run(&["store", "copy", "a.db", "c.db", "--format", "json"]));
    for (kind, (source, copied, there)) in &again {
        assert_eq!((*copied, *there), (0, *source), "{kind}");
    }
    // Resumable: the destination holds half the traces (as a copy cut short would), the copy
    // brings the rest.
    let ids: Vec<String> = parse_json(&on(&env, "c.db", &["list", "--format", "json"]).stdout)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect();
    let mut rm = vec!["rm"];
    rm.extend(ids[..3].iter().map(String::as_str));
    assert_exit(&on(&env, "c.db", &rm), 0);
    let resumed = counts(&env.run(&["store", "copy", "a.db", "c.db", "--format", "json"]));
    assert_eq!(resumed["traces"], (6, 3, 3));
    assert_eq!(resumed["scores"], (6, 3, 3));
    let out = on(
        &env,
        "c.db",
        &["eval", "report", "copied", "--format", "json"],
    );
    let report = parse_json(&out.stdout);
    assert_eq!(report["summary"]["ran"], 6);
    assert_eq!(report["summary"]["missing"], 0);
    // The other way: B into A, then A into B; both end up with all eight traces.
    let b_to_a = counts(&env.run(&["store", "copy", "b.db", "a.db", "--format", "json"]));
    assert_eq!(b_to_a["traces"], (2, 2, 0));
    let a_to_b = counts(&env.run(&["store", "copy", "a.db", "b.db", "--format", "json"]));
    assert_eq!(a_to_b["traces"], (8, 6, 2));
    assert_eq!(a_to_b["experiments"], (1, 1, 0));
    for store in ["a.db", "b.db"] {
        let listed = on(&env, store, &["list", "--format", "json", "--limit", "100"]);
        assert_eq!(
            parse_json(&listed.stdout).as_array().unwrap().len(),
            8,
            "{store}"
        );
    }
    // A trace reads the same in both stores.
    let id = &ids[0];
    let show = |store: &str| parse_json(&on(&env, store, &["show", id, "--format", "json"]).stdout);
    assert_eq!(show("a.db"), show("b.db"));
    // Bad input: a source that does not exist, a store copied onto itself.
    let out = env.run(&["store", "copy", "nope.db", "d.db"]);
    assert_exit(&out, 2);
    assert!(!env.path().join("d.db").exists(), "nothing was created");
    let out = env.run(&["store", "copy", "a.db", "a.db"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("are the same store"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn shards_run_at_once_into_one_shared_store_join_one_experiment_and_report_without_a_merge() {
    let env = env(12);
    let children: Vec<_> = (1..=3)
        .map(|k| {
            let mut cmd = env.cmd();
            cmd.env("AGENTRACE_STORE", env.path().join("team.db"))
                .args(shard_args(k, 3, "shared", "none"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        assert_exit(&wait_within(child, DEADLINE), 0);
    }
    let out = on(
        &env,
        "team.db",
        &["list", "--experiments", "--format", "json"],
    );
    let experiments = parse_json(&out.stdout);
    assert_eq!(experiments.as_array().unwrap().len(), 1, "{experiments}");
    assert_eq!(experiments[0]["status"], "ok");
    let out = on(
        &env,
        "team.db",
        &[
            "eval",
            "report",
            "shared",
            "--format",
            "json",
            "--min-pass-rate",
            "0.75",
        ],
    );
    assert_exit(&out, 0);
    let report = parse_json(&out.stdout);
    assert_eq!(report["summary"]["runs"], 12);
    assert_eq!(report["summary"]["passed"], 10);
}

/// A team store (PostgreSQL at `AGENTRACE_PG_URL`): `None` after a note outside CI.
fn team_server() -> Option<String> {
    let url = std::env::var("AGENTRACE_PG_URL")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        assert!(
            !under_ci(),
            "AGENTRACE_PG_URL is not set under CI: .ci/run starts PostgreSQL (ci/postgres.sh)"
        );
        eprintln!("note: skipped the team-store copy test: run `eval \"$(ci/postgres.sh start)\"`");
    }
    url
}

#[test]
fn store_copy_and_merge_move_stores_between_sqlite_and_postgresql() {
    let Some(base) = team_server() else {
        return;
    };
    let team = PgDb::create(&base);
    let env = env(6);
    // Two shards, each into its own file, merged straight into the team store.
    for k in 1..=2 {
        let args = shard_args(k, 2, "nightly", "none");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_exit(&on(&env, &format!("s{k}.db"), &args), 0);
    }
    let merged = counts(&env.run(&[
        "merge", "s1.db", "s2.db", "--into", &team.url, "--format", "json",
    ]));
    assert_eq!(merged["traces"], (6, 6, 0));
    assert_eq!(merged["experiment_runs"], (6, 6, 0));
    let report = |store: &str| {
        let out = env.run(&[
            "--store",
            store,
            "eval",
            "report",
            "nightly",
            "--format",
            "json",
            "--min-pass-rate",
            "0",
        ]);
        assert_exit(&out, 0);
        parse_json(&out.stdout)
    };
    let on_team = report(&team.url);
    assert_eq!(on_team["summary"]["ran"], 6, "{on_team}");
    // Merging again stores nothing twice.
    let again = counts(&env.run(&[
        "merge", "s1.db", "s2.db", "--into", &team.url, "--format", "json",
    ]));
    assert_eq!(again["traces"], (6, 0, 6));
    // And back out to a file: the same experiment, the same traces, read the same.
    let back = counts(&env.run(&["store", "copy", &team.url, "back.db", "--format", "json"]));
    assert_eq!(back["traces"], (6, 6, 0));
    assert_eq!(back["experiments"], (1, 1, 0));
    assert_eq!(back["experiment_runs"], (6, 6, 0));
    let on_file = report(env.path().join("back.db").to_str().unwrap());
    assert_eq!(on_file["summary"], on_team["summary"]);
    let id = parse_json(&on(&env, "back.db", &["list", "--format", "json"]).stdout)[0]["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let show = |store: &str| {
        let out = env.run(&["--store", store, "show", &id, "--format", "json"]);
        assert_exit(&out, 0);
        parse_json(&out.stdout)
    };
    assert_eq!(
        show(&team.url),
        show(env.path().join("back.db").to_str().unwrap())
    );
    // And as in the shard's own file it came from.
    let origin = ["s1.db", "s2.db"]
        .into_iter()
        .find(|f| {
            parse_json(&on(&env, f, &["list", "--format", "json"]).stdout)
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["trace_id"] == id.as_str())
        })
        .expect("the trace came from a shard");
    assert_eq!(
        show(&team.url),
        show(env.path().join(origin).to_str().unwrap())
    );
}
