//! The example workflows (workflows/): each is valid, runs offline and against an
//! OpenAI-compatible server, and records the trace its README section describes.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;
use crate::traces::*;

/// A TestEnv holding a copy of the repository's `workflows/` directory.
pub(crate) fn examples() -> TestEnv {
    let env = TestEnv::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    copy_dir(&src, &env.path().join("workflows"));
    env
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap(); // keeps the mode (chmod +x)
        }
    }
}

#[test]
fn every_example_workflow_is_valid() {
    let env = examples();
    let out = env.run(&[
        "validate",
        "workflows/research.yaml",
        "workflows/document.yaml",
        "workflows/order.yaml",
        "workflows/support.yaml",
        "workflows/batch.yaml",
    ]);
    assert_exit(&out, 0);
}

#[test]
fn example_research_chains_three_agents_in_one_trace() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/research.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines.len(), 1);
    let run = &lines[0];
    assert_eq!(run["name"], "Research and Analysis Workflow");
    let trace = env.show_json(run["trace_id"].as_str().unwrap());
    let generation_name = |agent: &str| {
        children(&trace, find(&trace, "agent", agent))[0]["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        outline(&trace),
        vec![
            "agent researcher ok".to_string(),
            format!("  generation {} ok", generation_name("researcher")),
            "agent analyst ok".to_string(),
            format!("  generation {} ok", generation_name("analyst")),
            "custom Executive Summary ok".to_string(),
            "  agent writer ok".to_string(),
            format!("    generation {} ok", generation_name("writer")),
        ]
    );
    let analysis_input = &find(&trace, "agent", "analyst")["attributes"]["input"];
    let research_output = run["outputs"]["research"].as_str().unwrap();
    assert!(
        analysis_input.as_str().unwrap().contains(research_output),
        "analysis reads research"
    );
    let summary_input = find(&trace, "agent", "writer")["attributes"]["input"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(summary_input.contains(run["outputs"]["analysis"].as_str().unwrap()));
    assert!(
        of_kind(&trace, "generation")
            .iter()
            .all(|g| g["attributes"]["offline"] == true)
    );
}

#[test]
fn example_document_has_data_preparation_and_ai_processing_spans_with_events() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/document.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());

    let prep = find(&trace, "custom", "Data Preparation");
    let ai = find(&trace, "custom", "AI Processing");
    assert!(prep["parent_id"].is_null() && ai["parent_id"].is_null());
    let prep_children = children(&trace, prep);
    assert_eq!(prep_children.len(), 1);
    assert_eq!(prep_children[0]["kind"], "command");
    assert_eq!(
        event(prep, "Data loaded")["attributes"],
        json!({"records": 100})
    );
    assert_eq!(
        event(prep, "Data validated")["attributes"],
        json!({"errors": 0})
    );

    let agent = children(&trace, ai)
        .into_iter()
        .find(|s| s["kind"] == "agent")
        .expect("an agent under AI Processing");
    let output = lines[0]["outputs"]["describe"].as_str().unwrap();
    let length_event = ai["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["attributes"].get("output_length").is_some())
        .unwrap_or_else(|| panic!("AI Processing has an event with output_length: {ai:#}"));
    assert_eq!(
        length_event["attributes"]["output_length"],
        output.chars().count()
    );
    assert_eq!(agent["status"], "ok");
}

