//! End-to-end tests of the terminal output: live progress in a
//! pseudo-terminal, plain progress under CI, the waterfall of `show` at fixed widths, trees
//! that fit 80 columns, and colour that follows `--color` and `NO_COLOR`.

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::examples::examples;
use crate::groups::GROUPED;
use crate::shapes::SHAPES;
use crate::support::*;

/// Three command steps of 0.3s, two of them inside a custom span: a stable shape in time.
const SLEEPS: &str = r#"name: Sleeps
steps:
  - span: Phase
    events:
      - { name: Phase started, attributes: { n: 2 } }
    steps:
      - id: first
        run: ["sleep", "0.3"]
      - id: second
        run: ["sleep", "0.3"]
  - id: last
    run: "echo hello from the last step"
"#;

/// Runs `args` with stderr on a pseudo-terminal (100×40) and stdout on a pipe; returns the
/// exit code, stdout, and everything the terminal received.
pub(crate) fn run_in_pty(env: &TestEnv, args: &[&str]) -> (Option<i32>, String, String) {
    let (code, out, term, ()) = run_in_pty_with(env, args, |_| ());
    (code, out, term)
}

/// The terminal of a run under way, for [`run_in_pty_with`].
pub(crate) struct Pty {
    /// The terminal's master end, kept to resize it.
    master: std::os::fd::OwnedFd,
    received: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    /// Resizes the terminal, as a user dragging its window's edge does.
    pub(crate) fn resize(&self, cols: u16, rows: u16) {
        let size = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.master, size).expect("resize the pseudo-terminal");
    }

    /// How many bytes the terminal has received so far.
    pub(crate) fn received(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// [`run_in_pty`], calling `during` with the terminal once the run has started; its result
/// comes back last.
pub(crate) fn run_in_pty_with<R>(
    env: &TestEnv,
    args: &[&str],
    during: impl FnOnce(&Pty) -> R,
) -> (Option<i32>, String, String, R) {
    let size = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("open a pseudo-terminal");
    let mut cmd = env.cmd();
    cmd.args(args)
        .env("TERM", "xterm-256color")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(pty.slave));
    let mut child = cmd.spawn().expect("spawn agentrace");
    // Only the child may hold the terminal's other end, or reading would never see its end.
    drop(cmd);
    let control = Pty {
        master: pty
            .master
            .try_clone()
            .expect("a second handle on the terminal"),
        received: Default::default(),
    };
    let mut master = std::fs::File::from(pty.master);
    let received = control.received.clone();
    let reader = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        // Linux answers EIO once the last holder of the other end has closed it.
        while let Ok(n) = master.read(&mut chunk) {
            if n == 0 {
                break;
            }
            received.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let mut stdout = child.stdout.take().expect("piped stdout");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let result = during(&control);
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for agentrace") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("agentrace did not finish in the pty within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().unwrap_or_default();
    let _ = reader.join();
    let term = std::mem::take(&mut *control.received.lock().unwrap());
    (
        status.code(),
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&term).into_owned(),
        result,
    )
}

/// The text of `term` as its lines: escape sequences dropped, split at `\r` and `\n`.
fn screen_lines(term: &str) -> Vec<String> {
    let escapes = regex::Regex::new("\u{1b}\\[[0-9;?]*[A-Za-z]").unwrap();
    escapes
        .replace_all(term, "")
        .split(['\r', '\n'])
        .map(str::to_string)
        .collect()
}

#[test]
fn on_a_terminal_progress_is_live_and_the_result_still_goes_to_stdout() {
    let env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    let (code, out, term) = run_in_pty(&env, &["run", "sleeps.yaml", "--format", "json"]);
    assert_eq!(code, Some(0), "stdout:\n{out}\nterminal:\n{term}");
    let lines = parse_json_lines(out.as_bytes());
    assert_eq!(lines.len(), 1, "stdout holds the result only:\n{out}");
    assert_eq!(lines[0]["status"], "ok");
    assert!(
        !out.contains('\u{1b}'),
        "no escape codes on the piped stdout"
    );
    assert!(
        term.contains('\u{1b}'),
        "the live view draws with escape codes:\n{term:?}"
    );
    for spinner in ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"] {
        if term.contains(spinner) {
            break;
        }
        assert_ne!(spinner, "⠏", "a spinner turns while a step runs:\n{term:?}");
    }
    for needle in [
        "Phase › first",
        "✓ Phase › first",
        "✓ Phase › second",
        "✓ Phase",
        "✓ last",
        "done",
    ] {
        assert!(
            term.contains(needle),
            "the terminal shows {needle:?}:\n{term:?}"
        );
    }
}

