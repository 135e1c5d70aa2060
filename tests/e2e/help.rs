//! `--help`, usage errors and the man pages: what a new user reads first. Each subcommand's own
//! options come apart from the global ones, the store named by `AGENTRACE_STORE` never shows
//! as a required option (nor its value), and `man --dir` writes a page per command for packagers.

use crate::support::*;

/// The options every subcommand takes sit under their own heading, after the command's own.
#[test]
fn help_lists_global_options_under_their_own_heading() {
    let env = TestEnv::new();
    let help_of = |command: &str| {
        let out = env.run_with(&[command, "--help"], |c| {
            c.env("COLUMNS", "100");
        });
        assert_exit(&out, 0);
        stdout(&out)
    };
    insta::assert_snapshot!("man_help", help_of("man"));
    let help = help_of("show");
    let (own, global) = help
        .split_once("\nGlobal options:\n")
        .unwrap_or_else(|| panic!("no Global options heading:\n{help}"));
    for flag in ["--store", "--quiet", "--color"] {
        assert!(global.contains(flag), "{flag} is a global option:\n{help}");
        assert!(!own.contains(flag), "{flag} among show's own:\n{help}");
    }
    assert!(own.contains("--format") && !global.contains("--format"));
    // The top-level help has the heading too.
    let top = stdout(&env.run(&["--help"]));
    assert!(top.contains("\nGlobal options:\n"), "{top}");
}

/// TestEnv sets AGENTRACE_STORE: a usage error must not print `--store <PATH|URL>` as if it
/// had to be given, and `--help` must not print the variable's value (a URL's password).
#[test]
fn a_store_from_the_environment_is_not_shown_as_required_or_printed() {
    let env = TestEnv::new();
    let out = env.run(&["show"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    let usage = err
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_else(|| panic!("no usage line:\n{err}"));
    assert_eq!(usage, "Usage: agentrace show <ID>");
    let secret = "postgres://agent:hunter2@db.example/traces";
    let help = env.run_with(&["show", "--help"], |c| {
        c.env("AGENTRACE_STORE", secret);
    });
    assert_exit(&help, 0);
    assert!(!stdout(&help).contains("hunter2"), "{}", stdout(&help));
    assert!(stdout(&help).contains("[env: AGENTRACE_STORE]"));
}

/// An empty or unusable AGENTRACE_STORE is one line that names the variable, exit 2, and
/// nothing is created.
#[test]
fn an_empty_or_bad_store_variable_is_a_one_line_error_naming_it() {
    let env = TestEnv::new();
    for command in [&["list"][..], &["show", "last"], &["stats"]] {
        let out = env.run_with(command, |c| {
            c.env("AGENTRACE_STORE", "");
        });
        assert_exit(&out, 2);
        assert_eq!(
            stderr(&out),
            "error: AGENTRACE_STORE: the store location is empty: give a path or a postgres:// URL\n",
            "{command:?}"
        );
    }
    let out = env.run_with(&["list"], |c| {
        c.env("AGENTRACE_STORE", "mysql://agent:hunter2@db/traces");
    });
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: AGENTRACE_STORE: unknown store scheme `mysql://` in mysql://agent:***@db/traces: \
         give a path, sqlite:PATH or postgres://USER@HOST:PORT/DB\n"
    );
    // --store wins over the variable, and its own errors name --store.
    let out = env.run_with(&["--store", "", "list"], |c| {
        c.env("AGENTRACE_STORE", "mysql://db/traces");
    });
    assert_exit(&out, 2);
    assert!(stderr(&out).starts_with("error: --store: the store location is empty"));
    // Nothing was created, not even the default store.
    assert!(!env.path().join("xdg").exists() && !env.path().join("store").exists());
}

/// `man --dir DIR` writes agentrace.1 and a page per command, nested ones included, each with
/// its own options; `man [COMMAND…]` prints one of them.
#[test]
fn man_writes_a_page_per_command_with_its_options() {
    let env = TestEnv::new();
    let dir = env.path().join("man");
    let out = env.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "");
    let page = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    // Every command `agentrace --help` lists has its page.
    let help = stdout(&env.run(&["--help"]));
    let commands: Vec<&str> = help
        .split_once("Commands:\n")
        .unwrap()
        .1
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 15, "{commands:?}");
    for command in &commands {
        let text = page(&format!("agentrace-{command}.1"));
        assert!(
            text.contains(&format!(".TH agentrace-{command} 1")),
            "{text}"
        );
        assert!(text.contains(".SH \"GLOBAL OPTIONS\""), "{command}: {text}");
    }
    let show = page("agentrace-show.1");
    for option in [
        "\\-\\-format",
        "\\-\\-depth",
        "\\-\\-content",
        "\\-\\-store",
    ] {
        assert!(
            show.contains(option),
            "agentrace-show.1 lacks {option}:\n{show}"
        );
    }
    assert!(page("agentrace-store-copy.1").contains("SRC"));
    assert!(page("agentrace-eval-compare.1").contains(".TH agentrace-eval-compare 1"));
    // On stdout: agentrace.1 by default, a command's page by its name.
    let top = stdout(&env.run(&["man"]));
    assert_eq!(top, page("agentrace.1"));
    assert!(top.contains("agentrace\\-show(1)"), "{top}");
    assert_eq!(stdout(&env.run(&["man", "show"])), show);
    assert_eq!(
        stdout(&env.run(&["man", "store", "copy"])),
        page("agentrace-store-copy.1")
    );
    let out = env.run(&["man", "nosuch"]);
    assert_exit(&out, 2);
    assert_eq!(
        stderr(&out),
        "error: no command `agentrace nosuch`: `agentrace --help` lists them\n"
    );
}

/// The same holds for AGENTRACE_REMOTE, which `run`, `eval` and `push` read.
#[test]
fn a_remote_from_the_environment_is_not_shown_as_required() {
    let env = TestEnv::new().env("AGENTRACE_REMOTE", "http://127.0.0.1:9");
    let out = env.run(&["run"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("\nUsage: agentrace run <FILE>\n"), "{err}");
}