#[test]
fn example_order_checks_inventory_and_payment_in_parallel_under_order_validation() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/order.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["name"], "E-commerce Order Processing");
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());

    let validation = find(&trace, "custom", "Order Validation");
    let checks = find(&trace, "custom", "Checks");
    let inventory = find(&trace, "custom", "Inventory Check");
    let payment = find(&trace, "custom", "Payment Validation");
    assert!(validation["parent_id"].is_null());
    assert_eq!(parent(&trace, checks).unwrap()["name"], "Order Validation");
    assert_eq!(
        child_labels(&trace, checks),
        ["custom Inventory Check ok", "custom Payment Validation ok"],
        "the two checks are the branches of one parallel step"
    );
    assert_eq!(parent(&trace, inventory).unwrap()["name"], "Checks");
    assert_eq!(parent(&trace, payment).unwrap()["name"], "Checks");
    for span in [inventory, payment] {
        assert!(!event_names(span).is_empty(), "{} has events", span["name"]);
        let kids = children(&trace, span);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0]["kind"], "command");
        assert!(
            kids[0]["attributes"]["argv"].is_array(),
            "scripts run in argv form"
        );
    }
    assert_eq!(
        event(inventory, "Inventory reserved")["attributes"]["reserved"],
        2
    );
    let confirm = of_kind(&trace, "agent");
    assert_eq!(confirm.len(), 1);
    assert!(confirm[0]["parent_id"].is_null());
    assert!(
        lines[0]["outputs"]["confirmation"]
            .as_str()
            .unwrap()
            .contains("ORD-1001"),
        "the mock reads like a confirmation"
    );

    // Out of stock: the inventory script fails; the payment check, running beside it, still
    // finishes; the order fails and nothing after it runs.
    let (out, lines) = run_json(
        &env,
        "workflows/order.yaml",
        &["--offline", "--var", "quantity=100"],
    );
    assert_exit(&out, 1);
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    assert_eq!(find(&trace, "custom", "Inventory Check")["status"], "error");
    assert_eq!(find(&trace, "custom", "Checks")["status"], "error");
    assert_eq!(
        find(&trace, "custom", "Order Validation")["status"],
        "error"
    );
    let payment = find(&trace, "custom", "Payment Validation");
    assert_eq!(payment["status"], "ok");
    assert!(event_names(payment).contains(&"Payment approved".to_string()));
    assert!(ran(&trace, "agent").is_empty());
}

#[test]
fn example_support_runs_two_traces_sharing_a_group_and_metadata() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/support.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "Customer Support - Initial Inquiry");
    assert_eq!(lines[1]["name"], "Customer Support - Follow-up");
    assert_eq!(lines[0]["group_id"], "conv_12345");
    assert_eq!(lines[1]["group_id"], "conv_12345");

    let first = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    let second = env.show_json(lines[1]["trace_id"].as_str().unwrap());
    for t in [&first, &second] {
        let meta = t["metadata"].as_object().unwrap();
        for key in ["customer_id", "priority", "channel"] {
            assert!(meta.contains_key(key), "metadata has {key}: {meta:?}");
        }
    }
    assert_eq!(first["metadata"]["customer_id"], "cust_789");
    let answer = lines[0]["outputs"]["inquiry"].as_str().unwrap();
    let follow_request = sent_messages(of_kind(&second, "generation")[0]);
    assert!(
        follow_request.contains(&("assistant".to_string(), answer.to_string())),
        "the follow-up continues the conversation (a session): {follow_request:#?}"
    );

    let (out, lines) = run_json(
        &env,
        "workflows/support.yaml",
        &["--offline", "--var", "conversation_id=conv_777"],
    );
    assert_exit(&out, 0);
    assert!(lines.iter().all(|l| l["group_id"] == "conv_777"));
    assert_eq!(env.list_json(&["--group", "conv_12345"]).len(), 2);
}

#[test]
fn every_example_runs_against_an_openai_compatible_server_too() {
    let env = examples().fake(FakeOpenAI::start());
    // The research writer must answer in its schema; every other call gets the echo.
    let summary = r#"{"title": "T", "key_points": ["k"], "confidence": "low"}"#;
    let scripted: [(&str, Vec<Reply>); 5] = [
        (
            "workflows/research.yaml",
            vec![Reply::Echo, Reply::Echo, Reply::text(summary, 10, 5)],
        ),
        ("workflows/document.yaml", vec![]),
        ("workflows/order.yaml", vec![]),
        ("workflows/support.yaml", vec![]),
        ("workflows/batch.yaml", vec![]),
    ];
    for (file, replies) in scripted {
        env.server().push_all(replies);
        let (out, lines) = run_json(&env, file, &[]);
        assert_exit(&out, 0);
        for line in &lines {
            assert_eq!(line["status"], "ok", "{file}: {line:#}");
        }
    }
    let requests = env.server().requests();
    assert_eq!(
        requests.len(),
        3 + 1 + 1 + 2 + 5 + 1,
        "one call per agent step (and per batch topic) when the model calls no tools, mocks unused"
    );
    for r in &requests {
        assert_eq!(r.model(), "gpt-4o-mini");
        let messages = r.messages();
        assert_eq!(messages[0].0, "system", "{messages:?}");
        assert_eq!(messages.last().unwrap().0, "user", "{messages:?}");
        assert!(
            messages.iter().all(|(_, c)| !c.contains("{{")),
            "{messages:?}"
        );
    }
    // support.yaml's follow-up continues the session of the inquiry.
    assert_eq!(
        requests[6].messages().len(),
        4,
        "{:?}",
        requests[6].messages()
    );
}

