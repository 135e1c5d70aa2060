//! Scores: how good a run (or one of its steps) was, by a check, a command, a judge model or a
//! person.
//!
//! A score is recorded as an event on the span it scores, named and shaped as OpenTelemetry's
//! GenAI evaluation event (`gen_ai.evaluation.result` with `gen_ai.evaluation.name`,
//! `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`,
//! `gen_ai.evaluation.explanation`), plus agentrace's own `agentrace.evaluation.*` attributes for
//! what that convention has no name for (pass/fail, the threshold, the source, an error). So a
//! score travels wherever events do: the store, `show`, every export, and the traces other tools
//! send to `serve` with the same event.
//!
//! Where a score sits: the engine runs each scorer of a workflow's `scores:` in a span of kind
//! `score` named after it (under the step's span for a step's scores, at the top level for the
//! trace's) and records the result on that span; a judge's generation is that span's child. A
//! score added later to a whole trace (a person's, `agentrace score`) goes on its first root
//! span ([`trace_score_span`]).

use serde_json::{Map, Value, json};

use super::{Event, Span, SpanId, Timestamp, TraceDoc};

/// The event name of a score (OpenTelemetry GenAI semantic conventions).
pub const EVALUATION_EVENT: &str = "gen_ai.evaluation.result";

const NAME: &str = "gen_ai.evaluation.name";
const VALUE: &str = "gen_ai.evaluation.score.value";
const LABEL: &str = "gen_ai.evaluation.score.label";
const EXPLANATION: &str = "gen_ai.evaluation.explanation";
const PASSED: &str = "agentrace.evaluation.passed";
const THRESHOLD: &str = "agentrace.evaluation.threshold";
const SOURCE: &str = "agentrace.evaluation.source";
const ERROR: &str = "agentrace.evaluation.error";

/// Who gave a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScoreSource {
    /// A built-in check (`equals`, `contains`, a path check, …).
    Check,
    /// A `command:` scorer: a process that read the case and printed the score.
    Command,
    /// A judge agent (LLM-as-judge).
    Judge,
    /// A person, with `agentrace score`.
    Human,
}

impl ScoreSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreSource::Check => "check",
            ScoreSource::Command => "command",
            ScoreSource::Judge => "judge",
            ScoreSource::Human => "human",
        }
    }

    pub fn parse(s: &str) -> Option<ScoreSource> {
        match s {
            "check" => Some(ScoreSource::Check),
            "command" => Some(ScoreSource::Command),
            "judge" => Some(ScoreSource::Judge),
            "human" => Some(ScoreSource::Human),
            _ => None,
        }
    }
}

/// One score.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The scorer's name (`correct`, `helpfulness`); unique per span.
    pub name: String,
    /// The number, when the scorer gave one (a pass is 1, a fail 0 for checks).
    pub value: Option<f64>,
    /// A category (`correct`, `partially correct`), when the scorer gave one.
    pub label: Option<String>,
    /// Why, in the scorer's words.
    pub explanation: Option<String>,
    /// Whether it passed: against the threshold, or the check's own verdict. `None` for a score
    /// with no pass/fail meaning (a human's 4 of 5 without a threshold).
    pub passed: Option<bool>,
    /// The value at or above which the score passes, when one was set.
    pub threshold: Option<f64>,
    pub source: ScoreSource,
    /// Why no score could be given (a command that failed, a judge that answered off-scale);
    /// such a score never passes.
    pub error: Option<String>,
}

impl Score {
    /// A score with just a name and a source; fill in the rest.
    pub fn new(name: impl Into<String>, source: ScoreSource) -> Score {
        Score {
            name: name.into(),
            value: None,
            label: None,
            explanation: None,
            passed: None,
            threshold: None,
            source,
            error: None,
        }
    }

    /// A score that could not be given: no value, not a pass.
    pub fn failed(name: impl Into<String>, source: ScoreSource, error: impl Into<String>) -> Score {
        Score {
            passed: Some(false),
            error: Some(error.into()),
            ..Score::new(name, source)
        }
    }

    /// Whether this score counts as a pass (an error never does).
    pub fn is_pass(&self) -> bool {
        self.error.is_none() && self.passed == Some(true)
    }

