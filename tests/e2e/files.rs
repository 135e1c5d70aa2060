//! End-to-end tests of the file exports (see tests/support/ for the support code): `--format
//! chrome` (lanes for concurrent spans), `--format openai` (compared key by key with the real
//! OpenAI Agents SDK payloads in ../shared/reference/), `--to-openai` against the fake server,
//! and `--format html` opened in a real headless Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;
use crate::{examples, run_json};

// ---------------------------------------------------------------------------------------------
// Helpers

/// `export ARGS… --format FORMAT` to stdout, exit 0.
fn export(env: &TestEnv, ids: &[&str], format: &str) -> Vec<u8> {
    let mut args = vec!["export"];
    args.extend_from_slice(ids);
    args.extend_from_slice(&["--format", format]);
    let out = env.run(&args);
    assert_exit(&out, 0);
    out.stdout
}

fn export_json(env: &TestEnv, ids: &[&str], format: &str) -> Value {
    parse_json(&export(env, ids, format))
}

/// Runs a workflow and gives the ids of the traces it recorded.
#[track_caller]
fn run_ids(env: &TestEnv, file: &str, extra: &[&str]) -> Vec<String> {
    let (out, lines) = run_json(env, file, extra);
    assert_exit(&out, 0);
    lines
        .iter()
        .map(|l| l["trace_id"].as_str().unwrap().to_string())
        .collect()
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Python's `datetime.isoformat()` of an aware UTC time: `2026-11-24T22:34:10.935175+00:00`
/// (the fraction left out when it is zero).
fn is_python_isoformat(s: &str) -> bool {
    let Some(rest) = s.strip_suffix("+00:00") else {
        return false;
    };
    let (main, fraction) = match rest.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (rest, None),
    };
    let b = main.as_bytes();
    main.len() == 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && fraction.is_none_or(|f| f.len() == 6 && f.bytes().all(|c| c.is_ascii_digit()))
}

fn micros(s: &str) -> u128 {
    // Enough for ordering: the digits of the date and the time, fraction padded.
    let rest = s.strip_suffix("+00:00").unwrap();
    let (main, fraction) = rest.split_once('.').unwrap_or((rest, "000000"));
    let digits: String = main.chars().filter(char::is_ascii_digit).collect();
    format!("{digits}{fraction}").parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The OpenAI Agents SDK payload

fn reference_payloads() -> Option<Vec<Value>> {
    // A copy of ../shared/reference/openai-agents-sdk-ingest-payloads.json (two real request
    // bodies of the OpenAI Agents SDK 0.24), kept in the repository so the test does not depend
    // on where the checkout sits.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openai-agents-sdk-ingest-payloads.json");
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice::<Vec<Value>>(&bytes).unwrap()),
        Err(e) if under_ci() => {
            panic!(
                "the SDK reference payloads are missing at {}: {e}",
                path.display()
            )
        }
        Err(e) => {
            eprintln!(
                "note: skipped the comparison with the SDK payloads ({}: {e})",
                path.display()
            );
            None
        }
    }
}

