//! `list`: the table of traces and its filters (group, workflow, status, metadata, since,
//! limit).

use crate::groups::GROUPED;
use crate::support::*;
use serde_json::{Value, json};

#[test]
fn list_filters_by_group_workflow_status_meta_since_and_limit() {
    let env = TestEnv::new().workflow("grouped.yaml", GROUPED).workflow(
        "failing.yaml",
        "name: Failing\nsteps:\n  - id: no\n    run: [\"false\"]\n",
    );
    assert_exit(
        &env.run(&["run", "grouped.yaml", "--offline", "--format", "none"]),
        0,
    );
    assert_exit(
        &env.run(&["run", "failing.yaml", "--offline", "--format", "none"]),
        1,
    );
    assert_exit(
        &env.run(&[
            "run",
            "grouped.yaml",
            "--offline",
            "--format",
            "none",
            "--group",
            "g_other",
            "--meta",
            "team=core",
        ]),
        0,
    );

    let names = |filters: &[&str]| -> Vec<(String, String)> {
        env.list_json(filters)
            .iter()
            .map(|t| {
                (
                    t["workflow"].as_str().unwrap_or_default().to_string(),
                    t["group_id"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect()
    };
    let pair = |w: &str, g: &str| (w.to_string(), g.to_string());

    assert_eq!(
        names(&[]),
        vec![
            pair("Grouped", "g_other"),
            pair("Failing", "-"),
            pair("Grouped", "conv_12345")
        ],
        "newest first"
    );
    assert_eq!(names(&["--workflow", "Grouped"]).len(), 2);
    assert_eq!(names(&["--status", "error"]), vec![pair("Failing", "-")]);
    assert_eq!(names(&["--status", "ok"]).len(), 2);
    assert_eq!(
        names(&["--group", "conv_12345"]),
        vec![pair("Grouped", "conv_12345")]
    );
    assert_eq!(
        names(&["--meta", "team=core"]),
        vec![pair("Grouped", "g_other")]
    );
    assert_eq!(names(&["--meta", "customer_id=cust_789"]).len(), 2);
    assert_eq!(names(&["--since", "2h"]).len(), 3);
    assert_eq!(names(&["--limit", "1"]), vec![pair("Grouped", "g_other")]);
    assert!(names(&["--workflow", "Nope"]).is_empty());

    let out = env.run(&["list"]);
    assert_exit(&out, 0);
    let table = stdout(&out);
    assert!(
        table.contains("Grouped") && table.contains("Failing"),
        "{table}"
    );

    assert_exit(&env.run(&["list", "--since", "yesterday-ish"]), 2);
    assert_exit(&env.run(&["list", "--status", "bogus"]), 2);
}

#[test]
fn a_fresh_store_reads_as_an_empty_one_and_calendar_units_are_durations() {
    // A CI job's first run: nothing was ever recorded. Reports are empty, exit 0, and create
    // nothing; only `show last` has nothing to show.
    let env = TestEnv::new();
    assert_eq!(env.list_json(&[]), Vec::<Value>::new());
    assert_eq!(env.list_json(&["--experiments"]), Vec::<Value>::new());
    assert_eq!(env.list_json(&["--since", "1y"]), Vec::<Value>::new());
    assert_eq!(env.json(&["stats", "--format", "json"]), json!([]));
    for args in [
        &["list"][..],
        &["stats"],
        &["prune", "--older-than", "1y"],
        &["prune", "--older-than", "2mo", "--dry-run"],
    ] {
        let out = env.run(args);
        assert_exit(&out, 0);
        assert!(stderr(&out).is_empty(), "{args:?}: {}", stderr(&out));
    }
    assert!(!env.store_exists(), "reports create no store");
    assert_exit(&env.run(&["show", "last"]), 2);

    // Months and years count back on the calendar; the same filters on a store with a trace.
    env.write("w.yaml", "name: Once\nsteps:\n  - run: [\"true\"]\n");
    assert_exit(&env.run(&["run", "w.yaml", "--format", "none"]), 0);
    assert_eq!(env.list_json(&["--since", "1y"]).len(), 1);
    assert_eq!(env.list_json(&["--since", "3mo"]).len(), 1);
    let out = env.run(&["prune", "--older-than", "1y"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("deleted 0 traces"),
        "{}",
        stdout(&out)
    );
    // A unit that is not one is said plainly, without the date library's words.
    let out = env.run(&["list", "--since", "5 parsecs"]);
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("s, m, h, d, w, mo or y"), "{err}");
    assert!(
        !err.contains("jiff") && !err.contains("SpanRelativeTo"),
        "{err}"
    );
}

#[test]
fn list_prints_local_time_with_its_offset_utc_under_ci_and_rfc_3339_in_json() {
    let env = TestEnv::new().workflow("w.yaml", "name: W\nsteps:\n  - run: [\"true\"]\n");
    assert_exit(&env.run(&["run", "w.yaml", "--format", "none"]), 0);
    let started = env.list_json(&[])[0]["started_at"]
        .as_str()
        .unwrap()
        .to_string();
    // JSON: RFC 3339 in UTC, whatever the zone.
    assert!(started.ends_with('Z'), "{started}");
    let utc: jiff::Timestamp = started.parse().unwrap();
    let at = |zone: &str| {
        utc.to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let list = |envs: &[(&str, &str)]| {
        let out = env.run_with(&["list"], |c| {
            c.env("COLUMNS", "120");
            for (k, v) in envs {
                c.env(k, v);
            }
        });
        assert_exit(&out, 0);
        stdout(&out)
    };
    let kolkata = list(&[("TZ", "Asia/Kolkata")]);
    assert!(kolkata.contains("  STARTED +05:30  "), "{kolkata}");
    assert!(kolkata.contains(&at("Asia/Kolkata")), "{kolkata}");
    let json = env.run_with(&["list", "--format", "json"], |c| {
        c.env("TZ", "Asia/Kolkata");
    });
    assert!(stdout(&json).contains(&started), "JSON stays in UTC");
    for envs in [
        &[("TZ", "Asia/Kolkata"), ("CI", "true")][..],
        &[("TZ", "UTC")][..],
    ] {
        let utc_table = list(envs);
        assert!(
            utc_table.contains("  STARTED UTC  "),
            "{envs:?}: {utc_table}"
        );
        assert!(utc_table.contains(&at("UTC")), "{envs:?}: {utc_table}");
    }
}
