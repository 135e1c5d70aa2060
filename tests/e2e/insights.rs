//! End-to-end tests of the commands that read many traces: `stats`,
//! `diff`, `list --search`, `rm`, `prune`, `completions` and `man`. The exact figures
//! (percentiles of known durations, deltas) are unit-tested in src/store/sqlite/stats.rs and
//! src/render/diff.rs; here the real binary runs offline workflows whose outcomes are known.

use serde_json::{Value, json};

use super::support::*;

/// An agent whose offline answer is known, a command that succeeds with known stdout and one
/// that fails without stopping the run.
const STATS_FLOW: &str = r#"
name: Stats Flow
model: gpt-4o-mini
agents:
  clerk: { instructions: "Count things." }
steps:
  - id: ask
    agent: clerk
    input: "How many?"
    mock: "three zeppelins"
  - span: Checks
    steps:
      - { id: good, name: inventory, run: ["echo", "10 units"] }
      - { id: bad, run: ["false"], continue_on_error: true }
"#;

/// The same workflow, changed: the inventory says 12, a second `inventory` step, `bad` fixed
/// (it succeeds now), and the agent gone.
const STATS_FLOW_V2: &str = r#"
name: Stats Flow
steps:
  - span: Checks
    steps:
      - { id: good, name: inventory, run: ["echo", "12 units"] }
      - { id: again, name: inventory, run: ["echo", "again"] }
      - { id: bad, run: ["true"] }
"#;

/// Replaces the timing figures (which vary per run) with a marker, after checking that they are
/// non-negative numbers in order.
fn without_times(mut rows: Value) -> Value {
    for row in rows.as_array_mut().unwrap() {
        let ms = |k: &str| row[k].as_f64().unwrap_or_else(|| panic!("{k} in {row}"));
        let (p50, p95, max) = (ms("p50_ms"), ms("p95_ms"), ms("max_ms"));
        assert!(0.0 <= p50 && p50 <= p95 && p95 <= max, "{row}");
        for k in ["p50_ms", "p95_ms", "max_ms"] {
            row[k] = json!("<ms>");
        }
    }
    rows
}

fn generation_figures(env: &TestEnv) -> (u64, f64) {
    let mut tokens = 0;
    let mut cost = 0.0;
    for t in env.list_json(&[]) {
        let doc = env.show_json(t["trace_id"].as_str().unwrap());
        for s in doc["spans"].as_array().unwrap() {
            if s["kind"] == "generation" {
                tokens += s["attributes"]["usage"]["total_tokens"].as_u64().unwrap();
                cost += s["attributes"]["cost_usd"].as_f64().unwrap();
            }
        }
    }
    (tokens, cost)
}

