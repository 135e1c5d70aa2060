//! JSON shapes (docs/contract.md#json-shapes): `show --format json` and `run --format json`
//! have exactly the documented fields.

use serde_json::json;

use crate::support::*;
use crate::traces::*;

pub(crate) const SHAPES: &str = r#"
name: Shapes
group_id: grp_1
metadata: { customer_id: cust_789 }
model: gpt-4o-mini
agents:
  helper: { instructions: Help. }
steps:
  - span: Data Preparation
    events:
      - { name: Phase started, attributes: { inputs: 1 } }
    steps:
      - id: load
        run: ["sh", "-c", "echo '{\"records\": 100}'"]
      - event: Data loaded
        attributes: { records: "{{ steps.load.output.records }}" }
  - id: answer
    agent: helper
    input: "Summarise {{ steps.load.output.records }} records"
    mock: Done.
"#;

#[test]
fn show_json_has_exactly_the_documented_shape() {
    let env = TestEnv::new().workflow("shapes.yaml", SHAPES);
    let out = env.run(&["run", "shapes.yaml", "--offline"]);
    assert_exit(&out, 0);
    let trace = env.show_json("last");

    assert_eq!(
        keys(&trace),
        set(&[
            "trace_id",
            "name",
            "workflow",
            "group_id",
            "metadata",
            // Additive (the contract allows it): the trace's error, as in the run object.
            "error",
            "status",
            "started_at",
            "ended_at",
            "duration_ms",
            "usage",
            // Additive: the summed cost of the generations, null without prices.
            "cost_usd",
            // Additive: whether the built-in offline model answered the run.
            "offline",
            "spans"
        ])
    );
    assert!(
        is_hex_id(trace["trace_id"].as_str().unwrap(), "trace_", 32),
        "{}",
        trace["trace_id"]
    );
    assert!(
        is_rfc3339_micros(trace["started_at"].as_str().unwrap()),
        "{}",
        trace["started_at"]
    );
    assert!(
        is_rfc3339_micros(trace["ended_at"].as_str().unwrap()),
        "{}",
        trace["ended_at"]
    );
    assert!(trace["duration_ms"].is_number());
    assert_eq!(trace["name"], "Shapes");
    assert_eq!(trace["workflow"], "Shapes");
    assert_eq!(trace["group_id"], "grp_1");
    assert_eq!(
        trace["metadata"],
        json!({"customer_id": "cust_789", "agentrace.offline": true})
    );
    assert_eq!(trace["offline"], true);
    assert_eq!(trace["status"], "ok");
    assert_eq!(
        keys(&trace["usage"]),
        set(&["input_tokens", "output_tokens", "total_tokens"])
    );

    for span in spans(&trace) {
        assert_eq!(
            keys(span),
            set(&[
                "span_id",
                "parent_id",
                "kind",
                "name",
                "status",
                "started_at",
                "ended_at",
                "duration_ms",
                "attributes",
                "events",
                "error"
            ]),
            "span keys of {span:#}"
        );
        assert!(
            is_hex_id(span["span_id"].as_str().unwrap(), "span_", 16),
            "{}",
            span["span_id"]
        );
        assert!(span["parent_id"].is_null() || span["parent_id"].is_string());
        assert!(is_rfc3339_micros(span["started_at"].as_str().unwrap()));
        assert!(is_rfc3339_micros(span["ended_at"].as_str().unwrap()));
        assert!(span["duration_ms"].is_number());
        assert!(span["attributes"].is_object());
        assert!(span["error"].is_null());
        for e in span["events"].as_array().unwrap() {
            assert_eq!(keys(e), set(&["name", "time", "attributes"]));
            assert!(is_rfc3339_micros(e["time"].as_str().unwrap()));
        }
    }

    // Redacted, the whole document compares literally except attributes (additive).
    let mut redacted = redact_json(&trace);
    for span in redacted["spans"].as_array_mut().unwrap() {
        span["attributes"] = json!("…");
    }
    let gen_usage = trace["usage"].clone();
    // The offline model costs nothing, whatever model it answers as.
    assert_eq!(trace["cost_usd"], json!(0.0));
    assert_eq!(
        redacted,
        json!({
            "trace_id": "trace_1", "name": "Shapes", "workflow": "Shapes", "group_id": "grp_1",
            "metadata": {"customer_id": "cust_789", "agentrace.offline": true}, "status": "ok",
            "started_at": "[TIME]", "ended_at": "[TIME]", "duration_ms": "[DUR]",
            "usage": gen_usage, "cost_usd": 0.0, "offline": true, "error": null,
            "spans": [
                {"span_id": "span_1", "parent_id": null, "kind": "custom", "name": "Data Preparation",
                 "status": "ok", "started_at": "[TIME]", "ended_at": "[TIME]", "duration_ms": "[DUR]",
                 "attributes": "…",
                 "events": [
                    {"name": "Phase started", "time": "[TIME]", "attributes": {"inputs": 1}},
                    {"name": "Data loaded", "time": "[TIME]", "attributes": {"records": 100}}
                 ],
                 "error": null},
                {"span_id": "span_2", "parent_id": "span_1", "kind": "command",
                 "name": spans(&trace)[1]["name"], "status": "ok",
                 "started_at": "[TIME]", "ended_at": "[TIME]", "duration_ms": "[DUR]",
                 "attributes": "…", "events": [], "error": null},
                {"span_id": "span_3", "parent_id": null, "kind": "agent", "name": "helper",
                 "status": "ok", "started_at": "[TIME]", "ended_at": "[TIME]", "duration_ms": "[DUR]",
                 "attributes": "…", "events": [], "error": null},
                {"span_id": "span_4", "parent_id": "span_3", "kind": "generation",
                 "name": spans(&trace)[3]["name"], "status": "ok",
                 "started_at": "[TIME]", "ended_at": "[TIME]", "duration_ms": "[DUR]",
                 "attributes": "…", "events": [], "error": null}
            ]
        })
    );
}