/// Places where our value may be `null` while the SDK's reference run had one: a trace outside
/// any group, a root span's parent, settings the SDK
/// fills in only for gpt-5 models (the reference used one), and the text of an assistant message
/// that only calls tools.
const OURS_MAY_BE_NULL: [&str; 5] = [
    "group_id",
    "parent_id",
    "span_data.model_config.reasoning",
    "span_data.model_config.verbosity",
    "span_data.output[].content",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares `ours` with `reference` key by key: the same keys in every object, the same type
/// of every value (a `null` in the reference stands for an optional value), recursively.
/// Messages are matched by role, so that a system message is compared with a system message.
fn same_shape(ours: &Value, reference: &Value, path: &str, problems: &mut Vec<String>) {
    match (ours, reference) {
        (_, Value::Null) => {}
        (Value::Null, _) if OURS_MAY_BE_NULL.contains(&path) => {}
        (Value::Null, _) => problems.push(format!(
            "{path}: null, the SDK sends {}",
            type_name(reference)
        )),
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            if ka != kb {
                problems.push(format!("{path}: keys {ka:?}, the SDK sends {kb:?}"));
            }
            for (k, v) in a {
                if let Some(r) = b.get(k) {
                    same_shape(v, r, &join(path, k), problems);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let elem = format!("{path}[]");
            for v in a {
                let counterpart = match v.get("role") {
                    Some(role) => {
                        b.iter()
                            .filter(|r| r.get("role") == Some(role))
                            .max_by_key(|r| {
                                // Prefer a reference message that calls tools when ours does.
                                usize::from(
                                    r.get("tool_calls").is_some_and(|t| !t.is_null())
                                        == v.get("tool_calls").is_some_and(|t| !t.is_null()),
                                )
                            })
                    }
                    None => b.first(),
                };
                // An assistant message without tool calls has no `tool_calls` key.
                let calls = |m: &Value| m.get("tool_calls").is_some_and(|t| !t.is_null());
                let stripped = counterpart
                    .filter(|r| r.get("role").is_some() && calls(r) && !calls(v))
                    .map(|r| {
                        let mut r = r.clone();
                        if let Some(o) = r.as_object_mut() {
                            o.remove("tool_calls");
                        }
                        r
                    });
                match stripped.as_ref().or(counterpart) {
                    Some(r) => same_shape(v, r, &elem, problems),
                    None if b.is_empty() => {}
                    None => problems.push(format!("{elem}: no SDK counterpart for {v}")),
                }
            }
        }
        (a, b) if type_name(a) != type_name(b) => problems.push(format!(
            "{path}: {} ({a}), the SDK sends {} ({b})",
            type_name(a),
            type_name(b)
        )),
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Every object of `ours` has the shape of an SDK object of the same kind (trace, or span of the
/// same `span_data.type`); every span type we send has an SDK example, except those the
/// reference run did not produce (handoff), which are checked by hand.
fn assert_matches_sdk_shapes(ours: &Value, references: &[Value]) -> BTreeSet<String> {
    let reference_items: Vec<&Value> = references
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap())
        .collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    assert_eq!(
        ours.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["data"],
        "the envelope"
    );
    for item in ours["data"].as_array().unwrap() {
        let kind = match item["object"].as_str() {
            Some("trace") => "trace".to_string(),
            Some("trace.span") => item["span_data"]["type"].as_str().unwrap().to_string(),
            other => panic!("unknown object {other:?}: {item:#}"),
        };
        seen.insert(kind.clone());
        // For generations, the SDK example whose input has every role (system, user, assistant
        // with tool calls, tool).
        let counterpart = reference_items
            .iter()
            .filter(|r| {
                (kind == "trace" && r["object"] == "trace") || r["span_data"]["type"] == *kind
            })
            .max_by_key(|r| r["span_data"]["input"].as_array().map_or(0, Vec::len));
        let Some(reference) = counterpart else {
            assert_eq!(kind, "handoff", "no SDK example of {kind}");
            assert_eq!(
                item["span_data"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .collect::<Vec<_>>(),
                ["type", "from_agent", "to_agent"]
            );
            continue;
        };
        let mut item_problems = Vec::new();
        if kind == "trace" {
            // Free-form metadata: an object, or null when there is none.
            assert!(item["metadata"].is_object() || item["metadata"].is_null());
            let mut outer = item.clone();
            let mut reference = (*reference).clone();
            outer["metadata"] = Value::Null;
            reference["metadata"] = Value::Null;
            same_shape(&outer, &reference, "", &mut item_problems);
        } else if kind == "custom" {
            // Free-form data: the envelope must match, `data` must be an object.
            let mut outer = item.clone();
            let mut reference = (*reference).clone();
            outer["span_data"]["data"] = json!({});
            reference["span_data"]["data"] = json!({});
            same_shape(&outer, &reference, "", &mut item_problems);
            assert!(item["span_data"]["data"].is_object(), "{item:#}");
        } else {
            same_shape(item, reference, "", &mut item_problems);
        }
        problems.extend(
            item_problems
                .into_iter()
                .map(|p| format!("{kind} {}: {p}", item["id"])),
        );
    }
    assert!(
        problems.is_empty(),
        "differences from the SDK payloads:\n{}",
        problems.join("\n")
    );
    seen
}

/// Values that follow from the stored traces: ids, order, parents, times, names, usage.
fn assert_payload_values(payload: &Value, traces: &[Value]) {
    let items = payload["data"].as_array().unwrap();
    let mut at = 0;
    for trace in traces {
        let t = &items[at];
        assert_eq!(t["object"], "trace", "each trace comes before its spans");
        assert_eq!(t["id"], trace["trace_id"]);
        assert!(is_lower_hex(
            t["id"].as_str().unwrap().strip_prefix("trace_").unwrap(),
            32
        ));
        assert_eq!(t["workflow_name"], trace["name"]);
        assert_eq!(t["group_id"], trace["group_id"]);
        let metadata = &trace["metadata"];
        if metadata.as_object().is_none_or(|m| m.is_empty()) {
            assert!(t["metadata"].is_null());
        } else {
            assert_eq!(&t["metadata"], metadata);
        }
        let stored = trace["spans"].as_array().unwrap();
        let spans = &items[at + 1..at + 1 + stored.len()];
        at += 1 + stored.len();
        // Ours with eight zeros: the SDK's ids have 24 hex digits.
        let sdk_id = |id: &Value| format!("{}00000000", id.as_str().unwrap());
        let by_id: BTreeMap<String, &Value> =
            stored.iter().map(|s| (sdk_id(&s["span_id"]), s)).collect();
        let mut last_end = 0;
        for span in spans {
            assert_eq!(span["object"], "trace.span");
            assert_eq!(span["trace_id"], trace["trace_id"]);
            let id = span["id"].as_str().unwrap();
            assert!(is_lower_hex(id.strip_prefix("span_").unwrap(), 24), "{id}");
            let s = by_id
                .get(id)
                .unwrap_or_else(|| panic!("{id} is not a stored span"));
            match s["parent_id"].as_str() {
                None => assert!(span["parent_id"].is_null()),
                Some(_) => assert_eq!(span["parent_id"], json!(sdk_id(&s["parent_id"]))),
            }
            let (start, end) = (
                span["started_at"].as_str().unwrap(),
                span["ended_at"].as_str().unwrap(),
            );
            assert!(
                is_python_isoformat(start) && is_python_isoformat(end),
                "{start} {end}"
            );
            // The same instants as `show` (RFC 3339 with Z there).
            assert_eq!(
                start.replace("+00:00", "Z"),
                s["started_at"].as_str().unwrap().replace(".000000Z", "Z")
            );
            assert!(
                micros(end) >= last_end,
                "spans come in the order they ended"
            );
            last_end = micros(end);
            let data = &span["span_data"];
            let attrs = &s["attributes"];
            match s["kind"].as_str().unwrap() {
                "generation" => {
                    assert_eq!(data["model"], attrs["model"]);
                    assert_eq!(
                        data["usage"]["input_tokens"],
                        attrs["usage"]["input_tokens"]
                    );
                    assert_eq!(
                        data["usage"]["output_tokens"],
                        attrs["usage"]["output_tokens"]
                    );
                    assert_eq!(
                        data["usage"]["total_tokens"],
                        attrs["usage"]["total_tokens"]
                    );
                    assert_eq!(data["usage"]["requests"], 1);
                    assert_eq!(data["model_config"]["base_url"], attrs["base_url"]);
                    assert_eq!(
                        data["input"].as_array().unwrap().len(),
                        attrs["input"].as_array().unwrap().len()
                    );
                }
                "function" => {
                    assert_eq!(data["name"], s["name"]);
                    assert_eq!(data["input"], attrs["input"]);
                    assert_eq!(data["output"], attrs["output"]);
                    assert!(data["mcp_data"].is_null());
                }
                "agent" => {
                    assert_eq!(data["name"], s["name"]);
                    assert_eq!(data["output_type"], "str");
                }
                "handoff" => {
                    assert_eq!(data["from_agent"], attrs["from_agent"]);
                    assert_eq!(data["to_agent"], attrs["to_agent"]);
                }
                "custom" => {
                    assert_eq!(data["name"], s["name"]);
                    let events: Vec<&Value> = data["data"]["events"]
                        .as_array()
                        .map(|e| e.iter().map(|e| &e["name"]).collect())
                        .unwrap_or_default();
                    let stored_events: Vec<&Value> = s["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| &e["name"])
                        .collect();
                    assert_eq!(events, stored_events, "events travel in data.events");
                }
                "command" => {
                    assert_eq!(data["type"], "custom");
                    assert_eq!(data["data"]["span_kind"], "command");
                    assert_eq!(data["data"]["argv"], attrs["argv"]);
                }
                other => panic!("unexpected kind {other}"),
            }
            match s["error"].as_object() {
                None => assert!(span["error"].is_null()),
                Some(e) => assert_eq!(span["error"]["message"], e["message"]),
            }
        }
    }
    assert_eq!(at, items.len(), "nothing else in the payload");
}

#[test]
fn the_openai_export_has_the_sdk_payload_shape_key_by_key() {
    let env = examples().fake(FakeOpenAI::start());
    // Against a server, so that generations carry a base URL and real usage; the model calls
    // the order's two tools, and the support follow-up hands off to billing.
    env.server().push_all([
        Reply::tool_call("check_inventory", json!({"sku": "SKU-4417", "quantity": 2})),
        Reply::tool_call(
            "authorize_payment",
            json!({"order_id": "ORD-1001", "amount": 129.9, "currency": "USD"}),
        ),
        Reply::text("Your order is confirmed.", 40, 8),
    ]);
    let order = run_ids(&env, "workflows/order.yaml", &[]);
    env.server().push_all([
        Reply::text("It arrives tomorrow.", 20, 5),
        Reply::tool_call("transfer_to_billing", json!({})),
        Reply::text("Refunded.", 30, 4),
    ]);
    let support = run_ids(&env, "workflows/support.yaml", &[]);
    assert_eq!(support.len(), 2);

    let order_payload = export_json(&env, &[&order[0]], "openai");
    let ids: Vec<&str> = support.iter().map(String::as_str).collect();
    let support_payload = export_json(&env, &ids, "openai");

    let order_trace = env.show_json(&order[0]);
    let support_traces: Vec<Value> = support.iter().map(|id| env.show_json(id)).collect();
    assert_payload_values(&order_payload, std::slice::from_ref(&order_trace));
    assert_payload_values(&support_payload, &support_traces);

    // Two traces of one conversation: one group id, each with its metadata.
    let traces: Vec<&Value> = support_payload["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["object"] == "trace")
        .collect();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[0]["group_id"], "conv_12345");
    assert_eq!(traces[1]["group_id"], "conv_12345");
    assert_eq!(traces[0]["metadata"]["customer_id"], "cust_789");

    // The order: the nested business spans with their events, the agent with its tools, the
    // tool calls in the model's output and as function spans.
    let items = order_payload["data"].as_array().unwrap();
    let custom = |name: &str| {
        items
            .iter()
            .find(|i| i["span_data"]["type"] == "custom" && i["span_data"]["name"] == name)
            .unwrap_or_else(|| panic!("no custom span {name}"))
    };
    let validation = custom("Order Validation");
    assert!(validation["parent_id"].is_null());
    assert_eq!(
        validation["span_data"]["data"]["events"][0]["name"],
        "Validation started"
    );
    assert!(is_python_isoformat(
        validation["span_data"]["data"]["events"][0]["time"]
            .as_str()
            .unwrap()
    ));
    let agent = items
        .iter()
        .find(|i| i["span_data"]["type"] == "agent")
        .unwrap();
    assert_eq!(
        agent["span_data"],
        json!({"type": "agent", "name": "confirmer", "handoffs": [],
               "tools": ["check_inventory", "authorize_payment"], "output_type": "str"})
    );
    let generations: Vec<&Value> = items
        .iter()
        .filter(|i| i["span_data"]["type"] == "generation")
        .collect();
    assert_eq!(generations.len(), 3);
    let first_output = &generations[0]["span_data"]["output"][0];
    assert!(first_output["content"].is_null());
    assert_eq!(
        first_output["tool_calls"][0]["function"]["name"],
        "check_inventory"
    );
    assert_eq!(first_output["tool_calls"][0]["type"], "function");
    let last_input = generations[2]["span_data"]["input"].as_array().unwrap();
    let roles: Vec<&str> = last_input
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "assistant", "tool"]
    );
    assert!(last_input[2]["content"].is_null(), "{:#}", last_input[2]);
    assert_eq!(
        generations[2]["span_data"]["output"][0]["content"],
        "Your order is confirmed."
    );
    assert_eq!(
        generations[2]["span_data"]["usage"],
        json!({"requests": 1, "input_tokens": 40, "output_tokens": 8, "total_tokens": 48,
               "input_tokens_details": {"cache_write_tokens": 0, "cached_tokens": 0,
                                        "cache_write_tokens_details": null},
               "output_tokens_details": {"reasoning_tokens": 0}})
    );
    let functions: Vec<&Value> = items
        .iter()
        .filter(|i| i["span_data"]["type"] == "function")
        .collect();
    assert_eq!(functions.len(), 2);
    assert_eq!(functions[0]["parent_id"], agent["id"]);

    // The follow-up hands off: the triage agent lists billing among its handoffs.
    let follow_up: Vec<&Value> = support_payload["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["trace_id"] == traces[1]["id"])
        .collect();
    let handoff = follow_up
        .iter()
        .find(|i| i["span_data"]["type"] == "handoff")
        .unwrap();
    assert_eq!(
        handoff["span_data"],
        json!({"type": "handoff", "from_agent": "triage", "to_agent": "billing"})
    );
    let triage = follow_up
        .iter()
        .find(|i| i["span_data"]["type"] == "agent" && i["span_data"]["name"] == "triage")
        .unwrap();
    assert_eq!(triage["span_data"]["handoffs"], json!(["billing"]));
    assert_eq!(triage["span_data"]["tools"], json!([]));

    if let Some(references) = reference_payloads() {
        let mut seen = assert_matches_sdk_shapes(&order_payload, &references);
        seen.extend(assert_matches_sdk_shapes(&support_payload, &references));
        for kind in [
            "trace",
            "agent",
            "generation",
            "function",
            "custom",
            "handoff",
        ] {
            assert!(
                seen.contains(kind),
                "the examples exported no {kind}: {seen:?}"
            );
        }
    }
}

#[test]
fn to_openai_posts_the_payload_in_sdk_batches_with_the_beta_header() {
    let env = TestEnv::with_fake().workflow(
        "many.yaml",
        r#"
name: Many
group_id: g-1
steps:
  - name: Items
    foreach: "{{ range(150) | list }}"
    as: i
    steps:
      - span: "part {{ i }}"
        events:
          - { name: tick, attributes: { i: "{{ i }}" } }
        steps: []
  - id: cmd
    run: ["echo", "done"]
"#,
    );
    let id = run_ids(&env, "many.yaml", &["--offline"]).remove(0);
    let expected = export_json(&env, &[&id], "openai");

    let out = env.run(&["export", &id, "--to-openai"]);
    assert_exit(&out, 0);
    let posts: Vec<Recorded> = env
        .server()
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/traces/ingest")
        .collect();
    // 1 trace + 1 + 150 × 2 + 1 spans = 303 items: 128 + 128 + 47.
    let sizes: Vec<usize> = posts
        .iter()
        .map(|p| p.body["data"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [128, 128, 47]);
    for post in &posts {
        assert_eq!(
            post.headers["authorization"],
            format!("Bearer {SECRET_KEY}")
        );
        assert_eq!(post.headers["openai-beta"], "traces=v1");
        assert_eq!(post.headers["content-type"], "application/json");
        assert_eq!(
            post.body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["data"]
        );
    }
    let sent: Vec<Value> = posts
        .iter()
        .flat_map(|p| p.body["data"].as_array().unwrap().clone())
        .collect();
    assert_eq!(
        Value::Array(sent),
        expected["data"],
        "the file export, in batches"
    );
    assert!(
        stderr(&out).contains("/v1/traces/ingest"),
        "{}",
        stderr(&out)
    );

    // The server refuses: exit 1 with its message; a 4xx is not retried.
    env.server().push(Reply::unauthorized());
    let before = env.server().request_count();
    let out = env.run(&["export", &id, "--to-openai"]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("Incorrect API key provided") && stderr(&out).contains("401"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.server().request_count(), before + 1);

    // No key: nothing is sent, and the error names the variable.
    let out = env.run_with(&["export", &id, "--to-openai"], |c| {
        c.env_remove("OPENAI_API_KEY");
    });
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("OPENAI_API_KEY"), "{}", stderr(&out));
    assert_eq!(env.server().request_count(), before + 1);
}

// ---------------------------------------------------------------------------------------------
// Chrome trace-event JSON

/// Complete events on one thread must be disjoint or nested along the span tree, or a viewer
/// draws them on top of each other.
fn assert_lanes_never_overlap(events: &[&Value]) {
    let parent_of: BTreeMap<&str, &str> = events
        .iter()
        .filter_map(|e| {
            Some((
                e["args"]["span_id"].as_str()?,
                e["args"]["parent_id"].as_str()?,
            ))
        })
        .collect();
    let is_ancestor = |a: &str, b: &str| {
        let mut at = b;
        while let Some(p) = parent_of.get(at) {
            if *p == a {
                return true;
            }
            at = p;
        }
        false
    };
    for (i, a) in events.iter().enumerate() {
        for b in &events[i + 1..] {
            if a["pid"] != b["pid"] || a["tid"] != b["tid"] {
                continue;
            }
            let (a0, a1) = (
                a["ts"].as_i64().unwrap(),
                a["ts"].as_i64().unwrap() + a["dur"].as_i64().unwrap(),
            );
            let (b0, b1) = (
                b["ts"].as_i64().unwrap(),
                b["ts"].as_i64().unwrap() + b["dur"].as_i64().unwrap(),
            );
            let (sa, sb) = (
                a["args"]["span_id"].as_str().unwrap(),
                b["args"]["span_id"].as_str().unwrap(),
            );
            let ok = a1 <= b0
                || b1 <= a0
                || (a0 <= b0 && b1 <= a1 && is_ancestor(sa, sb))
                || (b0 <= a0 && a1 <= b1 && is_ancestor(sb, sa));
            assert!(
                ok,
                "{} and {} overlap on lane {}",
                a["name"], b["name"], a["tid"]
            );
        }
    }
}

#[test]
fn the_chrome_export_puts_parallel_branches_and_foreach_items_on_their_own_lanes() {
    let env = TestEnv::new().workflow(
        "fan.yaml",
        r#"
name: Fan out
steps:
  - span: Work
    events:
      - { name: begun, attributes: { n: "1" } }
    steps:
      - name: Branches
        parallel:
          - span: Left
            steps:
              - { id: l, run: ["sleep", "0.3"] }
          - { id: middle, run: ["sleep", "0.3"] }
          - span: Right
            steps:
              - { id: r1, run: ["sleep", "0.1"] }
              - { id: r2, run: ["sleep", "0.1"] }
      - name: Loop
        foreach: ["a", "b", "c", "d"]
        as: x
        concurrency: 2
        steps:
          - { id: each, run: ["sleep", "0.2"] }
  - { id: after, run: ["echo", "done"] }
"#,
    );
    let id = run_ids(&env, "fan.yaml", &["--offline"]).remove(0);
    let chrome = export_json(&env, &[&id], "chrome");
    assert_eq!(chrome["displayTimeUnit"], "ms");
    let events = chrome["traceEvents"].as_array().unwrap();
    let named = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "process_name")
        .unwrap();
    assert!(
        named["args"]["name"]
            .as_str()
            .unwrap()
            .starts_with("Fan out")
    );
    let spans: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let trace = env.show_json(&id);
    assert_eq!(spans.len(), trace["spans"].as_array().unwrap().len());
    for e in &spans {
        assert!(e["ts"].as_i64().unwrap() >= 0 && e["dur"].as_i64().unwrap() >= 0);
        assert!(e["pid"].is_u64() && e["tid"].is_u64() && e["cat"].is_string());
        assert!(e["args"]["status"].is_string() && e["args"]["span_id"].is_string());
    }
    assert_lanes_never_overlap(&spans);
    let by_name = |name: &str| *spans.iter().find(|e| e["name"] == name).unwrap();
    let (left, middle, right) = (by_name("Left"), by_name("middle"), by_name("Right"));
    let lanes: BTreeSet<u64> = [left, middle, right]
        .iter()
        .map(|e| e["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(lanes.len(), 3, "three branches side by side");
    assert_eq!(
        by_name("Branches")["tid"],
        by_name("Work")["tid"],
        "nested spans share a lane"
    );
    assert_eq!(
        by_name("r1")["tid"],
        right["tid"],
        "a child stays in its branch's lane"
    );
    assert_eq!(by_name("r2")["tid"], right["tid"]);
    let items: BTreeSet<u64> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| by_name(n)["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(
        items.len(),
        2,
        "two items at a time take two lanes: {items:?}"
    );
    assert_eq!(
        by_name("after")["tid"],
        by_name("Work")["tid"],
        "sequential steps reuse the lane"
    );
    let instant = events.iter().find(|e| e["ph"] == "i").unwrap();
    assert_eq!(instant["name"], "begun");
    assert_eq!(instant["s"], "t");
    assert_eq!(instant["tid"], by_name("Work")["tid"]);
    assert_eq!(instant["args"]["n"], "1");
}

// ---------------------------------------------------------------------------------------------
// HTML, in a real headless Chromium

/// The Chromium binary, or `None` (a skip with a note) outside CI; under `CI=true` a missing
/// browser fails the test, since `.ci/run` installs it.
pub(crate) fn chromium() -> Option<PathBuf> {
    let candidates = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in candidates {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    if under_ci() {
        panic!("chromium is not installed (.ci/run installs Debian's `chromium`)");
    }
    eprintln!(
        "note: skipped the headless Chromium check: no chromium on PATH (apt-get install chromium)"
    );
    None
}

/// The page's DOM after it loaded and ran its scripts, and Chromium's console log lines.
fn render_in_chromium(browser: &Path, page: &Path, env: &TestEnv) -> (String, Vec<String>) {
    let profile = tempfile::Builder::new()
        .prefix("agentrace-chromium-")
        .tempdir()
        .unwrap();
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--window-size=1400,1200",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.display()))
    .current_dir(env.path())
    .env("HOME", env.path());
    let out = output_within(cmd, DEADLINE);
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        stderr(&out)
    );
    let console = stderr(&out)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (stdout(&out), console)
}

/// The `data-…` attribute of `<body>` in a dumped DOM.
fn body_attr(dom: &str, name: &str) -> Option<String> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    Some(tag[start..start + tag[start..].find('"')?].to_string())
}

/// The page without its data block: what it would fetch is in there, not in the traces.
fn page_code(html: &str) -> String {
    let start = html.find("<script type=\"application/json\"").unwrap();
    let end = start + html[start..].find("</script>").unwrap();
    format!("{}{}", &html[..start], &html[end..])
}

const HOSTILE: &str = r#"
name: Hostile <b>names</b>
group_id: "g</script><script>alert(2)</script>"
metadata: { note: "<img src=x onerror=alert(3)>" }
steps:
  - span: "<script>alert(1)</script>"
    events:
      - { name: "</script><i>event</i>", attributes: { html: "<b>bold</b> & more" } }
    steps:
      - id: shout
        name: "Shout & </title> \u2028"
        run: ["echo", "<script>alert(4)</script>"]
  - span: Plain span
    steps:
      - { id: fail, run: ["sh", "-c", "echo oops >&2; exit 3"] }
"#;

#[test]
fn the_html_export_renders_in_headless_chromium_with_every_name_as_text() {
    let env = TestEnv::new().workflow("hostile.yaml", HOSTILE);
    let (out, lines) = run_json(&env, "hostile.yaml", &["--offline"]);
    assert_exit(&out, 1);
    let id = lines[0]["trace_id"].as_str().unwrap().to_string();
    let page = env.path().join("trace.html");
    let out = env.run(&[
        "export",
        &id,
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_exit(&out, 0);
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: no fetch of any kind, and no name can end the data block.
    let code = page_code(&html);
    for needle in [
        "src=",
        "href=",
        "@import",
        "url(",
        "fetch(",
        "XMLHttpRequest",
        "http:",
        "https:",
        "<link",
        "@font-face",
    ] {
        assert!(
            !code.contains(needle),
            "the page's own code contains {needle}"
        );
    }
    assert!(
        !html.contains("<script>alert"),
        "a name reached the page as markup"
    );
    assert!(!html.contains("<img"), "a name reached the page as markup");
    assert_eq!(
        html.matches("</script>").count(),
        3,
        "only the page's own script ends"
    );

    let Some(browser) = chromium() else { return };
    let (dom, console) = render_in_chromium(&browser, &page, &env);
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    assert_eq!(body_attr(&dom, "data-errors"), None, "script errors: {dom}");
    let trace = env.show_json(&id);
    let count = trace["spans"].as_array().unwrap().len();
    assert_eq!(
        body_attr(&dom, "data-rendered").as_deref(),
        Some(&*format!("{count} spans"))
    );
    // Every span's name is on the page, as text (the DOM serialiser escapes < > &).
    for name in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "Shout &amp; &lt;/title&gt;",
        "Plain span",
        "fail",
    ] {
        assert!(dom.contains(name), "{name} is not on the page");
    }
    assert!(
        dom.contains("Hostile &lt;b&gt;names&lt;/b&gt;"),
        "the trace name in the header"
    );
    assert!(
        dom.contains("g&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"),
        "the group id"
    );
    assert!(!dom.contains("<script>alert"), "no name became an element");
    assert!(!dom.contains("<img"), "no metadata became an element");
    assert!(!dom.contains("<b>bold"), "no attribute became an element");
    // The header and the kinds and statuses it shows.
    assert!(dom.contains(&id), "the trace id in the header");
    assert!(
        dom.contains("class=\"bar k-command error\""),
        "a failed command bar"
    );
    assert!(dom.contains("class=\"bar k-custom ok\""));
}

#[test]
fn a_conversation_in_one_html_file_shows_each_trace() {
    let env = examples();
    let ids = run_ids(&env, "workflows/support.yaml", &["--offline"]);
    let page = env.path().join("conversation.html");
    let mut args = vec!["export"];
    args.extend(ids.iter().map(String::as_str));
    args.extend(["--format", "html", "-o", page.to_str().unwrap()]);
    assert_exit(&env.run(&args), 0);
    let Some(browser) = chromium() else { return };
    let (dom, console) = render_in_chromium(&browser, &page, &env);
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    assert_eq!(body_attr(&dom, "data-traces").as_deref(), Some("2"));
    assert_eq!(body_attr(&dom, "data-errors"), None);
    for name in [
        "Customer Support - Initial Inquiry",
        "Customer Support - Follow-up",
        "conv_12345",
        "triage",
        "gpt-4o-mini",
    ] {
        assert!(dom.contains(name), "{name} is not on the page");
    }
    // The two traces share a group: a tab shows them as the conversation's turns.
    assert!(dom.contains(">Conversation</button>"), "{dom}");
}

#[test]
fn ten_thousand_spans_render_in_headless_chromium_with_virtual_rows() {
    let env = TestEnv::new().workflow(
        "big.yaml",
        r#"
name: Ten thousand
steps:
  - name: Items
    foreach: "{{ range(5000) | list }}"
    as: i
    concurrency: 8
    steps:
      - span: "part {{ i }}"
        events:
          - { name: tick, attributes: { i: "{{ i }}" } }
        steps: []
"#,
    );
    let id = run_ids(&env, "big.yaml", &["--offline"]).remove(0);
    let page = env.path().join("big.html");
    assert_exit(
        &env.run(&[
            "export",
            &id,
            "--format",
            "html",
            "-o",
            page.to_str().unwrap(),
        ]),
        0,
    );
    // Perfetto's format too: every span is a complete event.
    let chrome = export_json(&env, &[&id], "chrome");
    let complete = chrome["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .count();
    assert_eq!(complete, 10_001);

    let Some(browser) = chromium() else { return };
    let started = std::time::Instant::now();
    let (dom, console) = render_in_chromium(&browser, &page, &env);
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );
    assert_eq!(body_attr(&dom, "data-errors"), None);
    assert_eq!(
        body_attr(&dom, "data-rendered").as_deref(),
        Some("10001 spans")
    );
    // Only the rows in view exist: the page stays light however long the trace.
    let rows = dom.matches("class=\"row").count();
    assert!((20..400).contains(&rows), "{rows} rows in the DOM");
    assert!(dom.contains(">Items<") && dom.contains(">part 0<"));
    assert!(
        !dom.contains(">part 4999<"),
        "rows out of view are not built"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
