//! Robustness and security (the README's section of that name): concurrent writers, broken
//! stores and disks, shell injection through model output, secrets, `--no-content`, and file
//! permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A small tmpfs mounted for one test (needs root, as in CI); unmounted on drop.
pub(crate) struct Mount {
    path: PathBuf,
}

impl Mount {
    pub(crate) fn tmpfs(path: &Path, options: &str) -> Option<Mount> {
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Mount {
                path: path.to_path_buf(),
            })
        } else if under_ci() {
            panic!("CI runs as root and must be able to mount a tmpfs for the disk tests");
        } else {
            eprintln!("note: cannot mount a tmpfs here (not root?); skipping");
            None
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

fn offline_steps(n: usize) -> String {
    let mut yaml = String::from(
        "name: Many\nmodel: gpt-4o-mini\nagents: { a: { instructions: Be brief. } }\nsteps:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!("  - {{ agent: a, input: \"question {i}\" }}\n"));
    }
    yaml
}

#[test]
fn sixteen_concurrent_runs_of_fifty_steps_into_one_store_all_complete() {
    let env = TestEnv::new().workflow("many.yaml", &offline_steps(50));
    let children: Vec<_> = (0..16)
        .map(|_| env.spawn(&["-q", "run", "many.yaml", "--offline", "--format", "none"]))
        .collect();
    for child in children {
        let out = wait_within(child, Duration::from_secs(120));
        assert_exit(&out, 0);
    }
    let traces = env.list_json(&["--limit", "100"]);
    assert_eq!(traces.len(), 16);
    for t in &traces {
        assert_eq!(t["status"], "ok");
        let id = t["trace_id"].as_str().unwrap();
        let doc = env.show_json(id);
        assert_eq!(
            doc["spans"].as_array().unwrap().len(),
            100,
            "50 agents + 50 generations"
        );
    }
}

#[test]
fn a_read_only_store_location_is_a_clear_error_and_nothing_is_run() {
    let env = TestEnv::new().workflow(
        "touch.yaml",
        "name: Touch\nsteps:\n  - { id: t, run: [touch, ran.txt] }\n",
    );
    let ro = env.path().join("ro");
    let Some(_mount) = Mount::tmpfs(&ro, "ro,size=1m") else {
        return;
    };
    let store = ro.join("traces.db");
    let out = env.run(&["--store", store.to_str().unwrap(), "run", "touch.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("traces.db"), "names the store: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!env.path().join("ran.txt").exists(), "no step ran");
}

#[test]
fn a_full_disk_is_a_clear_error_not_a_panic() {
    let env = TestEnv::new().workflow(
        "big.yaml",
        // Each step prints 64 KiB, kept as the span's stdout: the store outgrows the disk.
        &format!(
            "name: Big\nsteps:\n{}",
            (0..40)
                .map(|i| format!("  - {{ id: s{i}, run: [sh, -c, \"head -c 65536 /dev/zero | tr '\\\\0' x\"] }}\n"))
                .collect::<String>()
        ),
    );
    let disk = env.path().join("full");
    let Some(_mount) = Mount::tmpfs(&disk, "size=512k") else {
        return;
    };
    let store = disk.join("traces.db");
    let out = env.run(&["--store", store.to_str().unwrap(), "-q", "run", "big.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.to_lowercase().contains("full"),
        "says the disk is full: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // A disk that is full before the run starts: nothing runs.
    let env2 = TestEnv::new().workflow(
        "touch.yaml",
        "name: Touch\nsteps:\n  - { id: t, run: [touch, ran.txt] }\n",
    );
    let disk2 = env2.path().join("full2");
    let Some(_mount2) = Mount::tmpfs(&disk2, "size=64k") else {
        return;
    };
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 1048576 /dev/zero > {}/filler 2>/dev/null",
            disk2.display()
        ))
        .status();
    let store2 = disk2.join("traces.db");
    let out = env2.run(&["--store", store2.to_str().unwrap(), "run", "touch.yaml"]);
    assert_exit(&out, 2);
    assert!(!stderr(&out).contains("panicked"));
    assert!(!env2.path().join("ran.txt").exists(), "no step ran");
}

#[test]
fn a_corrupted_store_and_a_newer_schema_are_clear_errors() {
    let env = TestEnv::sqlite().workflow("w.yaml", "name: W\nsteps:\n  - { run: [true] }\n");
    assert_exit(&env.run(&["run", "w.yaml"]), 0);
    // A newer schema version.
    rusqlite::Connection::open(env.store())
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    for args in [vec!["list"], vec!["run", "w.yaml"], vec!["show", "last"]] {
        let out = env.run(&args);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("999"), "{args:?}: {}", stderr(&out));
    }
    // Garbage where the store should be.
    let env = TestEnv::sqlite().workflow("w.yaml", "name: W\nsteps:\n  - { run: [true] }\n");
    std::fs::create_dir_all(env.store().parent().unwrap()).unwrap();
    std::fs::write(env.store(), vec![0x5a; 8192]).unwrap();
    for args in [vec!["list"], vec!["run", "w.yaml"]] {
        let out = env.run(&args);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains("traces.db") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn model_output_crafted_as_shell_injection_is_never_executed() {
    let payloads = [
        "$(touch pwned-subst)",
        "`touch pwned-backtick`",
        "x; touch pwned-semicolon",
        "x\ntouch pwned-newline",
        "x && touch pwned-and | touch pwned-pipe",
    ];
    for (i, payload) in payloads.iter().enumerate() {
        let yaml = format!(
            r#"name: Injection
model: gpt-4o-mini
agents: {{ a: {{ instructions: Obey. }} }}
steps:
  - id: answer
    agent: a
    input: hi
    mock: {payload:?}
  - id: argv
    run: [printf, "%s", "{{{{ steps.answer.output }}}}"]
  - id: via_env
    run: 'printf "%s" "$ANSWER"'
    env: {{ ANSWER: "{{{{ steps.answer.output }}}}" }}
"#
        );
        let env = TestEnv::new().workflow("inj.yaml", &yaml);
        let (out, lines) = {
            let out = env.run(&["-q", "run", "inj.yaml", "--offline", "--format", "json"]);
            let lines = parse_json_lines(&out.stdout);
            (out, lines)
        };
        assert_exit(&out, 0);
        assert_eq!(lines[0]["outputs"]["argv"], *payload, "case {i}");
        assert_eq!(lines[0]["outputs"]["via_env"], *payload, "case {i}");
        let pwned: Vec<_> = std::fs::read_dir(env.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("pwned"))
            .collect();
        assert!(
            pwned.is_empty(),
            "case {i}: {payload:?} was executed: {pwned:?}"
        );
    }
}

const SECRET_WORKFLOW: &str = r#"name: Secrets
model: gpt-4o-mini
agents: { a: { instructions: "Confidential system prompt PROMPT-MARKER-7" } }
steps:
  - id: ask
    agent: a
    input: "User question QUESTION-MARKER-9"
  - id: echo
    run: [echo, "{{ steps.ask.output }}"]
"#;

/// Every file export of the last trace, as text.
fn all_exports(env: &TestEnv) -> String {
    let mut text = String::new();
    for format in ["otlp-json", "chrome", "openai", "html"] {
        let out = env.run(&["export", "last", "--format", format]);
        assert_exit(&out, 0);
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        text.push_str(&stderr(&out));
    }
    text
}

#[test]
fn api_keys_and_authorization_never_reach_store_exports_logs_or_errors() {
    let env = TestEnv::with_fake().workflow("s.yaml", SECRET_WORKFLOW);
    let out = env.run(&["run", "s.yaml"]);
    assert_exit(&out, 0);
    let seen = env.server().requests();
    let auth = seen[0]
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    assert!(
        auth.contains(SECRET_KEY),
        "the key is sent to the server: {auth}"
    );

    let mut everything = String::from_utf8_lossy(&env.store_bytes()).into_owned();
    everything.push_str(&stdout(&out));
    everything.push_str(&stderr(&out));
    everything.push_str(&all_exports(&env));
    everything.push_str(&stdout(&env.run(&["show", "last", "--format", "json"])));
    assert!(!everything.contains(SECRET_KEY), "the API key leaked");
    assert!(
        !everything.contains("Bearer"),
        "an Authorization header leaked"
    );

    // An error from the server (401) does not echo the key either.
    let env = TestEnv::with_fake().workflow("s.yaml", SECRET_WORKFLOW);
    env.server().set_default(Reply::unauthorized());
    let out = env.run(&["run", "s.yaml"]);
    assert_exit(&out, 1);
    let mut everything = String::from_utf8_lossy(&env.store_bytes()).into_owned();
    everything.push_str(&stdout(&out));
    everything.push_str(&stderr(&out));
    assert!(!everything.contains(SECRET_KEY));
}

/// The first span of a `show --format json` document whose `field` is `value`.
fn span_where<'a>(trace: &'a serde_json::Value, field: &str, value: &str) -> &'a serde_json::Value {
    trace["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s[field] == value))
        .unwrap_or_else(|| panic!("no span with {field} {value:?}: {trace:#}"))
}

/// The store file, the run's own output, every export and `show` of the last trace.
fn everything_written(env: &TestEnv, out: &std::process::Output) -> String {
    let mut everything = String::from_utf8_lossy(&env.store_bytes()).into_owned();
    everything.push_str(&stdout(out));
    everything.push_str(&stderr(out));
    everything.push_str(&all_exports(env));
    everything.push_str(&stdout(&env.run(&["show", "last", "--format", "json"])));
    everything.push_str(&stdout(&env.run(&["show", "last"])));
    everything
}

#[test]
fn a_key_the_server_echoes_in_an_error_body_and_a_header_is_redacted_everywhere() {
    let env = TestEnv::with_fake().workflow("s.yaml", SECRET_WORKFLOW);
    let body = serde_json::json!({"error": {
        "message": format!("bad key: Bearer {SECRET_KEY}"),
        "type": "invalid_request_error",
    }});
    env.server().set_default(Reply::StatusWithHeaders(
        401,
        body.to_string(),
        vec![("x-echoed-key".into(), SECRET_KEY.into())],
    ));
    let out = env.run(&["run", "s.yaml"]);
    assert_exit(&out, 1);
    let everything = everything_written(&env, &out);
    assert!(!everything.contains(SECRET_KEY), "the key leaked");
    assert!(
        stderr(&out).contains("bad key: Bearer [REDACTED]"),
        "the server's message is kept, the key taken out: {}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    let generation = span_where(&trace, "kind", "generation");
    assert!(
        generation["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 401 (invalid_request_error): bad key: Bearer [REDACTED]"),
        "{generation:#}"
    );
}

#[test]
fn a_key_the_server_echoes_in_a_streamed_answer_is_redacted_from_spans_commands_and_output() {
    // The agent keeps a session: its history is stored too.
    let workflow = SECRET_WORKFLOW.replace("    agent: a\n", "    agent: a\n    session: s1\n");
    assert!(workflow.contains("session: s1"));
    let env = TestEnv::with_fake().workflow("s.yaml", &workflow);
    env.server().set_default(Reply::text(
        &format!("your key is {SECRET_KEY}, keep it safe"),
        10,
        5,
    ));
    // --stream shows the answer as it arrives; the key is split over the streamed chunks.
    let out = env.run(&["run", "s.yaml", "--stream", "--format", "json"]);
    assert_exit(&out, 0);
    assert!(
        env.server().requests()[0].body["stream"] == true,
        "the answer was streamed"
    );
    let everything = everything_written(&env, &out);
    assert!(!everything.contains(SECRET_KEY), "the key leaked");
    assert!(
        stderr(&out).contains("your key is [REDACTED], keep it safe"),
        "the streamed text is shown without the key: {}",
        stderr(&out)
    );
    let lines = parse_json_lines(&out.stdout);
    assert_eq!(
        lines[0]["outputs"]["ask"],
        "your key is [REDACTED], keep it safe"
    );
    // The command step got the real answer through its argv (the workflow's data is not
    // changed), but what it printed is recorded without the key.
    let trace = env.show_json("last");
    let echo = span_where(&trace, "name", "echo");
    assert!(
        echo["attributes"]["stdout"]
            .as_str()
            .unwrap()
            .contains("your key is [REDACTED], keep it safe"),
        "{echo:#}"
    );
}

#[test]
fn a_key_in_the_base_urls_query_is_sent_but_never_printed_or_stored() {
    const QUERY_KEY: &str = "qk-QUERY-SECRET-77";
    let env = TestEnv::with_fake().workflow("s.yaml", SECRET_WORKFLOW);
    let url = format!("{}?api-key={QUERY_KEY}", env.server().base_url());
    let env = env.env("OPENAI_BASE_URL", &url);
    let out = env.run(&["run", "s.yaml"]);
    assert_exit(&out, 0);
    let request = &env.server().requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.query, format!("api-key={QUERY_KEY}"));
    let everything = everything_written(&env, &out);
    assert!(!everything.contains(QUERY_KEY), "the query key leaked");

    // A server that cannot be reached is named without the key.
    env.server().set_default(Reply::unauthorized());
    let env = env.env(
        "OPENAI_BASE_URL",
        &format!("http://127.0.0.1:9/v1?api-key={QUERY_KEY}"),
    );
    let out = env.run(&["run", "s.yaml"]);
    assert_exit(&out, 1);
    assert!(!stderr(&out).contains(QUERY_KEY), "{}", stderr(&out));
    assert!(
        !String::from_utf8_lossy(&env.store_bytes()).contains(QUERY_KEY),
        "the query key reached the store"
    );
}

#[test]
fn no_content_keeps_prompts_and_outputs_out_of_the_store_and_every_export() {
    let env = TestEnv::with_fake().workflow("s.yaml", SECRET_WORKFLOW);
    let out = env.run(&["run", "s.yaml", "--no-content"]);
    assert_exit(&out, 0);
    let mut stored = String::from_utf8_lossy(&env.store_bytes()).into_owned();
    stored.push_str(&all_exports(&env));
    for marker in [
        "PROMPT-MARKER-7",
        "QUESTION-MARKER-9",
        "echo: User question",
    ] {
        assert!(!stored.contains(marker), "{marker} was stored or exported");
    }
}

#[test]
fn the_store_is_private_even_under_a_permissive_umask() {
    let env = TestEnv::sqlite().workflow("w.yaml", "name: W\nsteps:\n  - { run: [true] }\n");
    let mut cmd = env.cmd();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(bin())
        .args(["run", "w.yaml"])
        .current_dir(env.path());
    // Same environment as the real command.
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => {
                sh.env(k, v);
            }
            None => {
                sh.env_remove(k);
            }
        }
    }
    let _ = &mut cmd;
    let out = output_within(sh, Duration::from_secs(60));
    assert_exit(&out, 0);
    let file = std::fs::metadata(env.store()).unwrap().permissions().mode() & 0o777;
    let dir = std::fs::metadata(env.store().parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(file, 0o600, "store file mode {file:o}");
    assert_eq!(dir, 0o700, "store directory mode {dir:o}");
}

// -- Issue 13: templates are bounded programs --

/// Ten billion empty iterations: without fuel this renders for hours.
const NESTED_LOOP: &str =
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";

#[test]
fn a_runaway_template_stops_at_its_step_timeout_and_the_trace_is_stored() {
    let env = TestEnv::new().workflow(
        "spin.yaml",
        &format!(
            "name: Spin\nsteps:\n  - id: spin\n    timeout: 1s\n    run: [\"echo\", \"{NESTED_LOOP}\"]\n"
        ),
    );
    let started = Instant::now();
    let out = output_within(
        {
            let mut c = env.cmd();
            c.args(["run", "spin.yaml"]);
            c
        },
        DEADLINE,
    );
    assert_exit(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout acts while the template renders: {:?}",
        started.elapsed()
    );
    assert!(
        stderr(&out).contains("step `spin` timed out after 1s"),
        "{}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    let span = &trace["spans"][0];
    assert_eq!(span["status"], "error", "{trace:#}");
    assert!(
        span["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("timed out")
    );
}

#[test]
fn a_runaway_template_runs_out_of_fuel_with_a_located_error() {
    let env = TestEnv::new().workflow(
        "spin.yaml",
        &format!("name: Spin\nsteps:\n  - id: spin\n    run: [\"echo\", \"{NESTED_LOOP}\"]\n"),
    );
    let out = env.run(&["run", "spin.yaml"]);
    assert_exit(&out, 1);
    let expected = "error: template error in `run[1]` at spin.yaml:4:19: engine ran out of fuel: \
                    the template ran more than 10000000 instructions (a runaway loop?)";
    assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(trace["spans"][0]["status"], "error");
    assert!(
        trace["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("ran out of fuel"),
        "{trace:#}"
    );
}

#[test]
fn sigterm_stops_a_run_while_a_template_renders() {
    // Each iteration builds and drops 50 KB: the render lasts many seconds before its fuel runs
    // out, so only the signal can end the run quickly.
    let env = TestEnv::new().workflow(
        "slow.yaml",
        "name: Slow\nsteps:\n  - run: \"touch started\"\n  - id: render\n    run: [\"echo\", \"{% for i in range(100000) %}{% for j in range(100000) %}{% set _ = 'x' * (50000 + j) %}{% endfor %}{% endfor %}\"]\n",
    );
    let child = env.spawn(&["run", "slow.yaml"]);
    let pid = child.id();
    let deadline = Instant::now() + DEADLINE;
    while !env.path().join("started").exists() {
        assert!(Instant::now() < deadline, "the first step never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let signalled = Instant::now();
    crate::processes::signal(pid, nix::sys::signal::Signal::SIGTERM);
    let out = wait_within(child, DEADLINE);
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "the run stops within a second of SIGTERM: {:?}",
        signalled.elapsed()
    );
    assert_exit(&out, 130);
    assert!(
        stderr(&out).contains("terminated: cancelling the run"),
        "{}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "cancelled", "{trace:#}");
    assert_eq!(spans_of(&trace).len(), 2, "{trace:#}");
}

fn spans_of(trace: &serde_json::Value) -> Vec<serde_json::Value> {
    trace["spans"].as_array().cloned().unwrap_or_default()
}

// -- Issue 13: memory stays bounded --

#[test]
fn a_command_printing_50_mb_keeps_the_last_mib_and_records_the_full_size() {
    let env = TestEnv::new().workflow(
        "loud.yaml",
        r#"
name: Loud
steps:
  - id: loud
    run: ["sh", "-c", "head -c 50000000 /dev/zero | tr '\\0' a; echo; echo END; head -c 3000000 /dev/zero >&2"]
  - id: after
    run: ["echo", "{{ steps.loud.output | length }}"]
"#,
    );
    let out = env.run(&["run", "loud.yaml", "--format", "json"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let loud = &trace["spans"][0];
    assert_eq!(
        loud["attributes"]["stdout_bytes"], 50_000_005,
        "{}",
        loud["attributes"]["stdout_bytes"]
    );
    assert_eq!(loud["attributes"]["stdout_truncated"], true);
    assert_eq!(loud["attributes"]["stderr_bytes"], 3_000_000);
    assert_eq!(loud["attributes"]["stderr_truncated"], true);
    let kept = loud["attributes"]["stdout"].as_str().unwrap_or("");
    assert!(kept.ends_with("\nEND"), "the tail is kept");
    assert_eq!(
        kept.len(),
        (1 << 20) - 1,
        "the last MiB, less the final newline"
    );
    assert_eq!(trace["spans"][1]["attributes"]["stdout"], "1048575");
}

#[test]
fn a_workflow_path_to_dev_zero_or_an_oversized_file_is_a_clear_error() {
    let env = TestEnv::new();
    let out = output_within(
        {
            let mut c = env.cmd();
            c.args(["run", "/dev/zero"]);
            c
        },
        Duration::from_secs(20),
    );
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out).trim(),
        "error: cannot read /dev/zero: the file is over 10 MiB, the limit of a workflow file"
    );
    let big = env.write(
        "big.yaml",
        &format!(
            "name: Big\n# {}\nsteps: [{{ run: [\"true\"] }}]\n",
            "x".repeat(11 << 20)
        ),
    );
    let out = env.run(&["validate", big.to_str().unwrap_or_default()]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("the file is over 10 MiB"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_foreach_over_more_than_ten_thousand_items_is_refused_with_its_location() {
    let env = TestEnv::new().workflow(
        "wide.yaml",
        r#"
name: Wide
steps:
  - id: list
    run: ["sh", "-c", "seq 0 10000 | paste -sd, | sed 's/.*/[&]/'"]
  - foreach: "{{ steps.list.output }}"
    steps:
      - run: ["echo", "{{ item }}"]
"#,
    );
    let out = env.run(&["run", "wide.yaml"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(
            "error: `foreach:` at wide.yaml:6:14 has 10001 items, more than the limit of 10000"
        ),
        "{}",
        stderr(&out)
    );
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(spans_of(&trace).len(), 2, "no iteration ran: {trace:#}");
}

#[test]
fn error_snippets_escape_terminal_controls_and_cut_long_lines() {
    let env = TestEnv::new().workflow(
        "evil.yaml",
        "name: Evil\nsteps:\n  - run: [\"true\"]\n    \"bogus\\e]0;pwned\\a\": x\n",
    );
    let out = env.run(&["validate", "evil.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        !out.stderr.contains(&0x1b) && !out.stderr.contains(&0x07),
        "raw control bytes reach the terminal: {err}"
    );
    assert!(err.contains("bogus\\u{1b}]0;pwned\\u{7}"), "{err}");

    let long = "a".repeat(5_000_000);
    let env = env.workflow(
        "long.yaml",
        &format!("name: Long\nsteps:\n  - {{ run: [\"true\"], name: \"{long}\", bogus: 1 }}\n"),
    );
    let out = env.run(&["validate", "long.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        out.stderr.len() < 2_000,
        "{} bytes of stderr",
        out.stderr.len()
    );
    assert!(
        err.contains("long.yaml:3:5000032: unknown key `bogus`"),
        "{err}"
    );
    assert!(
        err.contains("\", bogus: 1 }"),
        "the window shows the column: {err}"
    );
}

#[test]
fn kill_9_of_run_takes_its_running_command_with_it() {
    let env = TestEnv::new().workflow(
        "slow.yaml",
        "name: Slow\nsteps:\n  - run: \"echo $$ > child.pid; exec sleep 30\"\n",
    );
    let child = env.spawn(&["run", "slow.yaml"]);
    let pid = child.id();
    let child_pid: i32 = crate::processes::wait_for_file(&env.path().join("child.pid"))
        .parse()
        .unwrap_or_default();
    assert!(child_pid > 0);
    crate::processes::signal(pid, nix::sys::signal::Signal::SIGKILL);
    let out = wait_within(child, DEADLINE);
    assert_eq!(out.status.code(), None, "killed by a signal");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !crate::processes::process_is_gone(child_pid) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("the command outlived its run by 3 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_template_doubling_a_string_stops_at_its_memory_budget() {
    // Forty doublings would be a terabyte; before the budget this aborted the process.
    let doubling = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}";
    // Compiling folds constants, so a template can spend memory before it renders.
    let folded = format!(
        "{{{{ [{}] | length }}}}",
        vec!["'x' * 100000000"; 20].join(", ")
    );
    let env = TestEnv::new()
        .workflow(
            "grow.yaml",
            &format!("name: Grow\nsteps:\n  - id: grow\n    run: [\"echo\", \"{doubling}\"]\n"),
        )
        .workflow(
            "fold.yaml",
            &format!("name: Fold\nsteps:\n  - run: [\"echo\", \"{folded}\"]\n"),
        );
    let out = env.run(&["run", "grow.yaml"]);
    assert_exit(&out, 1);
    let expected = "error: template error in `run[1]` at grow.yaml:4:19: invalid operation: the \
                    template needed more than 64 MiB of memory";
    assert!(stderr(&out).contains(expected), "{}", stderr(&out));
    let trace = env.show_json("last");
    assert_eq!(trace["status"], "error");
    assert_eq!(trace["spans"][0]["status"], "error", "{trace:#}");
    assert!(
        trace["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("more than 64 MiB of memory"),
        "{trace:#}"
    );

    let out = env.run(&["validate", "fold.yaml"]);
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains(
            "fold.yaml:3:19: template error: invalid operation: the template needed more than 64 MiB of memory"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn templates_out_of_memory_in_a_loop_stop_piling_up_after_four() {
    let env = TestEnv::new().workflow(
        "many.yaml",
        r#"
name: Many
steps:
  - foreach: "{{ range(8) | list }}"
    steps:
      - continue_on_error: true
        run: ["echo", "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"]
"#,
    );
    let out = env.run(&["run", "many.yaml"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");
    let errors: Vec<String> = spans_of(&trace)
        .iter()
        .filter(|s| s["kind"] == "command")
        .map(|s| s["error"]["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(errors.len(), 8);
    let spent = errors
        .iter()
        .filter(|m| m.contains("more than 64 MiB of memory"))
        .count();
    let refused = errors
        .iter()
        .filter(|m| m.contains("4 templates of this run already ran out of memory"))
        .count();
    assert_eq!((spent, refused), (4, 4), "{errors:#?}");
}
