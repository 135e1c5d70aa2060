//! The same binary against a real model: the llama.cpp server from PyPI's llama-cpp-python,
//! serving SmolLM2-135M-Instruct. `ci/llama-server.sh install` and `start` set it up, and
//! `.ci/run` does both and exports AGENTRACE_LLAMA_URL. The model is tiny and its wording is not
//! ours to judge, so these tests assert structure and token usage only, never what the model
//! said.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::examples::examples;
use crate::failures::{AGENT_IN_SPAN, assert_key_absent, assert_model_failure};
use crate::support::*;
use crate::traces::*;

/// Long enough for three short agent replies on 2 busy cores; past it the test fails.
pub(crate) const REAL_DEADLINE: Duration = Duration::from_secs(300);

/// The real server's base URL (`http://127.0.0.1:PORT/v1`), or `None` after a note on stderr
/// when none was started. Under CI a missing server fails the test: a skipped real-server test
/// must not pass as a green run.
fn llama_url() -> Option<String> {
    if let Ok(url) = std::env::var("AGENTRACE_LLAMA_URL")
        && !url.trim().is_empty()
    {
        return Some(url.trim().trim_end_matches('/').to_string());
    }
    assert!(
        !under_ci(),
        "AGENTRACE_LLAMA_URL is not set under CI: .ci/run should have started the llama.cpp \
         server (ci/llama-server.sh install && ci/llama-server.sh start) and exported it"
    );
    eprintln!(
        "skipped: AGENTRACE_LLAMA_URL is not set. To run against a real model: \
         ci/llama-server.sh install && eval \"$(ci/llama-server.sh start)\""
    );
    None
}

/// A TestEnv whose model calls go to the real server (any key works: it was started without one).
fn real_env(env: TestEnv, url: &str) -> TestEnv {
    env.env("OPENAI_BASE_URL", url)
        .env("OPENAI_API_KEY", "sk-llama-local")
}

/// `run FILE --format json ...` against the real server, with a deadline fit for a real model.
pub(crate) fn real_run_json(
    env: &TestEnv,
    file: &str,
    extra: &[&str],
) -> (std::process::Output, Vec<Value>) {
    let mut cmd = env.cmd();
    cmd.args(["run", file, "--format", "json"]).args(extra);
    let out = output_within(cmd, REAL_DEADLINE);
    let lines = parse_json_lines(&out.stdout);
    (out, lines)
}

/// Input and output tokens of a `usage` object, each asserted to be a positive count, and the
/// total asserted to be their sum.
#[track_caller]
pub(crate) fn real_usage(usage: &Value, what: &str) -> (u64, u64) {
    let input = usage["input_tokens"].as_u64().unwrap_or(0);
    let output = usage["output_tokens"].as_u64().unwrap_or(0);
    assert!(input > 0, "{what}: input_tokens > 0 expected: {usage}");
    assert!(output > 0, "{what}: output_tokens > 0 expected: {usage}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(input + output),
        "{what}: {usage}"
    );
    (input, output)
}

/// The recorded request messages of a generation span as (role, content) pairs.
#[track_caller]
fn request_messages(generation: &Value) -> Vec<(String, String)> {
    generation["attributes"]["input"]
        .as_array()
        .unwrap_or_else(|| panic!("generation has no input messages: {generation:#}"))
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// workflows/research.yaml without the writer's `output_schema` and the event that reads its
/// fields, so that the plain chain is checked on its own. llama-cpp-python's server accepts
/// `response_format` of type `text` or `json_object` (with a `schema`) only; the unchanged file
/// (below) checks that agentrace falls back to that form when `json_schema` is refused.
fn research_without_output_schema() -> String {
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/research.yaml"),
    )
    .unwrap();
    let mut kept = Vec::new();
    let mut skipping: Option<usize> = None;
    let (mut schemas, mut events) = (0, 0);
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping {
            if line.trim().is_empty() || indent > level {
                continue;
            }
            skipping = None;
        }
        if line.trim_start().starts_with("output_schema:") {
            schemas += 1;
            skipping = Some(indent);
        } else if line.trim_start().starts_with("- event: Summary ready") {
            events += 1;
            skipping = Some(indent);
        } else {
            kept.push(line);
        }
    }
    assert_eq!(
        (schemas, events),
        (1, 1),
        "research.yaml changed: update research_without_output_schema"
    );
    kept.join("\n") + "\n"
}

/// The sampling seed the real research runs send with every call. Unseeded, llama-cpp-python
/// derives each request's seed from the one before, so an answer depends on which other tests
/// used the shared server first; and a 135M model with the json_object grammar sometimes opens
/// a string it never closes, in roughly one run in fifteen. With a seed the answers are the same
/// on every run of this server build. `AGENTRACE_REAL_SEED` tries another.
const REAL_SEED: i64 = 1;

