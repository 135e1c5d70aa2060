//! Validation of workflow files: every problem reported in one pass, each with
//! `file:line:col` and a suggestion where there is one.

use crate::groups::GROUPED;
use crate::shapes::SHAPES;
use crate::support::*;

/// The 1-based line and column of the `nth` (0-based) occurrence of `needle` in `text`.
pub(crate) fn pos(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle:?} #{nth} not in the text"))
        .0;
    let line = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..at].chars().count() + 1)
}

/// Asserts a `FILE:LINE:COL: message` line on stderr at `line` with one of `cols` whose message
/// contains every word of `words` (case-insensitive).
#[track_caller]
pub(crate) fn assert_diagnostic(
    stderr: &str,
    file: &str,
    line: usize,
    cols: &[usize],
    words: &[&str],
) {
    let found = stderr.lines().any(|l| {
        let l = l.strip_prefix("error: ").unwrap_or(l);
        let Some(rest) = l.strip_prefix(&format!("{file}:{line}:")) else {
            return false;
        };
        let Some((col, message)) = rest.split_once(": ") else {
            return false;
        };
        let message = message.to_lowercase();
        col.parse::<usize>().is_ok_and(|c| cols.contains(&c))
            && words.iter().all(|w| message.contains(&w.to_lowercase()))
    });
    assert!(
        found,
        "expected `{file}:{line}:{cols:?}: …{words:?}…` on stderr:\n{stderr}"
    );
}

/// One expected diagnostic: its line is that of `key`; its column is that of `key` or of any of
/// `also` (the value, or the offending text inside it), all on the same line.
struct Problem {
    key: (&'static str, usize),
    also: &'static [(&'static str, usize)],
    words: &'static [&'static str],
}