#[test]
fn live_progress_ends_with_a_newline_and_never_pads_its_lines() {
    let env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    let (code, _, term) = run_in_pty(&env, &["run", "sleeps.yaml", "--format", "none"]);
    assert_eq!(code, Some(0), "terminal:\n{term:?}");
    assert!(
        term.ends_with('\n'),
        "the last line ends with a newline:\n{term:?}"
    );
    let last = screen_lines(&term)
        .into_iter()
        .rev()
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    assert!(
        last.starts_with("trace ") && last.contains("  done  "),
        "the last line says the trace is done: {last:?}"
    );
    // Lines end where their text ends: no run of spaces out to the terminal's edge.
    assert!(
        !term.contains("     "),
        "a line padded with spaces:\n{term:?}"
    );
}

/// One step that runs for a while under a long name, so that its live line is wide.
const LONG_STEP: &str = r#"name: Resize
steps:
  - span: A group whose name takes up a good part of a terminal line
    steps:
      - id: a_step_with_a_long_name_too
        run: ["sleep", "1.5"]
"#;

#[test]
fn a_terminal_narrowed_mid_run_gets_no_line_wider_than_its_new_width() {
    let env = TestEnv::new().workflow("resize.yaml", LONG_STEP);
    let (code, _, term, mark) =
        run_in_pty_with(&env, &["run", "resize.yaml", "--format", "none"], |pty| {
            // Let the live view draw at 100 columns, narrow the terminal, and give a draw
            // already under way time to land before marking where the narrow output begins.
            std::thread::sleep(Duration::from_millis(600));
            pty.resize(40, 40);
            std::thread::sleep(Duration::from_millis(150));
            pty.received()
        });
    assert_eq!(code, Some(0), "terminal:\n{term:?}");
    let mut mark = mark.min(term.len());
    while !term.is_char_boundary(mark) {
        mark -= 1;
    }
    let before = screen_lines(&term[..mark]);
    assert!(
        before.iter().any(|l| l.chars().count() > 40),
        "at 100 columns the live line is wider than 40: {before:#?}"
    );
    let after = &term[mark..];
    assert!(
        after.contains("a_step_with_a_long_name_too"),
        "the step is drawn after the resize: {after:?}"
    );
    for line in screen_lines(after) {
        assert!(
            line.chars().count() < 40,
            "a line wider than the narrowed terminal: {line:?}\n{after:?}"
        );
    }
    assert!(after.ends_with('\n'), "{after:?}");
}

#[test]
fn on_a_terminal_the_default_tree_output_still_goes_to_stdout_alone() {
    let env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    let (code, out, term) = run_in_pty(&env, &["run", "sleeps.yaml"]);
    assert_eq!(code, Some(0), "terminal:\n{term}");
    assert!(out.starts_with("Sleeps  ok  "), "{out}");
    assert!(out.contains("custom  Phase  ok"), "{out}");
    assert!(
        !term.contains("custom  Phase  ok"),
        "the tree is not on stderr"
    );
}

#[test]
fn quiet_on_a_terminal_prints_nothing_but_the_result() {
    let env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    let (code, out, term) = run_in_pty(&env, &["-q", "run", "sleeps.yaml", "--format", "json"]);
    assert_eq!(code, Some(0));
    assert_eq!(parse_json_lines(out.as_bytes()).len(), 1);
    assert_eq!(term, "", "--quiet: nothing on the terminal");
}