#[test]
fn stats_count_errors_tokens_and_cost_per_span_name_and_per_workflow() {
    let env = TestEnv::new().workflow("flow.yaml", STATS_FLOW).workflow(
        "other.yaml",
        "name: Other\nsteps:\n  - { id: bad, run: [\"true\"] }\n",
    );
    for file in ["flow.yaml", "flow.yaml", "other.yaml"] {
        assert_exit(&env.run(&["run", file, "--offline", "--format", "none"]), 0);
    }
    // Offline runs are left out of stats unless asked for, and their calls cost nothing.
    let (tokens, cost) = generation_figures(&env);
    assert!(tokens > 0);
    assert_eq!(cost, 0.0, "the offline model is priced at 0");

    let rows = env.json(&[
        "stats",
        "--include-offline",
        "--workflow",
        "Stats Flow",
        "--format",
        "json",
    ]);
    assert_eq!(
        without_times(rows),
        json!([
            {"name": "Checks", "count": 2, "errors": 0, "error_rate": 0.0, "p50_ms": "<ms>",
             "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": 0, "cost_usd": null},
            {"name": "bad", "count": 2, "errors": 2, "error_rate": 1.0, "p50_ms": "<ms>",
             "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": 0, "cost_usd": null},
            {"name": "clerk", "count": 2, "errors": 0, "error_rate": 0.0, "p50_ms": "<ms>",
             "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": tokens, "cost_usd": cost},
            {"name": "gpt-4o-mini", "count": 2, "errors": 0, "error_rate": 0.0,
             "p50_ms": "<ms>", "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": tokens,
             "cost_usd": cost},
            {"name": "inventory", "count": 2, "errors": 0, "error_rate": 0.0,
             "p50_ms": "<ms>", "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": 0,
             "cost_usd": null},
        ])
    );
    // Without a filter the other workflow's `bad` (which succeeds) joins the row.
    let all = env.json(&["stats", "--include-offline", "--format", "json"]);
    let bad = all.as_array().unwrap().iter().find(|r| r["name"] == "bad");
    assert_eq!(
        bad.map(|r| (&r["count"], &r["errors"])),
        Some((&json!(3), &json!(2)))
    );
    let keys: Vec<&String> = all[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name",
            "count",
            "errors",
            "error_rate",
            "p50_ms",
            "p95_ms",
            "max_ms",
            "tokens",
            "cost_usd"
        ]
    );

    // By workflow the unit is the trace.
    let by_workflow = env.json(&[
        "stats",
        "--include-offline",
        "--by",
        "workflow",
        "--format",
        "json",
    ]);
    assert_eq!(
        without_times(by_workflow),
        json!([
            {"workflow": "Stats Flow", "count": 2, "errors": 0, "error_rate": 0.0,
             "p50_ms": "<ms>", "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": tokens,
             "cost_usd": cost},
            {"workflow": "Other", "count": 1, "errors": 0, "error_rate": 0.0, "p50_ms": "<ms>",
             "p95_ms": "<ms>", "max_ms": "<ms>", "tokens": 0, "cost_usd": null},
        ])
    );
    let by_model = env.json(&[
        "stats",
        "--include-offline",
        "--by",
        "model",
        "--format",
        "json",
    ]);
    assert_eq!(by_model.as_array().unwrap().len(), 1);
    assert_eq!(by_model[0]["model"], "gpt-4o-mini");
    let by_kind = env.json(&[
        "stats",
        "--include-offline",
        "--by",
        "kind",
        "--format",
        "json",
        "--limit",
        "1",
    ]);
    let kinds: Vec<(&str, u64)> = by_kind
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("command", 1)],
        "--limit 1 takes the newest trace only"
    );

    // The table, for people: one header and one row per name (the snapshot), nothing on stderr.
    let out = env.run_with(
        &["stats", "--include-offline", "--workflow", "Stats Flow"],
        |c| {
            c.env("COLUMNS", "100");
        },
    );
    assert_exit(&out, 0);
    let text = stdout(&out);
    let _filters = table_filters(&env).bind_to_scope();
    insta::assert_snapshot!("stats_table", text);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        stdout(&env.run(&["stats", "--include-offline", "--workflow", "nobody"])),
        "(no spans)\n"
    );
}

