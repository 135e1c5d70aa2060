//! Reading traces back: the helpers every section uses to find spans, events and
//! usage in the JSON of `show --format json` and `run --format json`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::*;

pub(crate) fn spans(trace: &Value) -> &Vec<Value> {
    trace["spans"]
        .as_array()
        .unwrap_or_else(|| panic!("trace has no spans array: {trace:#}"))
}

pub(crate) fn of_kind<'a>(trace: &'a Value, kind: &str) -> Vec<&'a Value> {
    spans(trace).iter().filter(|s| s["kind"] == kind).collect()
}

/// The spans of this kind that ran: not the `skipped` ones a failure leaves for the steps
/// after it.
pub(crate) fn ran<'a>(trace: &'a Value, kind: &str) -> Vec<&'a Value> {
    of_kind(trace, kind)
        .into_iter()
        .filter(|s| s["status"] != "skipped")
        .collect()
}

/// The message of the failure a span reports: its own, or that of the span its error's
/// `caused_by` points at (where the failure happened).
#[track_caller]
pub(crate) fn failure_message(trace: &Value, span: &Value) -> String {
    match span["error"]["data"]["caused_by"].as_str() {
        Some(id) => {
            let origin = spans(trace)
                .iter()
                .find(|s| s["span_id"] == id)
                .unwrap_or_else(|| panic!("caused_by {id} is no span of the trace"));
            failure_message(trace, origin)
        }
        None => error_message(span),
    }
}

/// The one span of this kind and name.
#[track_caller]
pub(crate) fn find<'a>(trace: &'a Value, kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = spans(trace)
        .iter()
        .filter(|s| s["kind"] == kind && s["name"] == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind} span named {name:?}; outline:\n{}",
        outline(trace).join("\n")
    );
    found[0]
}

pub(crate) fn children<'a>(trace: &'a Value, parent: &Value) -> Vec<&'a Value> {
    spans(trace)
        .iter()
        .filter(|s| s["parent_id"] == parent["span_id"])
        .collect()
}

pub(crate) fn parent<'a>(trace: &'a Value, span: &Value) -> Option<&'a Value> {
    spans(trace)
        .iter()
        .find(|s| s["span_id"] == span["parent_id"])
}

pub(crate) fn event_names(span: &Value) -> Vec<String> {
    span["events"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
pub(crate) fn event<'a>(span: &'a Value, name: &str) -> &'a Value {
    span["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| {
            panic!(
                "span {} has no event {name:?}: {:#}",
                span["name"], span["events"]
            )
        })
}

/// One line per span, indented by depth: `kind name status` (commands show `command` and their
/// status only, their names being the engine's choice). Also checks that spans are listed parents
/// before children.
pub(crate) fn outline(trace: &Value) -> Vec<String> {
    let mut depth_of: Vec<(Value, usize)> = Vec::new();
    let mut lines = Vec::new();
    for s in spans(trace) {
        let depth = if s["parent_id"].is_null() {
            0
        } else {
            match depth_of.iter().find(|(id, _)| *id == s["parent_id"]) {
                Some((_, d)) => d + 1,
                None => {
                    lines.push(format!("!! {} listed before its parent", s["name"]));
                    0
                }
            }
        };
        depth_of.push((s["span_id"].clone(), depth));
        let kind = s["kind"].as_str().unwrap_or("?");
        let status = s["status"].as_str().unwrap_or("?");
        let label = if kind == "command" {
            format!("command {status}")
        } else {
            format!("{kind} {} {status}", s["name"].as_str().unwrap_or("?"))
        };
        lines.push(format!("{}{label}", "  ".repeat(depth)));
    }
    lines
}

pub(crate) fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v:#}"))
        .keys()
        .cloned()
        .collect()
}

pub(crate) fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn is_hex_id(s: &str, prefix: &str, hex_len: usize) -> bool {
    s.strip_prefix(prefix).is_some_and(|h| {
        h.len() == hex_len
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// `2026-11-24T22:19:34.123456Z`: UTC with microseconds.
pub(crate) fn is_rfc3339_micros(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[26] == b'Z'
        && s.chars()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 26].contains(&i) || c.is_ascii_digit())
}

pub(crate) fn usage(input: u64, output: u64) -> Value {
    json!({"input_tokens": input, "output_tokens": output, "total_tokens": input + output})
}

/// Runs `run FILE --format json ...` and returns the output and its JSON lines.
pub(crate) fn run_json(
    env: &TestEnv,
    file: &str,
    extra: &[&str],
) -> (std::process::Output, Vec<Value>) {
    let mut args = vec!["run", file, "--format", "json"];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    let lines = parse_json_lines(&out.stdout);
    (out, lines)
}

/// Every span of the trace is closed: a final status and an end time.
#[track_caller]
pub(crate) fn assert_all_closed(trace: &Value) {
    for s in spans(trace) {
        assert!(
            ["ok", "error", "cancelled", "skipped"].contains(&s["status"].as_str().unwrap_or("")),
            "span left open: {s:#}"
        );
        assert!(s["ended_at"].is_string(), "span without an end: {s:#}");
    }
}

/// The command span whose argv is exactly this.
#[track_caller]
pub(crate) fn command_with_argv(trace: &Value, argv: Value) -> &Value {
    spans(trace)
        .iter()
        .find(|s| s["kind"] == "command" && s["attributes"]["argv"] == argv)
        .unwrap_or_else(|| {
            panic!(
                "no command span with argv {argv}; outline:\n{}",
                outline(trace).join("\n")
            )
        })
}

pub(crate) fn events_named<'a>(span: &'a Value, name: &str) -> Vec<&'a Value> {
    span["events"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["name"] == name).collect())
        .unwrap_or_default()
}

#[track_caller]
pub(crate) fn error_message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message on {v:#}"))
        .to_string()
}

pub(crate) fn close_to(v: &Value, expected: f64) -> bool {
    v.as_f64()
        .is_some_and(|x| (x - expected).abs() <= 1e-9 + expected.abs() * 1e-6)
}

/// `kind name status` of each child, sorted: branches start together, so their order is free.
pub(crate) fn child_labels(trace: &Value, parent: &Value) -> Vec<String> {
    let mut labels = child_outline(trace, parent);
    labels.sort();
    labels
}

/// A loop's output as `run --format json` reports it: the list itself.
#[track_caller]
pub(crate) fn output_list(v: &Value) -> Value {
    assert!(v.is_array(), "a loop's output is a list, got {v}");
    v.clone()
}

/// The messages a generation span recorded as its request, as (role, content) pairs.
pub(crate) fn sent_messages(generation: &Value) -> Vec<(String, String)> {
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

/// The spans directly under `parent`, as `kind name status`, in the listed (start) order.
pub(crate) fn child_outline(trace: &Value, parent: &Value) -> Vec<String> {
    children(trace, parent)
        .iter()
        .map(|s| {
            format!(
                "{} {} {}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap(),
                s["status"].as_str().unwrap()
            )
        })
        .collect()
}
