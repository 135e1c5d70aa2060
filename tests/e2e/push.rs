//! Runners that push (`AGENTRACE_REMOTE`, `--remote`): `run` and `eval` record through a real
//! `agentrace serve` over HTTP, the trace reads back from the server's store as a local run's
//! would, a server that cannot be reached (or refuses the token) never fails the run, and the
//! spool it leaves is sent once by `agentrace push` or by the next run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::serve::Served;
use crate::support::*;

const TOKEN: &str = "push-test-token-0123456789";

/// Every kind of record a run makes: an agent with a tool call and a handoff (generations with
/// usage), a span with an event, a score, metadata and a group; the last step fails, so the
/// trace's error is the run's own.
const RICH: &str = r#"
name: Pushed
model: gpt-4o-mini
group_id: conv-push
metadata: { team: ops }
tools:
  lookup:
    command: ["echo", "found"]
agents:
  helper:
    instructions: Help.
    tools: [lookup]
    handoffs: [expert]
  expert:
    instructions: Expert.
steps:
  - span: Desk
    events:
      - { name: ticket received, attributes: { priority: 2, tags: [a, b] } }
    steps:
      - id: ask
        agent: helper
        input: Where is order 7?
        mock:
          - tool_calls: [{ name: lookup, arguments: { id: 7 } }]
          - handoff: expert
          - Shipped.
        scores:
          - { name: shipped, contains: Shipped }
  - id: data
    run: ["printf", '{"answer": 42}']
  - id: broken
    run: ["sh", "-c", "echo oops >&2; exit 3"]
"#;

const QUICK: &str = "name: Quick\nsteps:\n  - id: hello\n    run: echo hello\n";

fn rich_env() -> TestEnv {
    TestEnv::new()
        .workflow("rich.yaml", RICH)
        .workflow("quick.yaml", QUICK)
        .env("TRACEPARENT", "")
        .env("AGENTRACE_REMOTE", "")
        .env("AGENTRACE_TOKEN", "")
}

/// The server's own store.
fn server_store(env: &TestEnv) -> PathBuf {
    env.path().join("server").join("traces.db")
}

fn serve(env: &TestEnv) -> Served {
    let store = server_store(env);
    Served::start(env, &["--store", store.to_str().unwrap(), "--token", TOKEN])
}

/// `show ID --format json` against the server's store.
fn server_show(env: &TestEnv, id: &str) -> Value {
    let store = server_store(env);
    env.json(&[
        "--store",
        store.to_str().unwrap(),
        "show",
        id,
        "--format",
        "json",
    ])
}

fn server_list(env: &TestEnv) -> Vec<Value> {
    let store = server_store(env);
    match env.json(&[
        "--store",
        store.to_str().unwrap(),
        "list",
        "--format",
        "json",
    ]) {
        Value::Array(items) => items,
        other => panic!("not a list: {other}"),
    }
}

/// Runs `args` pushing to `url` with `token`.
fn pushing(env: &TestEnv, args: &[&str], url: &str, token: &str) -> std::process::Output {
    let (url, token) = (url.to_string(), token.to_string());
    env.run_with(args, move |c| {
        c.env("AGENTRACE_REMOTE", url).env("AGENTRACE_TOKEN", token);
    })
}

/// An address where nothing listens.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn spool(env: &TestEnv) -> PathBuf {
    env.path().join("xdg/agentrace/spool.jsonl")
}