#[test]
fn offline_runs_are_marked_cost_nothing_and_stats_leaves_them_out_unless_asked() {
    let env = TestEnv::with_fake().workflow("flow.yaml", STATS_FLOW);
    env.server().push(Reply::text("three zeppelins", 20, 5));
    let real = env.json(&["run", "flow.yaml", "--format", "json"]);
    let offline = env.json(&["run", "flow.yaml", "--offline", "--format", "json"]);
    // Marked in every JSON shape; priced at 0 (gpt-4o-mini's price is $0.15 / $0.60 per
    // million tokens: 20 in and 5 out cost $0.000006).
    assert_eq!(
        (&real["offline"], &offline["offline"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(real["cost_usd"], json!(0.000006));
    assert_eq!(offline["cost_usd"], json!(0.0));
    let (real_id, offline_id) = (
        real["trace_id"].as_str().unwrap(),
        offline["trace_id"].as_str().unwrap(),
    );
    assert_eq!(env.show_json(offline_id)["offline"], true);
    assert_eq!(
        env.show_json(offline_id)["metadata"]["agentrace.offline"],
        true
    );

    // list: both by default; --offline and --no-offline pick one kind.
    let ids = |filters: &[&str]| -> Vec<String> {
        env.list_json(filters)
            .iter()
            .map(|t| t["trace_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&[]), [offline_id, real_id]);
    assert_eq!(ids(&["--offline"]), [offline_id]);
    assert_eq!(ids(&["--no-offline"]), [real_id]);
    assert_eq!(env.list_json(&["--offline"])[0]["offline"], true);
    assert_exit(&env.run(&["list", "--offline", "--no-offline"]), 2);

    // The show header: the cost of a real run, "offline" for the other.
    let header = |id: &str| {
        let out = env.run_with(&["show", id], |c| {
            c.env("COLUMNS", "80");
        });
        assert_exit(&out, 0);
        stdout(&out).lines().next().unwrap_or_default().to_string()
    };
    let (real_header, offline_header) = (header(real_id), header(offline_id));
    assert!(
        real_header.contains("  25 tokens  $0.000006"),
        "{real_header}"
    );
    assert!(
        offline_header.ends_with("tokens  offline"),
        "{offline_header}"
    );
    assert!(!offline_header.contains('$'), "{offline_header}");

    // stats: real runs only unless asked; --offline for the offline ones; --include-offline both.
    let clerk = |flags: &[&str]| {
        let rows = env.json(&[&["stats", "--format", "json"], flags].concat());
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "clerk")
            .cloned();
        row.map(|r| (r["count"].as_u64().unwrap(), r["tokens"].as_u64().unwrap()))
    };
    assert_eq!(clerk(&[]), Some((1, 25)));
    let (n, offline_tokens) = clerk(&["--offline"]).unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        clerk(&["--include-offline"]),
        Some((2, 25 + offline_tokens))
    );
    assert_exit(&env.run(&["stats", "--offline", "--include-offline"]), 2);

    // A store of offline runs only: an empty table, and a note that says why.
    let only = TestEnv::new().workflow("flow.yaml", STATS_FLOW);
    assert_exit(
        &only.run(&["run", "flow.yaml", "--offline", "--format", "none"]),
        0,
    );
    let out = only.run(&["stats"]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "(no spans)\n");
    assert_eq!(
        stderr(&out),
        "note: offline runs are left out; --include-offline counts them\n"
    );
    assert_eq!(stderr(&only.run(&["-q", "stats"])), "");
}

/// An agent whose prompts come from a var and whose answer is scripted: two runs with another
/// `--var` differ in their prompts only.
const PROMPTED: &str = r#"
name: Prompted
model: gpt-4o-mini
vars: { tone: brief }
agents:
  writer: { instructions: "Write {{ vars.tone }} answers." }
steps:
  - id: ask
    agent: writer
    input: "Describe the {{ vars.tone }} plan."
    mock: "The plan."
"#;

#[test]
fn diff_content_compares_prompts_and_shows_no_change_as_equals() {
    let env = TestEnv::new().workflow("prompted.yaml", PROMPTED);
    let run = |tone: &str| {
        let out = env.json(&[
            "run",
            "prompted.yaml",
            "--offline",
            "--var",
            &format!("tone={tone}"),
            "--format",
            "json",
        ]);
        out["trace_id"].as_str().unwrap().to_string()
    };
    let (a, b) = (run("brief"), run("detailed"));
    let out = env.run_with(&["diff", &a, &b, "--content"], |c| {
        c.env("COLUMNS", "100");
    });
    assert_exit(&out, 0);
    let text = stdout(&out);
    // Only the prompts differ, and each shows as a diff: the agent's input and the model
    // call's messages (the snapshot, from the counts on: times vary from run to run).
    let diffs = &text[text.find("\n0 added").unwrap_or(0)..];
    insta::assert_snapshot!("diff_prompts_only", diffs);
    // Offline calls cost nothing on both sides: no change, not `+$0.000000`.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("writer") || l.contains("(trace)"))
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    for row in rows {
        assert!(row.ends_with("  ="), "{row}");
    }
    let v = env.json(&["diff", &a, &b, "--format", "json", "--content"]);
    let agent = v["matched"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "writer")
        .unwrap();
    assert_eq!(
        agent["input_diff"],
        "--- a/writer (input)\n+++ b/writer (input)\n@@ -1 +1 @@\n-Describe the brief plan.\n+Describe the detailed plan.\n"
    );
    assert_eq!(agent["output_diff"], Value::Null);
}

#[test]
fn diff_reports_added_removed_and_changed_spans_and_output_diffs() {
    let env = TestEnv::new()
        .workflow("v1.yaml", STATS_FLOW)
        .workflow("v2.yaml", STATS_FLOW_V2);
    let a = env.json(&["run", "v1.yaml", "--offline", "--format", "json"]);
    let b = env.json(&["run", "v2.yaml", "--offline", "--format", "json"]);
    let (a, b) = (
        a["trace_id"].as_str().unwrap(),
        b["trace_id"].as_str().unwrap(),
    );

    let v = env.json(&["diff", a, b, "--format", "json", "--content"]);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["a", "b", "totals", "added", "removed", "matched"]);
    assert_eq!(v["a"]["trace_id"], a);
    assert_eq!(v["b"]["trace_id"], b);
    let paths = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths("added"), ["Checks/inventory#2"]);
    assert_eq!(paths("removed"), ["clerk", "clerk/gpt-4o-mini"]);
    assert_eq!(
        paths("matched"),
        ["Checks", "Checks/inventory", "Checks/bad"]
    );
    let added = &v["added"][0];
    assert_eq!(
        added.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "path",
            "kind",
            "status",
            "duration_ms",
            "tokens",
            "cost_usd"
        ]
    );
    assert_eq!(
        (&added["kind"], &added["status"]),
        (&json!("command"), &json!("ok"))
    );
    let bad = &v["matched"][2];
    assert_eq!(bad["status"], json!({"a": "error", "b": "ok"}));
    assert_eq!(
        bad.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "path",
            "kind",
            "status",
            "duration_ms",
            "tokens",
            "cost_usd",
            "input_diff",
            "output_diff"
        ]
    );
    let d = &bad["duration_ms"];
    let (da, db) = (d["a"].as_f64().unwrap(), d["b"].as_f64().unwrap());
    assert!(
        (d["delta"].as_f64().unwrap() - (db - da)).abs() < 0.002,
        "{d}"
    );
    assert_eq!(
        v["matched"][1]["output_diff"],
        "--- a/Checks/inventory\n+++ b/Checks/inventory\n@@ -1 +1 @@\n-10 units\n+12 units\n"
    );
    assert_eq!(v["matched"][0]["output_diff"], Value::Null);
    assert_eq!(
        v["matched"][2]["output_diff"],
        Value::Null,
        "no output on either side"
    );
    // The agent's tokens and cost are gone in B.
    let totals = &v["totals"];
    let tokens_a = totals["tokens"]["a"].as_i64().unwrap();
    assert!(tokens_a > 0);
    assert_eq!(totals["tokens"]["b"], 0);
    assert_eq!(totals["tokens"]["delta"], -tokens_a);
    assert_eq!(totals["cost_usd"]["b"], Value::Null);
    assert_eq!(totals["status"], json!({"a": "ok", "b": "ok"}));

    // The table marks each span (+ added, - removed, ~ changed status), counts them, and ends
    // with the output diff (the snapshot); a diff is information, so the exit code is 0.
    let out = env.run_with(&["diff", a, b, "--content"], |c| {
        c.env("COLUMNS", "100");
    });
    assert_exit(&out, 0);
    let text = stdout(&out);
    let _filters = table_filters(&env).bind_to_scope();
    insta::assert_snapshot!("diff_table", text);
    // Without --content there is no output diff; `last` and prefixes work as in `show`.
    let out = env.run(&["diff", &a[..22], "last"]);
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("+12 units"));
    assert_exit(&env.run(&["diff", a, "trace_ffffffff"]), 2);
}