#[test]
fn example_batch_summarises_each_topic_three_at_a_time_then_writes_a_digest() {
    let env = examples();
    let (out, lines) = run_json(&env, "workflows/batch.yaml", &["--offline"]);
    assert_exit(&out, 0);
    let run = &lines[0];
    let trace = env.show_json(run["trace_id"].as_str().unwrap());
    let mut items: Vec<&Value> = spans(&trace)
        .iter()
        .filter(|s| s["attributes"].get("index").is_some())
        .collect();
    items.sort_by_key(|s| s["attributes"]["index"].as_u64().unwrap());
    let topics: Vec<String> = items
        .iter()
        .map(|s| s["attributes"]["item"].as_str().unwrap().to_string())
        .collect();
    assert!(topics.len() >= 3, "a few topics: {topics:?}");
    let summaries = output_list(&run["outputs"]["summaries"]);
    let summaries = summaries.as_array().unwrap();
    assert_eq!(summaries.len(), topics.len());
    let lp = parent(&trace, items[0]).unwrap();
    assert_eq!(lp["kind"], "custom");
    assert_eq!(lp["name"], "Summaries");
    assert_eq!(
        event(find(&trace, "custom", "Digest"), "Summaries collected")["attributes"]["topics"],
        topics.len()
    );
    assert_eq!(children(&trace, lp).len(), topics.len());
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["parent_id"], lp["span_id"]);
        assert_eq!(item["kind"], "custom");
        assert_eq!(item["attributes"]["index"], i);
        assert_eq!(item["name"], item["attributes"]["item"]);
        let kids = children(&trace, item);
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0]["kind"], "agent");
        assert!(
            kids[0]["attributes"]["input"]
                .as_str()
                .unwrap()
                .contains(item["name"].as_str().unwrap()),
            "each item's prompt names its topic"
        );
    }
    // The aggregate step reads every summary.
    let agents = of_kind(&trace, "agent");
    let digest = agents.last().unwrap();
    assert!(digest["parent_id"] != lp["span_id"]);
    let digest_input = digest["attributes"]["input"].as_str().unwrap();
    for s in summaries {
        assert!(digest_input.contains(s.as_str().unwrap()), "{digest_input}");
    }
    assert!(
        of_kind(&trace, "generation")
            .iter()
            .all(|g| g["attributes"]["offline"] == true)
    );

    // Against a server: three calls at a time, outputs in topic order all the same.
    let env = examples().fake(FakeOpenAI::start());
    env.server().set_default(Reply::delayed(500, Reply::Echo));
    let (out, lines) = run_json(&env, "workflows/batch.yaml", &[]);
    assert_exit(&out, 0);
    assert_eq!(env.server().max_in_flight(), 3.min(topics.len()));
    let summaries = output_list(&lines[0]["outputs"]["summaries"]);
    let summaries = summaries.as_array().unwrap();
    for (topic, summary) in topics.iter().zip(summaries) {
        assert!(
            summary.as_str().unwrap().contains(topic.as_str()),
            "{summary} for {topic}"
        );
    }
}