#[test]
fn ci_on_a_terminal_and_a_pipe_without_ci_both_get_plain_lines() {
    let env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    let (code, _, term) = run_in_pty(&env, &["run", "sleeps.yaml", "--format", "none"]);
    assert_eq!(code, Some(0));
    assert!(term.contains('\u{1b}'));
    // CI=true on a terminal: plain lines.
    let mut cmd_env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    cmd_env = cmd_env.env("CI", "true");
    let (code, _, term) = run_in_pty(&cmd_env, &["run", "sleeps.yaml", "--format", "none"]);
    assert_eq!(code, Some(0));
    assert!(
        !term.contains('\u{1b}'),
        "CI=true: no escape codes:\n{term:?}"
    );
    assert!(term.contains("       ok  command first  "), "{term:?}");

    // A pipe, CI or not: plain lines, stable in format (one snapshot for both).
    let _filters = snapshot_filters(&env).bind_to_scope();
    for ci in [true, false] {
        let out = env.run_with(&["run", "sleeps.yaml", "--format", "none"], |c| {
            if ci {
                c.env("CI", "true");
            }
        });
        assert_exit(&out, 0);
        let err = stderr(&out);
        assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
        insta::assert_snapshot!("plain_progress_lines", err);
    }
}

#[test]
fn a_failed_step_under_ci_says_why_on_its_line() {
    let env = TestEnv::new().workflow(
        "fails.yaml",
        "name: Fails\nsteps:\n  - id: boom\n    run: \"echo broken >&2; exit 3\"\n",
    );
    let out = env.run_with(&["run", "fails.yaml", "--format", "none"], |c| {
        c.env("CI", "true");
    });
    assert_exit(&out, 1);
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!(stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// The waterfall of `show`

/// The name column of each line (the bars cut off, `  *` kept for the critical path), for a
/// snapshot; bar columns vary with timing and are checked loosely apart.
fn names(tree: &str, width: usize) -> String {
    let bar = (width / 4).clamp(16, 60);
    let name = width - bar - 2;
    tree.lines()
        .map(|l| {
            let cut: String = l.chars().take(name).collect();
            let mark = if l.chars().nth(name) == Some('*') {
                "  *"
            } else {
                ""
            };
            format!("{}{mark}", cut.trim_end())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bar column of the line that holds `needle`.
#[track_caller]
fn bar_of(tree: &str, width: usize, needle: &str) -> String {
    let bar = (width / 4).clamp(16, 60);
    let line = tree
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}:\n{tree}"));
    assert_eq!(
        line.chars().count(),
        width,
        "a bar line fills the width: {line:?}"
    );
    line.chars().skip(width - bar).collect()
}

fn recorded() -> TestEnv {
    let env = TestEnv::new().workflow("sleeps.yaml", SLEEPS);
    assert_exit(&env.run(&["run", "sleeps.yaml", "--format", "none"]), 0);
    env
}

fn show(env: &TestEnv, width: usize, args: &[&str]) -> String {
    let mut all = vec!["show"];
    all.extend_from_slice(args);
    let out = env.run_with(&all, |c| {
        c.env("COLUMNS", width.to_string());
    });
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert_fits(&text, width);
    assert!(!text.contains('\u{1b}'));
    text
}

/// No line of `text` is wider than `width`.
fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "wider than {width}: {} columns: {line:?}\n{text}",
            line.chars().count()
        );
    }
}

#[test]
fn show_draws_a_waterfall_at_80_columns_with_the_critical_path_marked() {
    // The trace ends when `last` ends: it alone is the critical path.
    let env = recorded();
    let _filters = snapshot_filters(&env).bind_to_scope();
    let tree = show(&env, 80, &["last"]);
    insta::assert_snapshot!("waterfall_names", names(&tree, 80));
    // first runs in the first half of the axis, second in the second half, last at the end.
    let first = bar_of(&tree, 80, "command  first");
    let second = bar_of(&tree, 80, "command  second");
    let last = bar_of(&tree, 80, "command  last");
    let phase = bar_of(&tree, 80, "custom  Phase");
    let starts = |b: &str| b.chars().position(|c| c == '█').unwrap();
    assert!(first.starts_with('█'), "{first}");
    assert!((6..=11).contains(&starts(&second)), "{second}");
    assert!(last.ends_with('█'), "{last}");
    assert!(phase.starts_with("████████████"), "{phase}");
    assert!(
        tree.lines().nth(2).unwrap().trim_start().starts_with("0 "),
        "the axis: {tree}"
    );
}

#[test]
fn show_at_120_and_60_columns_and_without_bars_below() {
    let env = recorded();
    let _filters = snapshot_filters(&env).bind_to_scope();
    let wide = show(&env, 120, &["last"]);
    // The same names as at 80 columns: one snapshot.
    insta::assert_snapshot!("waterfall_names", names(&wide, 120));
    assert_eq!(bar_of(&wide, 120, "command  first").chars().count(), 30);
    let narrow = show(&env, 60, &["last"]);
    assert_eq!(bar_of(&narrow, 60, "command  first").chars().count(), 16);
    let bare = show(&env, 59, &["last"]);
    insta::assert_snapshot!("tree_below_60_columns", bare);
}

#[test]
fn show_depth_content_and_no_events() {
    let env = recorded();
    let _filters = snapshot_filters(&env).bind_to_scope();
    let shallow = show(&env, 59, &["last", "--depth", "1"]);
    insta::assert_snapshot!("tree_depth_1", shallow);
    let quiet = show(&env, 59, &["last", "--no-events"]);
    assert!(!quiet.contains("Phase started"), "{quiet}");
    let content = show(&env, 59, &["last", "--content"]);
    insta::assert_snapshot!("tree_with_content", content);
    assert_exit(&env.run(&["show", "last", "--depth", "0"]), 2);
}

#[test]
fn show_group_prints_a_conversation_in_order_with_its_gaps() {
    let env = TestEnv::new()
        .workflow(
            "one.yaml",
            "name: One\nsteps:\n  - id: a\n    run: [\"true\"]\n",
        )
        .workflow(
            "two.yaml",
            "name: Two\nsteps:\n  - id: b\n    run: [\"true\"]\n",
        );
    for file in ["one.yaml", "two.yaml"] {
        assert_exit(
            &env.run(&["run", file, "--group", "conv_1", "--format", "none"]),
            0,
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    // The first trace, the gap, the second trace.
    let out = show(&env, 59, &["--group", "conv_1"]);
    let _filters = snapshot_filters(&env).bind_to_scope();
    insta::assert_snapshot!("group_conversation", out);
    let json = env.json(&["show", "--group", "conv_1", "--format", "json"]);
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    assert_exit(&env.run(&["show", "--group", "nobody"]), 2);
    assert_exit(&env.run(&["show"]), 2);
}

#[test]
fn list_fits_80_columns_with_ids_that_show_accepts() {
    let env = TestEnv::new();
    env.write(
        "w.yaml",
        "name: A workflow with a rather long descriptive name\ngroup_id: conversation-0042\nsteps:\n  - run: [\"true\"]\n",
    );
    for _ in 0..3 {
        assert_exit(
            &env.run(&["run", "w.yaml", "--offline", "--format", "none"]),
            0,
        );
    }
    let out = env.run_with(&["list"], |c| {
        c.env("COLUMNS", "80");
    });
    assert_exit(&out, 0);
    let table = stdout(&out);
    let _filters = table_filters(&env).bind_to_scope();
    insta::assert_snapshot!("list_at_80_columns", table);
    for line in table.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let ids: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 3);
    let full = env.list_json(&[]);
    for (short, trace) in ids.iter().zip(&full) {
        assert!(short.len() < 10, "a short id: {short}");
        let shown = env.show_json(short);
        assert_eq!(shown["trace_id"], trace["trace_id"], "{short}");
    }
    // With room too, the ids are short: the full ones are in JSON.
    let wide = env.run_with(&["list"], |c| {
        c.env("COLUMNS", "200");
    });
    assert!(!stdout(&wide).contains("trace_"));
}

#[test]
fn trees_fit_80_columns() {
    let env = examples();
    for file in [
        "workflows/research.yaml",
        "workflows/order.yaml",
        "workflows/support.yaml",
        "workflows/document.yaml",
    ] {
        let out = env.run_with(&["run", file, "--offline"], |c| {
            c.env("COLUMNS", "80");
        });
        assert_exit(&out, 0);
        for line in stdout(&out).lines() {
            assert!(
                line.chars().count() <= 80,
                "{file}: a tree line is wider than 80 columns:\n{line}"
            );
        }
    }
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let env = TestEnv::new().workflow("grouped.yaml", GROUPED);
    assert_exit(
        &env.run(&["run", "grouped.yaml", "--offline", "--format", "none"]),
        0,
    );
    let plain = env.run(&["show", "last"]);
    assert!(!stdout(&plain).contains('\u{1b}'), "NO_COLOR=1: no escapes");
    let never = env.run_with(&["--color", "never", "show", "last"], |c| {
        c.env_remove("NO_COLOR");
    });
    assert!(!stdout(&never).contains('\u{1b}'));
    let always = env.run_with(&["--color", "always", "show", "last"], |c| {
        c.env_remove("NO_COLOR");
    });
    assert_exit(&always, 0);
    assert!(
        stdout(&always).contains('\u{1b}'),
        "--color always colours even into a pipe"
    );
    assert_eq!(
        strip_ansi(&stdout(&always)),
        stdout(&plain),
        "colour changes nothing but colour"
    );
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn under_ci_progress_is_plain_lines_on_stderr_and_stdout_is_only_the_result() {
    let env = TestEnv::new().workflow("nested.yaml", SHAPES);
    let out = env.run_with(
        &["run", "nested.yaml", "--offline", "--format", "json"],
        |c| {
            c.env("CI", "true");
        },
    );
    assert_exit(&out, 0);
    assert_eq!(
        parse_json_lines(&out.stdout).len(),
        1,
        "stdout holds the JSON line only"
    );
    let err = stderr(&out);
    assert!(
        !err.contains('\r') && !err.contains('\u{1b}'),
        "no spinner or escape codes under CI:\n{err:?}"
    );
}

/// Long names everywhere: spans nested three deep, a scorer, a dataset and experiments.
const WIDE: &str = r#"name: A workflow whose name is long enough to crowd any table it is in
group_id: conversation-with-a-customer-about-an-order-0042
vars:
  word: hello
steps:
  - span: The outer phase of the work with a long name
    steps:
      - span: An inner phase whose name is long as well
        steps:
          - id: say
            name: The step that says the word it was given by the case
            run: ["sh", "-c", "echo {{ vars.word }}"]
          - event: gen_ai.evaluation.result
            attributes:
              gen_ai.evaluation.name: the_answer_holds_the_word_good_somewhere
              gen_ai.evaluation.score.value: "{{ 1 if 'good' in steps.say.output else 0 }}"
              agentrace.evaluation.passed: "{{ 'good' in steps.say.output }}"
"#;

#[test]
fn every_table_fits_80_and_60_columns_names_first() {
    let env = TestEnv::new().workflow("wide.yaml", WIDE);
    env.write(
        "a-dataset-of-cases-with-a-long-name.jsonl",
        "{\"id\": \"a-case-with-a-long-identifier-1\", \"word\": \"good day\"}\n\
         {\"id\": \"a-case-with-a-long-identifier-2\", \"word\": \"bad day\"}\n",
    );
    assert_exit(&env.run(&["run", "wide.yaml", "--format", "none"]), 0);
    assert_exit(
        &env.run(&["run", "wide.yaml", "--format", "none", "--var", "word=good"]),
        0,
    );
    let eval = |name: &str| {
        vec![
            "eval",
            "wide.yaml",
            "--dataset",
            "a-dataset-of-cases-with-a-long-name.jsonl",
            "--experiment",
            name,
            "--min-pass-rate",
            "0",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let first = "the-baseline-experiment-with-a-long-name";
    let second = "the-candidate-experiment-with-a-long-name";
    let quiet: Vec<String> = eval(first)
        .into_iter()
        .chain(["--format".into(), "none".into()])
        .collect();
    assert_exit(
        &env.run(&quiet.iter().map(String::as_str).collect::<Vec<_>>()),
        0,
    );
    let ids: Vec<String> = env
        .list_json(&["--limit", "2"])
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_string())
        .collect();
    let commands: Vec<Vec<String>> = vec![
        vec!["list".into()],
        vec!["list".into(), "--experiments".into()],
        vec!["stats".into()],
        vec!["diff".into(), ids[0].clone(), ids[1].clone()],
        vec!["show".into(), first.into()],
        eval(second),
        vec!["eval".into(), "compare".into(), first.into(), second.into()],
    ];
    let _filters = table_filters(&env).bind_to_scope();
    for width in [80, 60] {
        for args in &commands {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = env.run_with(&args, |c| {
                c.env("COLUMNS", width.to_string());
            });
            assert_exit(&out, 0);
            let text = stdout(&out);
            assert_fits(&text, width);
            // The tables whose cut columns do not depend on how long the steps took (the
            // others are snapshotted at both widths in src/render).
            if width == 80 && args[0] == "list" {
                insta::assert_snapshot!(format!("wide_{}_at_80_columns", args.join("_")), text);
            }
        }
    }
}