#[test]
fn list_search_finds_a_word_from_a_model_output_and_combines_with_filters() {
    let env = TestEnv::new().workflow("flow.yaml", STATS_FLOW).workflow(
        "other.yaml",
        "name: Other\nsteps:\n  - { id: x, run: [\"echo\", \"no airships here\"] }\n",
    );
    let found = env.json(&["run", "flow.yaml", "--offline", "--format", "json"]);
    assert_exit(
        &env.run(&["run", "other.yaml", "--offline", "--format", "none"]),
        0,
    );
    // The same answer under --no-content: nothing of it may be indexed.
    let private = env.json(&[
        "run",
        "flow.yaml",
        "--offline",
        "--no-content",
        "--format",
        "json",
    ]);
    assert_ne!(found["trace_id"], private["trace_id"]);

    let ids = |filters: &[&str]| -> Vec<Value> {
        env.list_json(filters)
            .into_iter()
            .map(|t| t["trace_id"].clone())
            .collect()
    };
    // "zeppelins" is only in the model's (mock) answer.
    assert_eq!(ids(&["--search", "zeppelins"]), [found["trace_id"].clone()]);
    assert_eq!(
        ids(&["--search", "ZEPPELINS", "--workflow", "Stats Flow"]),
        [found["trace_id"].clone()]
    );
    assert!(ids(&["--search", "zeppelins", "--workflow", "Other"]).is_empty());
    assert_eq!(ids(&["--search", "zep*", "--status", "ok"]).len(), 1);
    // Command stdout, span names, trace names.
    assert_eq!(ids(&["--search", "airships"]).len(), 1);
    assert_eq!(ids(&["--search", "inventory"]).len(), 2);
    assert_eq!(ids(&["--search", "other"]).len(), 1);
    assert!(ids(&["--search", "zeppelins airships"]).is_empty());
    let out = env.run(&["list", "--search", "  "]);
    assert_exit(&out, 2);
}