/// `yaml` with `seed:` next to each agent's `temperature:` (every agent of research.yaml has one).
fn seeded(yaml: &str) -> String {
    let seed = std::env::var("AGENTRACE_REAL_SEED")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(REAL_SEED);
    let mut out = String::new();
    let mut seeds = 0;
    for line in yaml.lines() {
        out.push_str(line);
        out.push('\n');
        if let Some(setting) = line.strip_suffix(line.trim_start())
            && line.trim_start().starts_with("temperature:")
        {
            out.push_str(&format!("{setting}seed: {seed}\n"));
            seeds += 1;
        }
    }
    assert_eq!(seeds, 3, "research.yaml changed: update seeded");
    out
}

#[test]
fn real_research_workflow_runs_end_to_end_with_usage_and_chained_outputs() {
    let Some(url) = llama_url() else { return };
    let env = real_env(examples(), &url);
    env.write(
        "workflows/research.yaml",
        &seeded(&research_without_output_schema()),
    );
    assert_research_runs_on_the_real_server(&env);
}

#[test]
fn real_research_workflow_with_its_output_schema_runs_end_to_end() {
    let Some(url) = llama_url() else { return };
    let env = real_env(examples(), &url);
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/research.yaml"),
    )
    .unwrap();
    env.write("workflows/research.yaml", &seeded(&yaml));
    assert_research_runs_on_the_real_server(&env);
}

/// Runs workflows/research.yaml in `env` against the real server and checks its structure,
/// usage, recorded prompts and chaining.
fn assert_research_runs_on_the_real_server(env: &TestEnv) {
    let topic = "tidal energy";

    // The same workflow offline gives the rendered instructions to compare against (they do not
    // depend on earlier answers, so they are the same in both runs).
    let (offline_out, offline_lines) = run_json(
        env,
        "workflows/research.yaml",
        &["--offline", "--var", &format!("topic={topic}")],
    );
    assert_exit(&offline_out, 0);
    let offline = env.show_json(offline_lines[0]["trace_id"].as_str().unwrap());

    let (out, lines) = real_run_json(
        env,
        "workflows/research.yaml",
        &["--var", &format!("topic={topic}")],
    );
    assert_exit(&out, 0);
    assert_eq!(lines.len(), 1, "one JSON line per trace: {lines:#?}");
    let run = &lines[0];
    assert_eq!(run["status"], "ok");
    let trace = env.show_json(run["trace_id"].as_str().unwrap());
    assert_eq!(trace["status"], "ok");

    let agents = of_kind(&trace, "agent");
    let names: Vec<&str> = agents.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["researcher", "analyst", "writer"],
        "{:#?}",
        outline(&trace)
    );

    let mut sum = (0, 0);
    let mut generations = Vec::new();
    for agent in &agents {
        let name = agent["name"].as_str().unwrap();
        assert_eq!(agent["status"], "ok", "{name}");
        let kids = children(&trace, agent);
        assert_eq!(
            kids.len(),
            1,
            "{name}: one generation child: {:#?}",
            outline(&trace)
        );
        let generation = kids[0];
        assert_eq!(generation["kind"], "generation", "{name}");
        assert_eq!(generation["status"], "ok", "{name}");
        assert_ne!(
            generation["attributes"]["offline"],
            json!(true),
            "{name}: a real call"
        );

        let (input, output) = real_usage(&generation["attributes"]["usage"], name);
        sum = (sum.0 + input, sum.1 + output);

        let reply = generation["attributes"]["output"]
            .as_str()
            .unwrap_or_default();
        assert!(
            !reply.trim().is_empty(),
            "{name}: the generation records the reply: {generation:#}"
        );
        assert!(
            !agent["attributes"]["output"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .is_empty(),
            "{name}: the agent records its output: {agent:#}"
        );

        // The request carried the rendered system and user text.
        let messages = request_messages(generation);
        let roles: Vec<&str> = messages.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(roles, ["system", "user"], "{name}: {messages:#?}");
        let offline_generation = children(&offline, find(&offline, "agent", name))[0];
        assert_eq!(
            messages[0],
            request_messages(offline_generation)[0],
            "{name}: the system message is the rendered instructions"
        );
        assert_eq!(
            Some(messages[1].1.as_str()),
            agent["attributes"]["input"].as_str(),
            "{name}: the user message is the rendered input"
        );
        for (_, content) in &messages {
            assert!(
                !content.contains("{{"),
                "{name}: unrendered template: {content}"
            );
        }
        assert!(
            messages[0].1.contains(topic) || messages[1].1.contains(topic),
            "{name}: {messages:#?}"
        );
        generations.push(messages);
    }

    // Chaining: each later request holds the previous agent's answer.
    let research = run["outputs"]["research"].as_str().unwrap();
    let analysis = run["outputs"]["analysis"].as_str().unwrap();
    assert!(
        !research.trim().is_empty() && !analysis.trim().is_empty(),
        "{run:#}"
    );
    assert!(
        generations[1][1].1.contains(research),
        "the analyst's request holds the research"
    );
    assert!(
        generations[2][1].1.contains(analysis),
        "the writer's request holds the analysis"
    );

    // The trace's usage is the sum over its generations, in `show` and in the run line alike.
    assert_eq!(trace["usage"], usage(sum.0, sum.1));
    assert_eq!(run["usage"], usage(sum.0, sum.1));
}