fn check_problems(yaml: &str, problems: &[Problem]) {
    let env = TestEnv::new().workflow("bad.yaml", yaml);
    let out = env.run(&["validate", "bad.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    for p in problems {
        let (line, key_col) = pos(yaml, p.key.0, p.key.1);
        let mut cols = vec![key_col];
        for &(v, n) in p.also {
            let (vline, vcol) = pos(yaml, v, n);
            assert_eq!(vline, line, "test setup: key and value on one line");
            cols.push(vcol);
        }
        assert_diagnostic(&err, "bad.yaml", line, &cols, p.words);
    }

    let out = env.run(&["run", "bad.yaml", "--offline"]);
    assert_exit(&out, 2);
    assert!(!env.store_exists(), "run on an invalid file writes nothing");
}

#[test]
fn validate_accepts_a_valid_file_and_writes_nothing() {
    let env = TestEnv::new()
        .workflow("ok.yaml", SHAPES)
        .workflow("ok2.yaml", GROUPED);
    let out = env.run(&["validate", "ok.yaml", "ok2.yaml"]);
    assert_exit(&out, 0);
    assert!(!env.store_exists());
}

#[test]
fn validate_reports_an_unknown_key_with_a_suggestion() {
    let yaml = "name: Typo\nmodel: gpt-4o-mini\nagents:\n  a: { instructions: hi }\nsteps:\n  - id: one\n    agent: a\n    inptu: hello\n";
    check_problems(
        yaml,
        &[Problem {
            key: ("inptu", 0),
            also: &[],
            words: &["inptu", "did you mean", "input"],
        }],
    );
}

#[test]
fn validate_reports_a_duplicate_id() {
    let yaml =
        "name: Dup\nsteps:\n  - id: same\n    run: [\"true\"]\n  - id: same\n    run: [\"true\"]\n";
    check_problems(
        yaml,
        &[Problem {
            key: ("id: same", 1),
            also: &[("same", 1)],
            words: &["duplicate", "same"],
        }],
    );
}

#[test]
fn validate_reports_an_unknown_agent() {
    let yaml = "name: Who\nmodel: gpt-4o-mini\nagents:\n  writer: { instructions: hi }\nsteps:\n  - id: one\n    agent: wrtier\n    input: hello\n";
    check_problems(
        yaml,
        &[Problem {
            key: ("agent: wrtier", 0),
            also: &[("wrtier", 0)],
            words: &["agent", "wrtier"],
        }],
    );
}

#[test]
fn validate_reports_a_reference_to_a_step_that_has_not_run_yet() {
    let yaml = "name: Order\nsteps:\n  - id: first\n    run: [\"echo\", \"{{ steps.second.output }}\"]\n  - id: second\n    run: [\"echo\", \"2\"]\n";
    let (line, _) = pos(yaml, "{{ steps.second", 0);
    let env = TestEnv::new().workflow("bad.yaml", yaml);
    let out = env.run(&["validate", "bad.yaml"]);
    assert_exit(&out, 2);
    // The column may point at the run key, the list, the element or the expression.
    let cols: Vec<usize> = (1..=yaml.lines().nth(line - 1).unwrap().len()).collect();
    assert_diagnostic(&stderr(&out), "bad.yaml", line, &cols, &["second"]);
    assert_exit(&env.run(&["run", "bad.yaml", "--offline"]), 2);
    assert!(!env.store_exists());
}

#[test]
fn validate_reports_a_template_syntax_error() {
    let yaml =
        "name: Syntax\nvars: { x: 1 }\nsteps:\n  - id: one\n    run: [\"echo\", \"{{ vars.x \"]\n";
    let (line, _) = pos(yaml, "{{ vars.x", 0);
    let env = TestEnv::new().workflow("bad.yaml", yaml);
    let out = env.run(&["validate", "bad.yaml"]);
    assert_exit(&out, 2);
    let cols: Vec<usize> = (1..=yaml.lines().nth(line - 1).unwrap().len()).collect();
    assert_diagnostic(&stderr(&out), "bad.yaml", line, &cols, &[]);
    assert_exit(&env.run(&["run", "bad.yaml", "--offline"]), 2);
    assert!(!env.store_exists());
}

#[test]
fn validate_rejects_a_template_inside_a_shell_string_and_points_to_env() {
    let yaml = "name: Injection\nvars: { sku: A1 }\nsteps:\n  - id: one\n    run: \"./check.sh {{ vars.sku }}\"\n";
    check_problems(
        yaml,
        &[Problem {
            key: ("run:", 0),
            also: &[("\"./check.sh", 0), ("./check.sh", 0), ("{{", 0)],
            words: &["env:"],
        }],
    );
}

#[test]
fn validate_reports_every_problem_in_one_pass() {
    let yaml = r#"name: Many
model: gpt-4o-mini
agents:
  writer: { instructions: hi }
steps:
  - id: one
    agent: writer
    inptu: hello
  - id: two
    agent: ghost
    input: hi
  - id: two
    run: ["echo", "{{ steps.three.output }}"]
  - id: three
    run: "echo {{ vars.nope }}"
  - id: four
    run: ["echo", "{{ oops "]
"#;
    let env = TestEnv::new().workflow("many.yaml", yaml);
    let out = env.run(&["validate", "many.yaml"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    let any_col =
        |line: usize| -> Vec<usize> { (1..=yaml.lines().nth(line - 1).unwrap().len()).collect() };
    for (needle, nth, words) in [
        ("inptu", 0, &["did you mean"][..]),
        ("ghost", 0, &["ghost"][..]),
        ("id: two", 1, &["two"][..]),
        ("{{ steps.three", 0, &["three"][..]),
        ("\"echo {{ vars.nope", 0, &["env:"][..]),
        ("{{ oops", 0, &[][..]),
    ] {
        let (line, _) = pos(yaml, needle, nth);
        assert_diagnostic(&err, "many.yaml", line, &any_col(line), words);
    }
    // And the whole report, as a person reads it.
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!("every_problem_in_one_pass", err);
    assert_exit(&env.run(&["run", "many.yaml", "--offline"]), 2);
    assert!(!env.store_exists());
}

#[test]
fn a_yaml_syntax_error_is_reported_with_its_location() {
    let yaml = "name: Broken\nsteps:\n  - id: one\n    run: [\"echo\", \"unterminated\n";
    let env = TestEnv::new().workflow("broken.yaml", yaml);
    let out = env.run(&["validate", "broken.yaml"]);
    assert_exit(&out, 2);
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!("yaml_syntax_error", stderr(&out));
    assert!(
        stderr(&out).lines().any(|l| l.contains("broken.yaml:")
            && l.split(':')
                .nth(2)
                .is_some_and(|n| n.trim().parse::<u32>().is_ok())),
        "FILE:LINE:COL on stderr:\n{}",
        stderr(&out)
    );
}

#[test]
fn validate_reports_score_problems_at_their_place() {
    let yaml = r#"name: Scored
model: gpt-4o-mini
tools:
  lookup: { command: [cat] }
agents:
  helper: { tools: [lookup] }
  grader: { model: "" }
steps:
  - id: build
    run: [echo, hi]
    scores:
      - { name: right, equls: hi }
      - { name: both, equals: hi, contains: h }
      - { name: both, contains: i }
      - { name: path, tools_called: [lookup] }
  - id: answer
    agent: helper
    input: hi
    expect: { tool_order: [lookup, lokup] }
scores:
  - name: judged
    judge: { agent: grder, rubric: "Right?", choices: { yes: 1, no: 0 } }
"#;
    let env = TestEnv::new().workflow("scored.yaml", yaml);
    let out = env.run(&["validate", "scored.yaml"]);
    assert_exit(&out, 2);
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!("score_problems", stderr(&out));
    assert_exit(&env.run(&["run", "scored.yaml", "--offline"]), 2);
    assert!(!env.store_exists());
}

/// Issue 17 (point 6): a filter or test the template engine does not have fails the render at
/// run time, after the steps before it ran; validate finds it in every place a template goes.
#[test]
fn validate_reports_unknown_filters_and_tests_wherever_a_template_appears() {
    let yaml = r#"name: Filters
model: gpt-4o-mini
vars: { topic: AI, topics: [a, b] }
metadata: { who: "{{ vars.topic | shout }}" }
agents:
  a:
    instructions: "You research {{ vars.topic | titel }}."
steps:
  - id: first
    run: ["echo", "first"]
  - id: ask
    agent: a
    input: "{% if vars.topic is nosuchtest %}x{% endif %}"
  - id: gate
    if: "vars.topic is not shouting"
    run: ["echo", "{% filter loud %}x{% endfilter %}"]
  - id: each
    foreach: "{{ vars.topics | shuffle }}"
    steps:
      - event: Item
        attributes: { n: "{{ item | lenght }}" }
"#;
    check_problems(
        yaml,
        &[
            Problem {
                key: ("who", 0),
                also: &[("\"{{", 0)],
                words: &["unknown filter `shout`"],
            },
            Problem {
                key: ("instructions", 0),
                also: &[("\"You", 0)],
                words: &["unknown filter `titel`"],
            },
            Problem {
                key: ("input", 0),
                also: &[("\"{%", 0)],
                words: &["unknown test `nosuchtest`"],
            },
            Problem {
                key: ("if:", 0),
                also: &[("\"vars", 0)],
                words: &["unknown test `shouting`"],
            },
            Problem {
                key: ("run:", 1),
                also: &[("\"{% filter", 0)],
                words: &["unknown filter `loud`"],
            },
            Problem {
                key: ("foreach", 0),
                also: &[("\"{{ vars.topics", 0)],
                words: &["unknown filter `shuffle`"],
            },
            Problem {
                key: ("{ n:", 0),
                also: &[("\"{{ item", 0)],
                words: &["unknown filter `lenght`"],
            },
        ],
    );
}

/// The engine's own filters and tests pass, whatever their arguments, and text that only looks
/// like a filter (inside a string literal, outside any tag) is no filter.
#[test]
fn validate_accepts_the_engines_filters_and_tests_and_filter_lookalikes() {
    let env = TestEnv::new().workflow(
        "ok.yaml",
        r#"name: Builtins
vars: { topic: AI, topics: [a, b] }
steps:
  - id: one
    if: "vars.topic is string and vars.topics is not mapping"
    run: ["echo", "{{ vars.topic | upper | replace('A', 'a') }} {{ vars.topics | join(',') }} {{ 'x | nosuch' }} a | nosuch", "{% if vars.topics is sequence %}{{ vars.topics | batch(1) | list | length }}{% endif %}"]
"#,
    );
    let out = env.run(&["validate", "ok.yaml"]);
    assert_exit(&out, 0);
}

/// Issue 17 (point 6): a list or map var given as text (`--var topics=a,b`) is refused before
/// anything runs, by validate and by run alike; JSON of the var's kind is taken.
#[test]
fn a_var_of_the_wrong_kind_for_a_list_or_map_var_is_refused_before_anything_runs() {
    let yaml = r#"name: Topics
vars:
  topics: [rust, go]
  limits: { n: 1 }
steps:
  - id: first
    run: ["echo", "first"]
  - id: each
    foreach: "{{ vars.topics }}"
    steps:
      - run: ["echo", "{{ item }}"]
"#;
    let env = TestEnv::new().workflow("topics.yaml", yaml);
    let (line, col) = pos(yaml, "[rust", 0);
    for args in [
        &["--var", "topics=a,b"][..],
        &["--var", "limits=3"][..],
        &["--var", r#"topics={"a": 1}"#][..],
    ] {
        for command in ["validate", "run"] {
            let out = env.run(&[&[command, "topics.yaml"][..], args].concat());
            assert_exit(&out, 2);
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "one line: {err}");
            assert!(err.contains("must be a JSON"), "{err}");
            if args[1].starts_with("topics") {
                assert!(
                    err.contains(&format!("topics.yaml:{line}:{col}")),
                    "points at the default: {err}"
                );
            }
        }
        assert!(!env.store_exists(), "nothing ran: {args:?}");
    }
    assert!(
        stderr(&env.run(&["validate", "topics.yaml", "--var", "topics=a,b"]))
            .contains(r#"--var 'topics=["a","b"]'"#)
    );
    let out = env.run(&["validate", "topics.yaml", "--var", "topics=[\"a\"]"]);
    assert_exit(&out, 0);
    let out = env.run(&["validate", "topics.yaml", "--var", "nope=1"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("unknown var `nope`"));
    let (out, lines) =
        crate::traces::run_json(&env, "topics.yaml", &["--var", r#"topics=["zig"]"#]);
    assert_exit(&out, 0);
    assert_eq!(lines[0]["outputs"]["each"], serde_json::json!(["zig"]));
}

#[test]
fn validate_reports_mcp_server_problems_at_their_place() {
    let yaml = r#"name: mcp
model: m
tools:
  now: { command: [date] }
mcp_servers:
  time:
    command: [uvx, mcp-server-time]
    allowed_tools: [now, convert_time]
  remote:
    headers: { Authorization: "Bearer ${TOKEN" }
agents:
  a:
    tools: [now]
    mcp: [time, tmie]
steps:
  - { agent: a, input: hi }
"#;
    check_problems(
        yaml,
        &[
            Problem {
                key: ("now", 1),
                also: &[],
                words: &["MCP tool `now`", "workflow tool `now`"],
            },
            Problem {
                key: ("remote", 0),
                also: &[],
                words: &["MCP server `remote` needs `command:`", "or `url:`"],
            },
            Problem {
                key: ("headers", 0),
                also: &[("\"Bearer", 0)],
                words: &["`headers.Authorization` has `${` without a closing `}`"],
            },
            Problem {
                key: ("tmie", 0),
                also: &[],
                words: &["unknown MCP server `tmie`; did you mean `time`?"],
            },
        ],
    );
}

#[test]
fn a_server_with_both_command_and_url_is_refused_by_run_before_anything_starts() {
    let yaml = "name: mcp\nmodel: m\nmcp_servers:\n  s:\n    command: [touch, started]\n    url: http://127.0.0.1:9/mcp\nagents:\n  a: { mcp: [s] }\nsteps:\n  - { agent: a, input: hi }\n";
    let env = TestEnv::new().workflow("bad.yaml", yaml);
    let out = env.run(&["run", "bad.yaml", "--offline"]);
    assert_exit(&out, 2);
    assert_diagnostic(
        &stderr(&out),
        "bad.yaml",
        6,
        &[5],
        &["MCP server `s` has both `command:` and `url:`"],
    );
    assert!(!env.store_exists(), "run on an invalid file writes nothing");
}