#[test]
fn rm_deletes_traces_and_refuses_unknown_ids_without_deleting_anything() {
    let env = TestEnv::new().workflow("flow.yaml", STATS_FLOW);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let t = env.json(&["run", "flow.yaml", "--offline", "--format", "json"]);
        ids.push(t["trace_id"].as_str().unwrap().to_string());
    }
    let out = env.run(&["rm", &ids[0], "trace_0000ffff"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("trace_0000ffff"), "{}", stderr(&out));
    assert_eq!(env.list_json(&[]).len(), 3);

    let out = env.run(&["rm", &ids[0], &ids[1][..22]]);
    assert_exit(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("deleted {}\ndeleted {}\n", ids[0], ids[1])
    );
    let left: Vec<Value> = env
        .list_json(&[])
        .into_iter()
        .map(|t| t["trace_id"].clone())
        .collect();
    assert_eq!(left, [json!(ids[2])]);
    assert_exit(&env.run(&["show", &ids[0]]), 2);
    assert_eq!(env.list_json(&["--search", "zeppelins"]).len(), 1);
    assert_exit(&env.run(&["rm"]), 2);
}

#[test]
fn prune_deletes_only_traces_older_than_asked() {
    let env = TestEnv::new().workflow("flow.yaml", STATS_FLOW);
    for _ in 0..2 {
        assert_exit(
            &env.run(&["run", "flow.yaml", "--offline", "--format", "none"]),
            0,
        );
    }
    let out = env.run(&["prune", "--older-than", "1d"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).starts_with("deleted 0 traces started before "),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.list_json(&[]).len(), 2);

    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = env.run(&["prune", "--older-than", "1ms", "--dry-run"]);
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("would delete 2 traces started before "),
        "{text}"
    );
    assert_eq!(env.list_json(&[]).len(), 2);

    let out = env.run(&["prune", "--older-than", "1ms"]);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("deleted 2 traces started before "));
    assert!(env.list_json(&[]).is_empty());
    assert_exit(&env.run(&["prune"]), 2);
    assert_exit(&env.run(&["prune", "--older-than", "soon"]), 2);
}

#[test]
fn completions_and_man_page_come_from_the_cli_definitions() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = env.run(&["completions", shell]);
        assert_exit(&out, 0);
        let script = stdout(&out);
        for sub in ["stats", "diff", "prune", "export"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    assert!(stdout(&env.run(&["completions", "bash"])).contains("--search"));
    assert_exit(&env.run(&["completions", "tcsh"]), 2);
    let out = env.run(&["man"]);
    assert_exit(&out, 0);
    let page = stdout(&out);
    assert!(page.contains(".TH agentrace 1"), "{page}");
    for sub in ["run", "list", "stats", "diff", "rm", "prune", "completions"] {
        assert!(
            page.contains(&format!("agentrace\\-{sub}")),
            "man page lacks {sub}"
        );
    }
}