    /// The score as the event recorded on the span it scores.
    pub fn to_event(&self, time: Timestamp) -> Event {
        let mut a = Map::new();
        a.insert(NAME.into(), json!(self.name));
        if let Some(v) = self.value.filter(|v| v.is_finite()) {
            a.insert(VALUE.into(), json!(v));
        }
        if let Some(l) = &self.label {
            a.insert(LABEL.into(), json!(l));
        }
        if let Some(e) = &self.explanation {
            a.insert(EXPLANATION.into(), json!(e));
        }
        if let Some(p) = self.passed {
            a.insert(PASSED.into(), json!(p));
        }
        if let Some(t) = self.threshold.filter(|t| t.is_finite()) {
            a.insert(THRESHOLD.into(), json!(t));
        }
        a.insert(SOURCE.into(), json!(self.source.as_str()));
        if let Some(e) = &self.error {
            a.insert(ERROR.into(), json!(e));
        }
        Event {
            name: EVALUATION_EVENT.into(),
            time,
            attributes: a,
        }
    }

    /// The score an event records, if it is an evaluation event with a name. An event another
    /// tool sent, with the convention's attributes only, reads as a `check` with no pass/fail.
    pub fn from_event(event: &Event) -> Option<Score> {
        if event.name != EVALUATION_EVENT {
            return None;
        }
        let a = &event.attributes;
        let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
        let number = |k: &str| match a.get(k) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let name = text(NAME).filter(|n| !n.is_empty())?;
        Some(Score {
            name,
            value: number(VALUE),
            label: text(LABEL),
            explanation: text(EXPLANATION),
            passed: a.get(PASSED).and_then(Value::as_bool),
            threshold: number(THRESHOLD),
            source: text(SOURCE)
                .and_then(|s| ScoreSource::parse(&s))
                .unwrap_or(ScoreSource::Check),
            error: text(ERROR),
        })
    }
}

/// Every score in a trace, with the span it is on, in span order then event order.
pub fn scores_of(doc: &TraceDoc) -> Vec<(SpanId, Score)> {
    doc.spans
        .iter()
        .flat_map(|s| {
            s.events
                .iter()
                .filter_map(Score::from_event)
                .map(|score| (s.span_id, score))
        })
        .collect()
}

/// The span a score of the whole trace goes on: the first root span.
pub fn trace_score_span(spans: &[Span]) -> Option<&Span> {
    spans.iter().find(|s| s.parent_id.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_round_trips_through_its_event_with_the_genai_names() {
        let score = Score {
            value: Some(0.75),
            label: Some("mostly right".into()),
            explanation: Some("misses the date".into()),
            passed: Some(true),
            threshold: Some(0.5),
            ..Score::new("correct", ScoreSource::Judge)
        };
        let event = score.to_event(Timestamp(1));
        assert_eq!(event.name, "gen_ai.evaluation.result");
        assert_eq!(event.attributes["gen_ai.evaluation.name"], json!("correct"));
        assert_eq!(
            event.attributes["gen_ai.evaluation.score.value"],
            json!(0.75)
        );
        assert_eq!(
            event.attributes["gen_ai.evaluation.score.label"],
            json!("mostly right")
        );
        assert_eq!(
            event.attributes["gen_ai.evaluation.explanation"],
            json!("misses the date")
        );
        assert_eq!(Score::from_event(&event), Some(score));
    }

    #[test]
    fn errors_never_pass_and_foreign_events_read_as_checks() {
        let s = Score::failed("tone", ScoreSource::Command, "exit status 3");
        assert!(!s.is_pass());
        let back = Score::from_event(&s.to_event(Timestamp(0))).unwrap();
        assert_eq!(back.error.as_deref(), Some("exit status 3"));
        let mut passing = Score::new("x", ScoreSource::Check);
        passing.passed = Some(true);
        assert!(passing.is_pass());
        // Another tool's evaluation event: only the convention's attributes.
        let foreign = Event {
            name: EVALUATION_EVENT.into(),
            time: Timestamp(0),
            attributes: json!({"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": "0.5"})
                .as_object()
                .cloned()
                .unwrap(),
        };
        let read = Score::from_event(&foreign).unwrap();
        assert_eq!(read.value, Some(0.5));
        assert_eq!(read.source, ScoreSource::Check);
        assert_eq!(read.passed, None);
        let nameless = Event {
            attributes: Map::new(),
            ..foreign
        };
        assert_eq!(Score::from_event(&nameless), None);
    }
}
