//! What serve's trace page shows a person, read in headless Chromium (`tests/ui/trace_page.mjs`):
//! a failed command's stderr in the error box as the lines it wrote, and the HTML export of the
//! same trace, opened from `file://`, showing exactly the same page (one front-end).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::serve::Served;
use crate::support::*;
use crate::traces::run_json;

/// What `trace_page.mjs` read on serve's page of trace `id` (and, with `export`, checked that
/// the HTML export at that path shows the same), or `None` where no browser is installed.
fn read_trace_page(env: &TestEnv, id: &str, export: Option<&Path>) -> Option<Value> {
    let browser = crate::files::chromium()?;
    let node_path = crate::serve::playwright()?;
    let served = Served::start(env, &[]);
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/trace_page.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&driver)
        .args(["--base", &served.url(""), "--trace", id])
        .env("CHROMIUM", &browser)
        .env("NODE_PATH", &node_path);
    if let Some(path) = export {
        cmd.arg("--export-html").arg(path);
    }
    let out = output_within(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "trace_page.mjs failed:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let read: Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON line");
    if export.is_some() {
        assert_eq!(read["export"], "same", "{read}");
    }
    Some(read["page"].clone())
}

/// `agentrace export ID --format html` into `NAME.html` in the test's directory.
fn export_html(env: &TestEnv, id: &str) -> PathBuf {
    let page = env.path().join(format!("{id}.html"));
    let out = env.run(&[
        "export",
        id,
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    page
}

/// The span of this name that the page read.
#[track_caller]
fn span<'a>(page: &'a Value, name: &str) -> &'a Value {
    page["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no span {name} on the page: {page}"))
}

const STDERR: &str = r#"
name: Noisy failure
steps:
  - span: Outer
    steps:
      - id: boom
        run: ["sh", "-c", "echo 'first line' >&2; echo 'second line' >&2; echo third >&2; exit 3"]
"#;

#[test]
fn a_failed_commands_stderr_reads_as_lines_in_the_error_box_in_headless_chromium() {
    let env = TestEnv::new().workflow("noisy.yaml", STDERR);
    let (out, lines) = run_json(&env, "noisy.yaml", &["--offline"]);
    assert_exit(&out, 1);
    let id = lines[0]["trace_id"].as_str().unwrap().to_string();
    let export = export_html(&env, &id);
    let Some(page) = read_trace_page(&env, &id, Some(&export)) else {
        return;
    };
    // The failing step's box: its message, then each field; the stderr as the lines it wrote.
    let error = span(&page, "boom")["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("command `sh` exited with status 3"),
        "{error}"
    );
    assert!(error.contains("exit code\t3"), "{error}");
    assert!(
        error.contains("first line\nsecond line\nthird"),
        "the stderr is not shown as its lines: {error:?}"
    );
    // No box on the page, for the trace or any span, shows text as a JSON string.
    let boxes = std::iter::once(&page["error"])
        .chain(
            page["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| &s["error"]),
        )
        .filter_map(Value::as_str)
        .collect::<Vec<_>>();
    assert!(!boxes.is_empty());
    for text in boxes {
        assert!(
            !text.contains("\\n") && !text.contains("\"stderr"),
            "an error box shows JSON: {text:?}"
        );
    }
}