#[test]
fn run_json_prints_one_line_per_trace_with_the_documented_fields() {
    let env = TestEnv::new().workflow("shapes.yaml", SHAPES);
    let (out, lines) = run_json(&env, "shapes.yaml", &["--offline"]);
    assert_exit(&out, 0);
    assert_eq!(lines.len(), 1);
    let run = &lines[0];
    assert_eq!(
        keys(run),
        set(&[
            "trace_id",
            "name",
            "workflow",
            "group_id",
            "status",
            "duration_ms",
            "outputs",
            "usage",
            "error",
            // Additive: the summed cost of the generations, null without prices.
            "cost_usd",
            // Additive: whether the built-in offline model answered the run.
            "offline"
        ])
    );
    assert_eq!(run["offline"], true);
    assert!(is_hex_id(run["trace_id"].as_str().unwrap(), "trace_", 32));
    assert_eq!(run["name"], "Shapes");
    assert_eq!(run["workflow"], "Shapes");
    assert_eq!(run["group_id"], "grp_1");
    assert_eq!(run["status"], "ok");
    assert!(run["duration_ms"].is_number());
    assert!(run["error"].is_null());
    // A command's JSON stdout as its value (docs/contract.md); an agent's final text.
    assert_eq!(
        run["outputs"],
        json!({"load": {"records": 100}, "answer": "Done."})
    );

    let listed = env.list_json(&[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        keys(&listed[0]),
        set(&[
            "trace_id",
            "name",
            "workflow",
            "group_id",
            "status",
            "duration_ms",
            "usage",
            "error",
            "started_at",
            // Additive (the contract allows it): the metadata that `--meta` filters on.
            "metadata",
            // Additive: the summed cost of the generations.
            "cost_usd",
            "offline"
        ]),
        "list items are run objects without outputs, plus started_at"
    );
    assert_eq!(listed[0]["trace_id"], run["trace_id"]);
    assert_eq!(listed[0]["usage"], run["usage"]);
}