#[test]
fn example_eval_scores_the_support_answers_offline_with_checks_and_a_scripted_judge() {
    let env = examples();
    let out = env.run(&[
        "eval",
        "workflows/eval/support-answers.yaml",
        "--dataset",
        "workflows/eval/cases.jsonl",
        "--offline",
        "--format",
        "json",
    ]);
    // Three cases fail on purpose (an apology, a refusal, a non-answer): the gate says so.
    assert_exit(&out, 1);
    let report: Value = parse_json(&out.stdout);
    let cases = report["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "a dataset of at least 20 cases");
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let mut failed = failed;
    failed.sort_unstable();
    assert_eq!(failed, ["account-delete", "allergy", "damaged-item"]);
    // Every case carries the three checks and the judge, and the judge read the case's grade.
    for case in cases {
        let names: Vec<&str> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        for scorer in ["key_fact", "short", "no_apology", "helpful"] {
            assert!(
                names.contains(&scorer),
                "{} lacks {scorer}: {names:?}",
                case["id"]
            );
        }
    }
    let allergy = cases.iter().find(|c| c["id"] == "allergy").unwrap();
    let helpful = allergy["scores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "helpful")
        .unwrap();
    assert_eq!(helpful["label"], "no");
    assert_eq!(helpful["source"], "judge");
    assert_eq!(helpful["passed"], false);
    // And it is valid as a workflow on its own.
    assert_exit(
        &env.run(&["validate", "workflows/eval/support-answers.yaml"]),
        0,
    );
}

/// A ```yaml block of the README or of a page under docs/, with where it starts.
struct YamlBlock {
    /// `README.md` or `docs/<page>.md`.
    file: String,
    /// The 1-based line in `file` of the block's first line.
    line: usize,
    text: String,
}

/// Every ```yaml (or ```yml) block of a Markdown text; a fence indented inside a list item
/// gives its block with that indentation removed.
fn yaml_blocks(file: &str, markdown: &str) -> Vec<YamlBlock> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, Vec<&str>)> = None;
    for (n, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None if matches!(trimmed.trim_end(), "```yaml" | "```yml") => {
                open = Some((n + 2, indent, Vec::new()));
            }
            None => {}
            Some((start, _, body)) if trimmed.trim_end() == "```" => {
                blocks.push(YamlBlock {
                    file: file.to_string(),
                    line: *start,
                    text: body.join("\n") + "\n",
                });
                open = None;
            }
            Some((_, indent, body)) => body.push(line.get(*indent..).unwrap_or(line.trim_start())),
        }
    }
    blocks
}

/// The rule that tells a whole workflow from a fragment: a whole workflow has the keys a
/// workflow file requires at its top level, `name:` and `steps:` (or `traces:`). A block that
/// shows a few keys (`steps:` alone, `tools:`, `retry:`) is a fragment and is not validated;
/// docs/development.md says so to whoever writes one.
fn is_whole_workflow(yaml: &str) -> bool {
    let top = |key: &str| yaml.lines().any(|l| l.starts_with(&format!("{key}:")));
    top("name") && (top("steps") || top("traces"))
}

/// Issue 17 (point 7): every whole workflow the README and the docs show passes `validate`, so
/// that a reader who copies one is not met by errors; a failure names the block's file and line.
#[test]
fn every_whole_workflow_in_the_readme_and_docs_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let env = examples();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for page in &pages {
        let markdown = std::fs::read_to_string(root.join(page)).unwrap();
        for block in yaml_blocks(page, &markdown) {
            if !is_whole_workflow(&block.text) {
                continue;
            }
            // In the directory the examples live in, so that a block's `./scripts/…` resolve
            // as they do for a reader in a clone.
            let name = format!("block-{}.yaml", checked.len());
            env.write(&name, &block.text);
            let out = env.run(&["validate", &name]);
            checked.push(format!("{}:{}", block.file, block.line));
            if !out.status.success() {
                failures.push(format!(
                    "{}:{}: this workflow does not validate:\n{}",
                    block.file,
                    block.line,
                    at_page_lines(&stderr(&out), &name, &block)
                ));
            }
        }
    }
    assert!(
        checked.iter().any(|at| at.starts_with("README.md:")),
        "the README's tour workflow is among the blocks checked: {checked:?}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `validate`'s messages about the block's file, with `FILE:LINE:COL` turned into the page's
/// own `PAGE:LINE:COL`.
fn at_page_lines(messages: &str, file: &str, block: &YamlBlock) -> String {
    let prefix = format!("{file}:");
    let mut out = String::new();
    let mut rest = messages;
    while let Some(at) = rest.find(&prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(line) => {
                out.push_str(&format!("{}:{}", block.file, block.line + line - 1));
                rest = &after[digits..];
            }
            Err(_) => {
                out.push_str(&prefix);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn yaml_blocks_are_found_with_their_lines_and_fragments_are_told_apart() {
    let md = "# T\n\n```yaml\nname: a\nsteps:\n  - run: [\"true\"]\n```\n\n- item\n\n  ```yaml\n  steps: []\n  ```\n";
    let blocks = yaml_blocks("x.md", md);
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[0].line, blocks[1].line), (4, 12));
    assert_eq!(blocks[1].text, "steps: []\n");
    assert!(is_whole_workflow(&blocks[0].text));
    assert!(!is_whole_workflow(&blocks[1].text), "no name: a fragment");
    assert_eq!(
        at_page_lines("error: b.yaml:2:5: bad", "b.yaml", &blocks[0]),
        "error: x.md:5:5: bad"
    );
}