/// A one-agent workflow whose reply is capped, for the quick checks below.
fn real_short_workflow(provider: &str) -> String {
    format!(
        r#"
name: Real server short reply
model: smollm2
{provider}
agents:
  poet:
    instructions: You are a concise assistant.
    max_tokens: 24
    temperature: 0
steps:
  - id: line
    agent: poet
    input: Write one sentence about the ocean.
"#
    )
}

// `stream: false`: a plain request, whose reply carries the server's own usage.
#[test]
fn real_non_streaming_call_records_the_servers_usage_within_max_tokens() {
    let Some(url) = llama_url() else { return };
    let env = real_env(TestEnv::new(), &url).workflow(
        "short.yaml",
        &real_short_workflow("provider: { stream: false }"),
    );
    let (out, lines) = real_run_json(&env, "short.yaml", &[]);
    assert_exit(&out, 0);
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    assert_eq!(trace["status"], "ok");
    let generation = of_kind(&trace, "generation")[0];
    let (input, output) = real_usage(&generation["attributes"]["usage"], "generation");
    assert!(output <= 24, "max_tokens caps the reply: {output} tokens");
    assert_ne!(
        generation["attributes"]["usage_estimated"],
        json!(true),
        "a non-streaming reply carries the server's own usage"
    );
    assert_eq!(generation["attributes"]["model"], "smollm2");
    assert_eq!(trace["usage"], usage(input, output));
    assert_eq!(
        request_messages(generation),
        vec![
            (
                "system".to_string(),
                "You are a concise assistant.".to_string()
            ),
            (
                "user".to_string(),
                "Write one sentence about the ocean.".to_string()
            ),
        ]
    );
}

// llama.cpp's stream has no usage chunk, so a streamed generation carries usage estimated from
// the text (`usage_estimated: true`) and the time its first token arrived.
#[test]
fn real_streaming_call_records_time_to_first_token_and_estimated_usage() {
    let Some(url) = llama_url() else { return };
    let env = real_env(TestEnv::new(), &url).workflow(
        "short.yaml",
        &real_short_workflow("provider: { stream: true }"),
    );
    let (out, lines) = real_run_json(&env, "short.yaml", &[]);
    assert_exit(&out, 0);
    let trace = env.show_json(lines[0]["trace_id"].as_str().unwrap());
    assert_eq!(trace["status"], "ok");
    let generation = of_kind(&trace, "generation")[0];
    let ttft = generation["attributes"]["time_to_first_token_ms"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(ttft > 0.0, "time to first token recorded: {generation:#}");
    let duration = generation["duration_ms"].as_f64().unwrap();
    assert!(
        ttft <= duration,
        "the first token came within the call: {ttft} > {duration}"
    );
    let (input, output) = real_usage(&generation["attributes"]["usage"], "generation");
    assert_eq!(
        generation["attributes"]["usage_estimated"],
        json!(true),
        "{generation:#}"
    );
    assert!(
        !generation["attributes"]["output"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty()
    );
    assert_eq!(trace["usage"], usage(input, output));
}

/// A second real server that requires an API key, started by `ci/llama-server.sh` in a state
/// directory of its own and stopped by its recorded PID when dropped (also when the test fails).
struct KeyedLlama {
    state: tempfile::TempDir,
    url: String,
}

impl KeyedLlama {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/llama-server.sh")
    }

    fn start(key: &str) -> KeyedLlama {
        let state = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .env("LLAMA_API_KEY", key)
            .env("LLAMA_STATE_DIR", state.path())
            .env_remove("LLAMA_PORT")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        // Built before any assertion, so that a half-started server is stopped on the way out.
        let mut server = KeyedLlama {
            state,
            url: String::new(),
        };
        assert_exit(&out, 0);
        server.url = stdout(&out)
            .lines()
            .find_map(|l| l.strip_prefix("export AGENTRACE_LLAMA_URL="))
            .unwrap_or_else(|| panic!("no URL in the script's output: {}", stdout(&out)))
            .to_string();
        server
    }
}

impl Drop for KeyedLlama {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .env("LLAMA_STATE_DIR", self.state.path())
            .stdin(std::process::Stdio::null())
            .output();
    }
}

