//! The stable JSON shapes of the commands' `--format json` (docs/contract.md, "JSON shapes"),
//! built key by key so that the key order is the documented one (serde_json keeps insertion
//! order). Additive changes only: scripts depend on these. The trace document itself (`show`,
//! serve's API, the HTML export) is `trace::json`, re-exported here.

use serde_json::{Map, Value, json};

use crate::trace::Trace;
pub use crate::trace::json::{DocJson, trace_doc_json};
use crate::trace::json::{duration, error, optional};

/// `run --format json`: one line per trace the run produced.
pub fn run_json(trace: &Trace, outputs: &Map<String, Value>) -> Value {
    json!({
        "trace_id": trace.trace_id.to_string(),
        "name": trace.name,
        "workflow": trace.workflow,
        "group_id": optional(trace.group_id.as_deref()),
        "status": trace.status.as_str(),
        "duration_ms": duration(trace.duration_ms()),
        "outputs": outputs,
        "usage": trace.usage.to_value(),
        "cost_usd": trace.cost_usd,
        "offline": trace.is_offline(),
        "error": error(trace.error.as_ref()),
    })
}

/// One item of `list --format json`: the `run` object without `outputs`, plus `started_at`
/// and (additively) `metadata`.
pub fn summary_json(trace: &Trace) -> Value {
    json!({
        "trace_id": trace.trace_id.to_string(),
        "name": trace.name,
        "workflow": trace.workflow,
        "group_id": optional(trace.group_id.as_deref()),
        "status": trace.status.as_str(),
        "started_at": trace.started_at.to_rfc3339(),
        "duration_ms": duration(trace.duration_ms()),
        "usage": trace.usage.to_value(),
        "cost_usd": trace.cost_usd,
        "offline": trace.is_offline(),
        "error": error(trace.error.as_ref()),
        "metadata": trace.metadata,
    })
}

#[cfg(test)]
pub(crate) mod streaming_tests {
    use super::*;