/// What two runs of one workflow may differ in besides ids and times: the processes' pids and
/// the durations (`p50_ms`, …).
fn without_pids(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "pid")
                .map(|(k, v)| {
                    if k.ends_with("_ms") && v.is_number() {
                        (k.clone(), Value::String("[DUR]".into()))
                    } else {
                        (k.clone(), without_pids(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_pids).collect()),
        other => other.clone(),
    }
}

fn span_count(env: &TestEnv) -> usize {
    server_list(env)
        .iter()
        .map(|t| {
            server_show(env, t["trace_id"].as_str().unwrap())["spans"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum()
}

#[test]
fn a_pushed_run_reads_back_from_the_server_exactly_as_a_local_run_does() {
    let env = rich_env();
    let served = serve(&env);
    // The same workflow run locally, for the comparison.
    let local = env.run(&["run", "rich.yaml", "--offline", "--format", "json"]);
    assert_exit(&local, 1);
    let local = env.show_json("last");

    let out = env.run_with(
        &[
            "run",
            "rich.yaml",
            "--offline",
            "--format",
            "json",
            "--remote",
            &served.url(""),
        ],
        |c| {
            c.env("AGENTRACE_TOKEN", TOKEN);
        },
    );
    assert_exit(&out, 1);
    assert!(
        !stderr(&out).contains("warning"),
        "nothing to warn about: {}",
        stderr(&out)
    );
    let line = parse_json(&out.stdout);
    let id = line["trace_id"].as_str().unwrap();
    let pushed = server_show(&env, id);

    // Span for span, event for event, with the trace's status, error, group, metadata, usage
    // and cost: what the local run stored.
    assert_eq!(
        redact_json(&without_pids(&pushed)),
        redact_json(&without_pids(&local))
    );
    assert!(pushed["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(pushed["error"]["message"], local["error"]["message"]);
    // The times are the run's own, to the microsecond.
    for key in [
        "duration_ms",
        "usage",
        "cost_usd",
        "error",
        "status",
        "group_id",
    ] {
        assert_eq!(pushed[key], line[key], "{key}");
    }
    // The runner's own store got only the local run.
    assert_eq!(env.list_json(&[]).len(), 1);
}

#[test]
fn a_pushing_run_is_on_the_server_while_it_runs() {
    let env = TestEnv::new()
        .workflow(
            "slow.yaml",
            "name: Slow\nsteps:\n  - id: first\n    run: echo first\n  - id: wait\n    run: sleep 4\n",
        )
        .env("TRACEPARENT", "")
        .env("AGENTRACE_REMOTE", "")
        .env("AGENTRACE_TOKEN", TOKEN);
    let served = serve(&env);
    let url = served.url("");
    let mut cmd = env.cmd();
    cmd.args(["run", "slow.yaml", "--format", "none", "--remote", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let auth = format!("Bearer {TOKEN}");
    let get = |path: &str| served.request("GET", path, &[("Authorization", &auth)], &[]);
    let seen = loop {
        let list = get("/api/traces");
        assert_eq!(list.status, 200, "{}", list.text());
        if let Some(id) = list.json()[0]["trace_id"].as_str() {
            let doc = get(&format!("/api/traces/{id}")).json();
            if doc["spans"].as_array().is_some_and(|s| s.len() >= 2) {
                break doc;
            }
        }
        assert!(Instant::now() < deadline, "the run never showed up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(seen["spans"][1]["name"], "wait", "{seen:#}");
    assert_eq!(seen["spans"][1]["status"], "running", "{seen:#}");
    assert_eq!(seen["status"], "running", "{seen:#}");
    let out = wait_within(child, Duration::from_secs(30));
    assert_exit(&out, 0);
    let id = seen["trace_id"].as_str().unwrap();
    let done = server_show(&env, id);
    assert_eq!(done["status"], "ok");
    assert_eq!(done["spans"].as_array().unwrap().len(), 2);
}

#[test]
fn with_the_server_down_the_run_spools_and_push_sends_it_once() {
    let env = rich_env();
    let down = nowhere();
    let first = pushing(
        &env,
        &["run", "quick.yaml", "--format", "json"],
        &down,
        TOKEN,
    );
    assert_exit(&first, 0);
    let err = stderr(&first);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "one line, once: {err}");
    assert!(
        warnings[0].contains("cannot be reached") && warnings[0].contains("spool.jsonl"),
        "{err}"
    );
    let second = pushing(&env, &["run", "rich.yaml", "--offline"], &down, TOKEN);
    assert_exit(&second, 1);
    assert!(!env.store().exists(), "the runner keeps no store");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(spool(&env)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let kept = std::fs::read(spool(&env)).unwrap();
    assert!(!String::from_utf8_lossy(&kept).contains(TOKEN));

    // Nothing to send it to: push says what is left and fails.
    let out = pushing(&env, &["push"], &down, TOKEN);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("left in"), "{}", stderr(&out));

    let served = serve(&env);
    let out = pushing(&env, &["push"], &served.url(""), TOKEN);
    assert_exit(&out, 0);
    assert!(stdout(&out).starts_with("pushed "), "{}", stdout(&out));
    assert!(!spool(&env).exists(), "the spool is gone once sent");
    let traces = server_list(&env);
    assert_eq!(traces.len(), 2);
    let id = parse_json(&first.stdout)["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let quick = server_show(&env, &id);
    assert_eq!(quick["status"], "ok");
    assert_eq!(quick["spans"].as_array().unwrap().len(), 1);
    let rich = traces.iter().find(|t| t["name"] == "Pushed").unwrap();
    let rich = server_show(&env, rich["trace_id"].as_str().unwrap());
    assert_eq!(rich["status"], "error");
    assert_eq!(rich["group_id"], "conv-push");
    let spans = span_count(&env);

    // A second push has nothing to send.
    let out = pushing(&env, &["push"], &served.url(""), TOKEN);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("nothing to push"), "{}", stdout(&out));

    // The same records sent again (a push killed before it could rewrite the spool) are
    // stored once.
    std::fs::write(spool(&env), &kept).unwrap();
    let out = pushing(&env, &["push"], &served.url(""), TOKEN);
    assert_exit(&out, 0);
    assert_eq!(server_list(&env).len(), 2);
    assert_eq!(span_count(&env), spans);
    assert_eq!(server_show(&env, &id), quick);
}

#[test]
fn the_next_run_sends_what_the_spool_kept() {
    let env = rich_env();
    let out = pushing(&env, &["run", "quick.yaml"], &nowhere(), TOKEN);
    assert_exit(&out, 0);
    assert!(spool(&env).exists());
    let served = serve(&env);
    let out = pushing(&env, &["run", "quick.yaml"], &served.url(""), TOKEN);
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    assert!(!spool(&env).exists());
    let traces = server_list(&env);
    assert_eq!(traces.len(), 2);
    assert!(traces.iter().all(|t| t["status"] == "ok"), "{traces:#?}");
}

#[test]
fn a_wrong_token_keeps_the_run_in_the_spool_and_never_shows_a_token() {
    let env = rich_env();
    let served = serve(&env);
    let wrong = "wrong-token-abcdefghijklmnop";
    let out = pushing(&env, &["run", "quick.yaml"], &served.url(""), wrong);
    assert_exit(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("refused the token"), "{err}");
    assert!(err.contains("AGENTRACE_TOKEN"), "{err}");
    assert!(!err.contains(wrong) && !err.contains(TOKEN), "{err}");
    assert!(spool(&env).exists());
    assert!(server_list(&env).is_empty());

    let out = pushing(&env, &["push"], &served.url(""), wrong);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("refused the token"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(wrong));

    // No token at all: said so.
    let out = pushing(&env, &["run", "quick.yaml"], &served.url(""), "");
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("needs a token"), "{}", stderr(&out));

    let out = pushing(&env, &["push"], &served.url(""), TOKEN);
    assert_exit(&out, 0);
    assert_eq!(server_list(&env).len(), 2);
}

#[test]
fn a_nested_run_under_the_same_remote_gets_its_own_trace_linked_to_the_step() {
    let outer = format!(
        "name: Outer\nsteps:\n  - id: nested\n    run: [\"{}\", \"run\", \"quick.yaml\", \"--format\", \"json\", \"--quiet\"]\n",
        bin().display()
    );
    let env = rich_env().workflow("outer.yaml", &outer);
    let served = serve(&env);
    let out = pushing(
        &env,
        &["run", "outer.yaml", "--format", "json"],
        &served.url(""),
        TOKEN,
    );
    assert_exit(&out, 0);
    let outer_id = parse_json(&out.stdout)["trace_id"]
        .as_str()
        .unwrap()
        .to_string();
    let outer = server_show(&env, &outer_id);
    let step = &outer["spans"][0];
    let inner_line = parse_json(step["attributes"]["stdout"].as_str().unwrap().as_bytes());
    let inner_id = inner_line["trace_id"].as_str().unwrap();
    assert_ne!(inner_id, outer_id);
    let inner = server_show(&env, inner_id);
    let bare = |v: &Value| v.as_str().unwrap().split('_').nth(1).unwrap().to_string();
    assert_eq!(
        inner["metadata"]["agentrace.traceparent"],
        format!(
            "00-{}-{}-01",
            bare(&outer["trace_id"]),
            bare(&step["span_id"])
        )
    );
    assert_eq!(inner["status"], "ok");
    assert_eq!(server_list(&env).len(), 2);
}

const SCORED: &str = r#"name: Scored
vars:
  word: hello
steps:
  - id: say
    run: ["echo", "{{ vars.word }}"]
    scores:
      - { name: good, contains: good }
"#;

/// Two cases of `scored.yaml`, one failing.
fn scored_env() -> TestEnv {
    let env = rich_env().workflow("scored.yaml", SCORED);
    env.write(
        "cases.jsonl",
        "{\"id\": \"a\", \"word\": \"good day\"}\n{\"id\": \"b\", \"word\": \"bad day\"}\n",
    );
    env
}

/// The experiment `nightly` of two cases, its report as JSON.
const EVAL: &[&str] = &[
    "eval",
    "scored.yaml",
    "--dataset",
    "cases.jsonl",
    "--experiment",
    "nightly",
    "--format",
    "json",
];

/// `show nightly --format json` against the server's store.
fn server_experiment(env: &TestEnv) -> Value {
    server_show(env, "nightly")
}

#[test]
fn eval_with_a_remote_records_the_experiment_on_the_server() {
    let env = scored_env();
    let served = serve(&env);
    let local = env.run(EVAL);
    assert_exit(&local, 1);
    let url = served.url("");
    let mut remote_args = EVAL.to_vec();
    remote_args.extend(["--remote", &url]);
    let out = env.run_with(&remote_args, |c| {
        c.env("AGENTRACE_TOKEN", TOKEN);
    });
    assert_exit(&out, 1);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // The report is the same as a local eval's.
    let strip = |v: &Value| {
        let mut v = redact_json(&without_pids(v));
        v.as_object_mut().unwrap().remove("experiment");
        v
    };
    assert_eq!(
        strip(&parse_json(&out.stdout)),
        strip(&parse_json(&local.stdout))
    );
    // The server has the experiment, its runs and their traces: its report is the local one.
    let on_server = server_experiment(&env);
    // The same experiment: the server's report of it is the one the pushing eval printed.
    assert_eq!(on_server, parse_json(&out.stdout));
    assert_eq!(server_list(&env).len(), 2);
    // Only the local eval's traces are in the runner's store.
    assert_eq!(env.list_json(&[]).len(), 2);
}

#[test]
fn an_eval_with_the_server_down_reports_as_usual_and_push_delivers_its_experiment() {
    let env = scored_env();
    let out = pushing(&env, EVAL, &nowhere(), TOKEN);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert_eq!(err.matches("warning").count(), 1, "{err}");
    let report = parse_json(&out.stdout);
    assert_eq!(report["summary"]["passed"], 1);

    let served = serve(&env);
    let pushed = pushing(&env, &["push"], &served.url(""), TOKEN);
    assert_exit(&pushed, 0);
    let on_server = server_experiment(&env);
    assert_eq!(on_server, report);
}

#[test]
fn bad_remote_input_is_a_usage_error_that_writes_nothing() {
    let env = rich_env();
    let out = pushing(&env, &["run", "quick.yaml"], "ftp://example.org", TOKEN);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("not an http:// or https:// URL"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["push"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("AGENTRACE_REMOTE"),
        "{}",
        stderr(&out)
    );
    let out = pushing(
        &env,
        &["eval", "quick.yaml", "--resume", "x"],
        "http://127.0.0.1:9",
        TOKEN,
    );
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    assert!(!env.store().exists() && !spool(&env).exists());
}
