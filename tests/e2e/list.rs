//! `list`: the table of traces and its filters (group, workflow, status, metadata, since,
//! limit).

use crate::groups::GROUPED;
use crate::support::*;

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