    #[test]
    fn the_streamed_document_equals_the_built_one_key_for_key() {
        let doc = tests::sample_doc();
        let streamed = serde_json::to_string(&DocJson(&doc)).unwrap();
        let built = serde_json::to_string(&trace_doc_json(&doc)).unwrap();
        assert_eq!(streamed, built);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::trace::{
        ErrorInfo, Event, Span, SpanId, SpanKind, Status, Timestamp, TraceDoc, TraceId, Usage,
    };

    pub(crate) const T0: i64 = 1_795_990_774_123_456;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    pub(crate) fn sample_trace() -> Trace {
        Trace {
            trace_id: TraceId([
                0x01, 0x92, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42,
            ]),
            name: "Customer Support - Initial Inquiry".into(),
            workflow: "Customer Support".into(),
            group_id: Some("conv_12345".into()),
            metadata: obj(json!({"customer_id": "cust_789", "priority": "high"})),
            status: Status::Ok,
            started_at: Timestamp(T0),
            ended_at: Some(Timestamp(T0 + 812_400)),
            usage: Usage::new(120, 340),
            cost_usd: Some(0.000222),
            error: None,
            pid: Some(4242),
        }
    }

    pub(crate) fn sample_doc() -> TraceDoc {
        let trace = sample_trace();
        let id = trace.trace_id;
        let span = |n: u8, parent: Option<u8>, kind, name: &str, start: i64, end: i64| Span {
            span_id: SpanId([0, 0, 0, 0, 0, 0, 0, n]),
            trace_id: id,
            parent_id: parent.map(|p| SpanId([0, 0, 0, 0, 0, 0, 0, p])),
            kind,
            name: name.into(),
            status: Status::Ok,
            started_at: Timestamp(T0 + start),
            ended_at: Some(Timestamp(T0 + end)),
            attributes: Map::new(),
            events: Vec::new(),
            error: None,
        };
        let mut validation = span(1, None, SpanKind::Custom, "Order Validation", 100, 12_400);
        validation.events.push(Event {
            name: "Validation started".into(),
            time: Timestamp(T0 + 150),
            attributes: obj(json!({"order_id": "ORD-1"})),
        });
        let mut inventory = span(2, Some(1), SpanKind::Command, "Inventory Check", 200, 5_300);
        inventory.attributes = obj(json!({"argv": ["./check.sh"], "exit_code": 0}));
        let mut agent = span(3, Some(1), SpanKind::Agent, "researcher", 5_400, 205_500);
        agent.attributes = obj(json!({"usage": Usage::new(120, 340)}));
        let mut generation = span(
            4,
            Some(3),
            SpanKind::Generation,
            "gpt-4o-mini",
            5_500,
            205_300,
        );
        generation.attributes = obj(json!({
            "model": "gpt-4o-mini", "offline": true, "usage": Usage::new(120, 340)
        }));
        let mut notify = span(5, None, SpanKind::Command, "notify", 300_000, 303_000);
        notify.status = Status::Error;
        notify.attributes = obj(json!({"script": "notify", "exit_code": 1}));
        notify.error = Some(ErrorInfo::with_data(
            "command exited with status 1: connection refused\nmore detail",
            json!({"stderr": "connection refused"}),
        ));
        TraceDoc {
            trace,
            spans: vec![validation, inventory, agent, generation, notify],
        }
    }

    #[test]
    fn show_json_has_the_documented_shape() {
        let mut doc = sample_doc();
        doc.spans.truncate(2);
        let text = serde_json::to_string(&trace_doc_json(&doc)).unwrap();
        let expected = r#"{"trace_id":"trace_0192abcd000000000000000000000042","name":"Customer Support - Initial Inquiry","workflow":"Customer Support","group_id":"conv_12345","metadata":{"customer_id":"cust_789","priority":"high"},"status":"ok","started_at":"2026-11-29T22:19:34.123456Z","ended_at":"2026-11-29T22:19:34.935856Z","duration_ms":812.4,"usage":{"input_tokens":120,"output_tokens":340,"total_tokens":460},"cost_usd":0.000222,"offline":false,"error":null,"spans":[{"span_id":"span_0000000000000001","parent_id":null,"kind":"custom","name":"Order Validation","status":"ok","started_at":"2026-11-29T22:19:34.123556Z","ended_at":"2026-11-29T22:19:34.135856Z","duration_ms":12.3,"attributes":{},"events":[{"name":"Validation started","time":"2026-11-29T22:19:34.123606Z","attributes":{"order_id":"ORD-1"}}],"error":null},{"span_id":"span_0000000000000002","parent_id":"span_0000000000000001","kind":"command","name":"Inventory Check","status":"ok","started_at":"2026-11-29T22:19:34.123656Z","ended_at":"2026-11-29T22:19:34.128756Z","duration_ms":5.1,"attributes":{"argv":["./check.sh"],"exit_code":0},"events":[],"error":null}]}"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn run_and_summary_json_have_the_documented_shape() {
        let mut trace = sample_trace();
        trace.status = Status::Error;
        trace.error = Some(ErrorInfo::new("step notify failed"));
        trace.ended_at = Some(Timestamp(T0 + 1_234));
        let outputs = obj(json!({"research": "five bullets", "count": 3}));
        assert_eq!(
            serde_json::to_string(&run_json(&trace, &outputs)).unwrap(),
            r#"{"trace_id":"trace_0192abcd000000000000000000000042","name":"Customer Support - Initial Inquiry","workflow":"Customer Support","group_id":"conv_12345","status":"error","duration_ms":1.234,"outputs":{"research":"five bullets","count":3},"usage":{"input_tokens":120,"output_tokens":340,"total_tokens":460},"cost_usd":0.000222,"offline":false,"error":{"message":"step notify failed","data":{}}}"#
        );
        trace.ended_at = None;
        trace.status = Status::Running;
        trace.error = None;
        trace.group_id = None;
        trace.cost_usd = Some(0.0);
        trace
            .metadata
            .insert(crate::trace::model::META_OFFLINE.into(), json!(true));
        assert_eq!(
            serde_json::to_string(&summary_json(&trace)).unwrap(),
            r#"{"trace_id":"trace_0192abcd000000000000000000000042","name":"Customer Support - Initial Inquiry","workflow":"Customer Support","group_id":null,"status":"running","started_at":"2026-11-29T22:19:34.123456Z","duration_ms":null,"usage":{"input_tokens":120,"output_tokens":340,"total_tokens":460},"cost_usd":0.0,"offline":true,"error":null,"metadata":{"customer_id":"cust_789","priority":"high","agentrace.offline":true}}"#
        );
    }
}