#[test]
fn real_server_with_an_api_key_fails_the_run_on_a_wrong_key_and_accepts_the_right_one() {
    if llama_url().is_none() {
        return;
    }
    let server = KeyedLlama::start(SECRET_KEY);
    let env = TestEnv::new().env("OPENAI_BASE_URL", &server.url).workflow(
        "agent.yaml",
        &AGENT_IN_SPAN.replace("gpt-4o-mini", "smollm2"),
    );

    let wrong = env.env("OPENAI_API_KEY", "sk-wrong-key");
    let trace = assert_model_failure(&wrong, "");
    let generation = of_kind(&trace, "generation")[0];
    assert!(
        !generation["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-wrong-key"),
        "the rejected key is not echoed into the trace: {generation:#}"
    );

    let right = wrong.env("OPENAI_API_KEY", SECRET_KEY);
    let mut cmd = right.cmd();
    cmd.args(["run", "agent.yaml", "--format", "json"]);
    let out = output_within(cmd, REAL_DEADLINE);
    assert_exit(&out, 0);
    let trace = right.show_json("last");
    real_usage(
        &of_kind(&trace, "generation")[0]["attributes"]["usage"],
        "generation",
    );
    assert_key_absent(&right);
}

// llama.cpp answers a wrong key with 401 and `{"detail":"Invalid API key"}`, not OpenAI's
// `{"error":{...}}`; the client then reports "malformed response" and loses the status.
#[test]
fn real_server_401_with_a_detail_body_is_reported_as_http_401() {
    if llama_url().is_none() {
        return;
    }
    let server = KeyedLlama::start(SECRET_KEY);
    let env = TestEnv::new()
        .env("OPENAI_BASE_URL", &server.url)
        .env("OPENAI_API_KEY", "sk-wrong-key")
        .workflow(
            "agent.yaml",
            &AGENT_IN_SPAN.replace("gpt-4o-mini", "smollm2"),
        );
    let trace = assert_model_failure(&env, "401");
    let generation = of_kind(&trace, "generation")[0];
    assert!(
        generation["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid API key"),
        "the server's message is kept: {generation:#}"
    );
}

#[test]
fn real_judge_grades_eval_cases_with_a_structured_verdict_kept_apart_from_the_usage() {
    let Some(url) = llama_url() else { return };
    let env = real_env(examples(), &url);
    let mut cmd = env.cmd();
    cmd.args([
        "eval",
        "workflows/eval/support-answers.yaml",
        "--dataset",
        "workflows/eval/cases.jsonl",
        "--limit",
        "2",
        "-j",
        "2",
        "--format",
        "json",
    ]);
    let out = output_within(cmd, REAL_DEADLINE);
    // Pass or fail is the model's business; a report is ours.
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let report = parse_json(&out.stdout);
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "{report:#}");
    let choices = [("yes", 1.0), ("partly", 0.5), ("no", 0.0)];
    for case in cases {
        assert_eq!(case["status"], "ok", "{case:#}");
        let helpful = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "helpful")
            .unwrap_or_else(|| panic!("no judge score: {case:#}"));
        assert_eq!(helpful["source"], "judge");
        if helpful["error"].is_null() {
            let label = helpful["label"].as_str().unwrap();
            let value = helpful["value"].as_f64().unwrap();
            assert!(
                choices.contains(&(label, value)),
                "a label of the scale with its value: {helpful:#}"
            );
            assert!(helpful["explanation"].is_string(), "{helpful:#}");
        } else {
            // A reply off the scale is an error score, never a pass.
            assert_eq!(helpful["passed"], false, "{helpful:#}");
        }
        // The judge's call sits under its score span, with tokens of its own, and the trace's
        // usage is the support agent's alone.
        let trace = env.show_json(case["trace_id"].as_str().unwrap());
        let score = find(&trace, "score", "helpful");
        let judged = children(&trace, score);
        assert_eq!(judged.len(), 1, "{trace:#}");
        assert_eq!(judged[0]["kind"], "generation");
        let (judge_in, _) = real_usage(&judged[0]["attributes"]["usage"], "the judge");
        let agent = find(&trace, "agent", "support");
        let (agent_in, _) = real_usage(&agent["attributes"]["usage"], "the support agent");
        assert_eq!(
            trace["usage"]["input_tokens"].as_u64().unwrap(),
            agent_in,
            "the judge's {judge_in} input tokens are not the workflow's"
        );
    }
}
