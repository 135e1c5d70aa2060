//! Arize Phoenix: the traces over OTLP, and their scores as Phoenix span annotations.
//!
//! Phoenix keeps evaluations as annotations on spans (`POST /v1/span_annotations`: a name, an
//! annotator kind, and a result of label, score and explanation), not as span events, so a score
//! sent only as the `gen_ai.evaluation.result` event would not show in its annotation columns.
//! `export --phoenix URL` sends both: the OTLP push (protobuf, the one encoding Phoenix accepts),
//! then one annotation per score. Annotations carry the identifier `agentrace`, so exporting the
//! same trace again updates them instead of adding copies.
//!
//! `PHOENIX_API_KEY`, when set, is sent as a bearer token to both endpoints (and kept out of
//! every message).

use serde_json::{Value, json};

use super::otlp::push::{self, Delivered, Protocol, PushConfig, Request};
use crate::trace::redact;
use crate::trace::score::scores_of;
use crate::trace::{ScoreSource, TraceDoc};

/// What the annotations are known by in Phoenix: re-sending updates them.
pub const IDENTIFIER: &str = "agentrace";

/// How long the annotations wait for their spans to be stored.
const SPANS_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What `export --phoenix` delivered.
#[derive(Debug, Default)]
pub struct Sent {
    pub traces: Delivered,
    pub annotations: usize,
}

/// The push configuration for Phoenix at `base`: OTLP protobuf (Phoenix refuses OTLP JSON) with
/// the OpenTelemetry variables' headers, plus `PHOENIX_API_KEY` as a bearer token.
pub fn config(base: &str) -> Result<PushConfig, String> {
    let mut config = PushConfig::from_env(Some(base))?;
    config.protocol = Protocol::Protobuf;
    if let Some(key) = std::env::var("PHOENIX_API_KEY")
        .ok()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
    {
        redact::register(&key);
        config
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        config
            .headers
            .push(("authorization".into(), format!("Bearer {key}")));
    }
    Ok(config)
}

/// Phoenix's annotator kind for a score's source.
fn annotator_kind(source: ScoreSource) -> &'static str {
    match source {
        ScoreSource::Human => "HUMAN",
        ScoreSource::Judge => "LLM",
        ScoreSource::Check | ScoreSource::Command => "CODE",
    }
}

/// The `POST /v1/span_annotations` body for every score in `docs`, and how many there are.
pub fn annotations(docs: &[TraceDoc]) -> (Value, usize) {
    let mut data = Vec::new();
    for doc in docs {
        for (span, score) in scores_of(doc) {
            let mut result = serde_json::Map::new();
            if let Some(v) = score.value.filter(|v| v.is_finite()) {
                result.insert("score".into(), json!(v));
            }
            if let Some(l) = &score.label {
                result.insert("label".into(), json!(l));
            }
            let explanation = match (&score.error, &score.explanation) {
                (Some(e), _) => Some(format!("error: {e}")),
                (None, e) => e.clone(),
            };
            if let Some(e) = explanation {
                result.insert("explanation".into(), json!(e));
            }
            // The span id without its `span_` prefix: Phoenix wants the 16 hex digits.
            let span_hex = span.to_string().trim_start_matches("span_").to_string();
            data.push(json!({
                "span_id": span_hex,
                "name": score.name,
                "annotator_kind": annotator_kind(score.source),
                "result": result,
                "metadata": {
                    "source": score.source.as_str(),
                    "passed": score.passed,
                    "threshold": score.threshold,
                    "error": score.error,
                },
                "identifier": IDENTIFIER,
            }));
        }
    }
    let n = data.len();
    (json!({ "data": data }), n)
}

/// `base` + `/v1/span_annotations?sync=true` (synchronous: the annotations are there when it
/// answers).
fn annotations_url(base: &str) -> String {
    format!(
        "{}/v1/span_annotations?sync=true",
        base.trim_end_matches('/')
    )
}

/// Sends `docs` to Phoenix at `base`: each trace over OTLP, then the scores as annotations.
pub fn send_blocking(docs: &[TraceDoc], base: &str, config: &PushConfig) -> Result<Sent, String> {
    push::runtime()?.block_on(send(docs, base, config))
}

async fn send(docs: &[TraceDoc], base: &str, config: &PushConfig) -> Result<Sent, String> {
    let traces = push::push_each(docs, config).await?;
    let (body, n) = annotations(docs);
    if n == 0 {
        return Ok(Sent {
            traces,
            annotations: 0,
        });
    }
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let url = annotations_url(base);
    let headers: Vec<(String, String)> = config
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .cloned()
        .collect();
    let client = push::client(config.timeout)?;
    let request = Request {
        url: &url,
        content_type: "application/json",
        protocol: Protocol::Json,
        body: &body,
        gzip: false,
        headers: &headers,
        timeout: config.timeout,
    };
    // Phoenix stores pushed spans in the background (a bulk inserter, ~0.1 s after it answers)
    // and refuses annotations of spans it does not have yet with a 404: wait for them, a while.
    let deadline = std::time::Instant::now() + SPANS_WAIT;
    loop {
        match push::send(&client, &request).await {
            Ok(_) => break,
            Err(r) if r.status == Some(404) && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(r) => return Err(format!("span annotations: {}", r.message)),
        }
    }
    Ok(Sent {
        traces,
        annotations: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::fixture::every_kind;
    use crate::trace::{Score, Timestamp};

    #[test]
    fn every_score_becomes_one_annotation_of_its_span_with_its_kind_of_annotator() {
        let mut doc = every_kind();
        for span in &mut doc.spans {
            span.events
                .retain(|e| e.name != crate::trace::score::EVALUATION_EVENT);
        }
        let unscored = doc.clone();
        let judged = Score {
            value: Some(0.5),
            label: Some("partly".into()),
            explanation: Some("misses a step".into()),
            passed: Some(false),
            threshold: Some(0.7),
            ..Score::new("correct", ScoreSource::Judge)
        };
        let person = Score {
            value: Some(1.0),
            passed: Some(true),
            ..Score::new("useful", ScoreSource::Human)
        };
        let broken = Score::failed("tone", ScoreSource::Command, "exit status 2");
        doc.spans[0].events.push(judged.to_event(Timestamp(1)));
        doc.spans[1].events.push(person.to_event(Timestamp(2)));
        doc.spans[1].events.push(broken.to_event(Timestamp(3)));
        let (body, n) = annotations(std::slice::from_ref(&doc));
        assert_eq!(n, 3);
        let data = body["data"].as_array().unwrap();
        let first = &data[0];
        let hex = doc.spans[0].span_id.to_string()[5..].to_string();
        assert_eq!(first["span_id"], hex.as_str());
        assert_eq!(hex.len(), 16);
        assert_eq!(first["name"], "correct");
        assert_eq!(first["annotator_kind"], "LLM");
        assert_eq!(
            first["result"],
            json!({"score": 0.5, "label": "partly", "explanation": "misses a step"})
        );
        assert_eq!(first["metadata"]["passed"], false);
        assert_eq!(first["identifier"], "agentrace");
        assert_eq!(data[1]["annotator_kind"], "HUMAN");
        assert_eq!(data[2]["annotator_kind"], "CODE");
        assert_eq!(
            data[2]["result"],
            json!({"explanation": "error: exit status 2"})
        );
        assert_eq!(annotations(&[unscored]).1, 0);
        assert_eq!(
            annotations_url("http://h:6006/"),
            "http://h:6006/v1/span_annotations?sync=true"
        );
    }
}
