//! Ids people can type: trace ids are uuid v7s, time-ordered, so the traces of a day share
//! their first digits and a short prefix is never unique. `list` and `show` print a short id
//! (the shortest unique tail, at least six digits), and every command that takes an id takes
//! a unique suffix as well as a prefix; an ambiguous one lists its candidates (exit 2). On
//! either backend (AGENTRACE_TEST_PG): each finds a tail through an index of its own.

use crate::serve::{now_plus, sdk_body};
use crate::support::serve::Served;
use crate::support::*;

/// Same millisecond for the first two, whose tails part at the seventh digit from the end.
const A: &str = "0192aaaa00007000800000000f1a2b3c";
const B: &str = "0192aaaa00007000800000000e1a2b3c";
const C: &str = "0192aaab000070008000000000c0ffee";

fn stored() -> TestEnv {
    let env = TestEnv::new();
    let served = Served::start(&env, &[]);
    for (i, (hex, name)) in [(A, "Alpha"), (B, "Beta"), (C, "Gamma")].iter().enumerate() {
        let at = -30 + 5 * i as i64;
        let r = served.post(
            "/v1/traces/ingest",
            "application/json",
            &sdk_body(hex, name, &now_plus(at), &now_plus(at + 1)),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    served.stop();
    env
}

#[test]
fn list_shows_short_tails_that_every_command_accepts_and_json_keeps_full_ids() {
    let env = stored();
    let out = env.run_with(&["list"], |c| {
        c.env("COLUMNS", "80");
    });
    assert_exit(&out, 0);
    let table = stdout(&out);
    let shorts: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(shorts, ["c0ffee", "e1a2b3c", "f1a2b3c"], "{table}");
    assert!(!table.contains("trace_"), "{table}");
    // JSON keeps full ids.
    let listed = env.list_json(&[]);
    assert_eq!(listed[0]["trace_id"], format!("trace_{C}"));

    for (short, name) in [
        ("c0ffee", "Gamma"),
        ("e1a2b3c", "Beta"),
        ("F1A2B3C", "Alpha"),
    ] {
        let shown = env.show_json(short);
        assert_eq!(shown["name"], name, "{short}");
    }
    // The tree's header prints the short id, then the full one.
    let tree = stdout(&env.run_with(&["show", "c0ffee"], |c| {
        c.env("COLUMNS", "80");
    }));
    assert!(tree.contains(&format!("  c0ffee · trace_{C}\n")), "{tree}");
    assert_exit(&env.run(&["diff", "e1a2b3c", "f1a2b3c"]), 0);
    let export = env.run(&["export", "c0ffee", "--format", "chrome"]);
    assert_exit(&export, 0);
    assert!(!stdout(&export).is_empty());
    assert_exit(&env.run(&["score", "c0ffee", "useful", "pass"]), 0);
    // Prefixes still work, and `trace_` + digits is a prefix only.
    assert_eq!(env.show_json("0192aaab")["name"], "Gamma");
    assert_exit(&env.run(&["show", "trace_c0ffee"]), 2);
    assert_exit(&env.run(&["rm", "c0ffee"]), 0);
    assert_eq!(env.list_json(&[]).len(), 2);
}

#[test]
fn an_ambiguous_suffix_lists_its_candidates_and_exits_2() {
    let env = stored();
    for args in [
        vec!["show", "1a2b3c"],
        vec!["diff", "1a2b3c", "c0ffee"],
        vec!["export", "1a2b3c", "--format", "chrome"],
        vec!["rm", "1a2b3c"],
    ] {
        let out = env.run(&args);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert_eq!(
            err,
            format!(
                "error: the id 1a2b3c is ambiguous: it matches trace_{B}, trace_{A}; give more \
                 of the id\n"
            ),
            "{args:?}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    assert_eq!(env.list_json(&[]).len(), 3, "nothing was deleted");
}

#[test]
fn runs_tree_header_prints_the_short_id_that_show_accepts() {
    let env = TestEnv::new().workflow(
        "w.yaml",
        "name: Short\nsteps:\n  - id: a\n    run: [\"true\"]\n",
    );
    let out = env.run_with(&["run", "w.yaml"], |c| {
        c.env("COLUMNS", "100");
    });
    assert_exit(&out, 0);
    let tree = stdout(&out);
    let header = tree.lines().nth(1).unwrap_or_default();
    let (short, full) = header
        .trim()
        .split_once(" · ")
        .unwrap_or_else(|| panic!("no short id in the run's tree header: {tree}"));
    assert!(
        full.starts_with("trace_") && full.ends_with(short),
        "{header}"
    );
    assert!(short.len() >= 6 && short.len() < 32, "{header}");
    assert_eq!(env.show_json(short)["trace_id"], full);
}
