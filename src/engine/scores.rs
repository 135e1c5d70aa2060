//! Running `scores:`. Each scorer runs in a `score` span of its own, named after it: a child of
//! the step's span for a step's scores (run right after the step succeeded, its span still
//! open), at the top level after the last trace's steps for the workflow's. Its result is the
//! evaluation event on that span ([`Score::to_event`]). A scorer that fails or cannot give a
//! score never fails the step or the run: the score says so (`Score::failed`, never a pass).
//!
//! Built-in checks and path checks give 1 or 0. A `command:` scorer is a real process reading
//! `{case, output, outputs, reference}` on stdin and printing `{score, label?, explanation?}`.
//! A judge is the named agent asked, with a strict output schema, for `{reasoning, label}` or
//! `{reasoning, score}`; its generation is a child of the score span, and its tokens and cost
//! are recorded on that span, apart from the workflow's (see the recorder and `generation`).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::executor::{Frame, TraceRun};
use super::limits::RetryPolicy;
use super::path::{self, AgentPath};
use super::scope::Stop;
use crate::llm::{ChatRequest, Message};
use crate::trace::bound::truncate;
use crate::trace::{Score, ScoreSource, SpanHandle, SpanId, SpanKind, Status};
use crate::workflow::scores::{JudgeDef, JudgeScale, ScoreDef, ScoreKind};
use crate::workflow::{Located, LocatedValue};

/// How much of an output a message quotes.
const QUOTE_CHARS: usize = 200;

/// What the scorers of one step (or of the trace) look at.
pub(crate) struct Subject<'a> {
    /// The step's output (the trace's: its last step's).
    pub output: &'a str,
    /// The agent's path: the step's, or the trace's when a trace score needs it.
    pub path: Option<&'a AgentPath>,
}

impl TraceRun {
    /// Runs `scores` under `parent` (a step's span, or the top level), one after the other.
    pub(crate) async fn run_scores(
        &self,
        frame: &Frame,
        scores: &[ScoreDef],
        parent: Option<SpanId>,
        subject: &Subject<'_>,
    ) {
        for def in scores {
            if frame.scope.is_cancelled() {
                return;
            }
            self.run_score(frame, def, parent, subject).await;
        }
    }

    async fn run_score(
        &self,
        frame: &Frame,
        def: &ScoreDef,
        parent: Option<SpanId>,
        subject: &Subject<'_>,
    ) {
        let mut attrs = Map::new();
        attrs.insert("scorer".into(), json!(def.kind.key()));
        if let ScoreKind::Judge(judge) = &def.kind {
            attrs.insert("agent".into(), json!(judge.agent.value));
        }
        let span = self
            .rec
            .span(parent, SpanKind::Score, def.name.value.clone(), attrs);
        let name = def.name.value.as_str();
        let mut score = match &def.kind {
            ScoreKind::Command { argv, timeout } => {
                self.command_score(frame, &span, name, argv, *timeout, subject)
                    .await
            }
            ScoreKind::Judge(judge) => self.judge_score(frame, &span, name, judge, subject).await,
            kind => match self.check(frame, kind, subject).await {
                Ok((passed, why)) => Score {
                    value: Some(if passed { 1.0 } else { 0.0 }),
                    passed: Some(passed),
                    explanation: why.filter(|_| !passed),
                    ..Score::new(name, ScoreSource::Check)
                },
                Err(error) => Score::failed(name, ScoreSource::Check, error),
            },
        };
        // An explanation quotes the output (a check's) or may (a judge's reasoning).
        if self.engine.opts.no_content {
            score.explanation = None;
        }
        if let (Some(threshold), None) = (def.threshold, &score.error) {
            score.threshold = Some(threshold);
            score.passed = score.value.map(|v| v >= threshold);
        }
        let event = score.to_event(crate::trace::Timestamp::now());
        span.add_event(event.name, event.attributes);
        match &score.error {
            None => span.end(Status::Ok, None),
            Some(error) => span.end(
                Status::Error,
                Some(crate::trace::ErrorInfo::new(format!(
                    "score `{name}`: {error}"
                ))),
            ),
        }
    }

    /// A built-in or path check: its templates rendered, then [`evaluate`]d. `Err` when it
    /// could not be checked (a template that failed).
    async fn check(
        &self,
        frame: &Frame,
        kind: &ScoreKind,
        subject: &Subject<'_>,
    ) -> Result<(bool, Option<String>), String> {
        let want = match kind {
            ScoreKind::Equals { value, .. } => Some(self.value(frame, "equals", value).await?),
            ScoreKind::Within { of, .. } => Some(self.value(frame, "within.of", of).await?),
            ScoreKind::Contains(t) => Some(Value::String(self.text(frame, "contains", t).await?)),
            ScoreKind::NotContains(t) => {
                Some(Value::String(self.text(frame, "not_contains", t).await?))
            }
            ScoreKind::Matches(t) => Some(Value::String(self.text(frame, "matches", t).await?)),
            _ => None,
        };
        evaluate(kind, want.as_ref(), subject)
    }

    async fn text(
        &self,
        frame: &Frame,
        field: &str,
        t: &Located<String>,
    ) -> Result<String, String> {
        self.render(frame, &format!("scores.{field}"), t.loc, &t.value)
            .await
            .map_err(|f| f.error.message)
    }

    async fn value(&self, frame: &Frame, field: &str, v: &LocatedValue) -> Result<Value, String> {
        self.render_value(frame, &format!("scores.{field}"), v)
            .await
            .map_err(|f| f.error.message)
    }

    /// What a `command:` scorer reads on stdin.
    fn scorer_input(&self, output: &str) -> Value {
        let outputs = self
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let reference = self
            .engine
            .opts
            .case
            .as_ref()
            .map(|c| Value::Object(c.reference.clone()))
            .unwrap_or_else(|| json!({}));
        json!({
            "case": self.engine.case_value(),
            "output": output,
            "outputs": outputs,
            "reference": reference,
        })
    }

    async fn command_score(
        &self,
        frame: &Frame,
        span: &SpanHandle,
        name: &str,
        argv: &[Located<String>],
        timeout: Duration,
        subject: &Subject<'_>,
    ) -> Score {
        let failed = |error: String| Score::failed(name, ScoreSource::Command, error);
        let mut args = Vec::with_capacity(argv.len());
        for arg in argv {
            match self.text(frame, "command", arg).await {
                Ok(a) => args.push(a),
                Err(e) => return failed(e),
            }
        }
        span.set_attribute("argv", json!(args));
        let program = args.first().cloned().unwrap_or_default();
        let stdin = self.scorer_input(subject.output).to_string().into_bytes();
        // The scorer's own time limit: a child scope, so Ctrl-C still stops it too.
        let scope = frame.scope.child();
        let inner = frame.with_scope(scope.clone());
        let work = self.run_process(&inner, span, &program, self.program(&args), Some(stdin));
        tokio::pin!(work);
        let finished = tokio::select! {
            r = &mut work => r,
            () = tokio::time::sleep(timeout) => {
                scope.stop(Stop::TimedOut { what: format!("scorer `{name}`"), after: timeout });
                work.await
            }
        };
        let done = match finished {
            Ok(done) => done,
            Err(failure) => return failed(failure.error.message),
        };
        if !done.status.success() {
            return failed(done.failure_message(&format!("scorer `{program}`"), false));
        }
        match parse_command_score(&done.stdout) {
            Ok(mut score) => {
                score.name = name.to_string();
                score
            }
            Err(why) => {
                let mut message = format!("scorer `{program}` printed {why}");
                if !done.stderr_tail.is_empty() {
                    message.push_str(&format!("; stderr: {}", done.stderr_tail.trim()));
                }
                failed(message)
            }
        }
    }

    async fn judge_score(
        &self,
        frame: &Frame,
        span: &SpanHandle,
        name: &str,
        judge: &JudgeDef,
        subject: &Subject<'_>,
    ) -> Score {
        let failed = |error: String| Score::failed(name, ScoreSource::Judge, error);
        let agent = judge.agent.value.as_str();
        let wf = &self.engine.wf;
        let (Some(def), Some(model)) = (wf.agents.get(agent), self.engine.models.for_agent(agent))
        else {
            return failed(format!("no model client for the judge `{agent}`"));
        };
        let rubric = match self.text(frame, "judge.rubric", &judge.rubric).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let instructions = match &def.instructions {
            Some(i) => match self.render(frame, "instructions", i.loc, &i.value).await {
                Ok(text) => text,
                Err(f) => return failed(f.error.message),
            },
            None => String::new(),
        };
        let scripted = match &judge.mock {
            Some(mock) => match self.text(frame, "judge.mock", mock).await {
                Ok(text) => Some(crate::llm::Scripted::Text(text)),
                Err(e) => return failed(e),
            },
            None => None,
        };
        let (schema, ask) = judge_schema(&judge.scale);
        let mut system = String::new();
        if !instructions.is_empty() {
            system.push_str(&instructions);
            system.push_str("\n\n");
        }
        system.push_str("You grade an answer against a rubric. ");
        system.push_str(&ask);
        let case = self.engine.case_value();
        let mut user = format!("Rubric:\n{rubric}\n\n");
        if case.as_object().is_some_and(|c| !c.is_empty()) {
            user.push_str(&format!("Case:\n{case}\n\n"));
        }
        user.push_str(&format!("Answer to grade:\n{}", subject.output));
        let model_name = def
            .model
            .as_ref()
            .or(wf.model.as_ref())
            .map(|m| m.value.clone())
            .unwrap_or_default();
        let request = ChatRequest {
            model: model_name.clone(),
            messages: vec![Message::system(system), Message::user(user)],
            temperature: def.temperature,
            max_tokens: def.max_tokens,
            seed: def.seed,
            tools: Vec::new(),
            output_schema: Some((format!("{name}_verdict"), schema)),
            stream: model.streams(),
            scripted,
            reasoning: super::models::reasoning_of(def),
        };
        let retry = RetryPolicy::resolve(&[def.retry.as_ref(), wf.retry.as_ref()]);
        let response = match self
            .generation(frame, span, agent, model.as_ref(), &request, retry, true)
            .await
        {
            Ok(r) => r,
            Err(failure) => return failed(failure.error.message),
        };
        if let Some(cost) = self.engine.prices.cost(&model_name, response.usage) {
            span.set_attribute("cost_usd", json!(cost));
        }
        parse_verdict(name, &judge.scale, &response.text).unwrap_or_else(failed)
    }

    /// The workflow's `scores:`, after the last trace's steps, at the top level of that trace.
    pub(crate) async fn run_trace_scores(&self, frame: &Frame) {
        let wf = &self.engine.wf;
        if wf.scores.is_empty() {
            return;
        }
        let output = frame.ctx.steps.last();
        let path = self.path.as_ref().map(|p| {
            p.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        });
        let subject = Subject {
            output: output.as_ref().map_or("", |o| o.text()),
            path: path.as_ref(),
        };
        self.run_scores(frame, &wf.scores, None, &subject).await;
    }

    /// Adds an agent step's path to the trace's, when a trace score reads it.
    pub(crate) fn note_path(&self, step_path: &AgentPath) {
        if let Some(path) = &self.path {
            path.lock()
                .unwrap_or_else(|p| p.into_inner())
                .merge(step_path);
        }
    }
}

/// A check's verdict on `subject`, with `want` the rendered value it compares with (`equals`,
/// `within.of`, the text of `contains`, `not_contains` and `matches`): whether it passed and,
/// when it did not, why. `Err` when it cannot be checked (a regular expression that does not
/// compile once rendered).
fn evaluate(
    kind: &ScoreKind,
    want: Option<&Value>,
    subject: &Subject<'_>,
) -> Result<(bool, Option<String>), String> {
    let output = subject.output;
    let got = quote(output);
    Ok(match kind {
        ScoreKind::Equals { path: None, .. } => {
            let want = text_of(want.unwrap_or(&Value::Null));
            (
                output.trim() == want.trim(),
                Some(format!(
                    "expected output to equal {}, got {got}",
                    quote(&want)
                )),
            )
        }
        ScoreKind::Equals {
            path: Some(path), ..
        } => {
            let want = want.unwrap_or(&Value::Null);
            let doc = match json_output(output) {
                Ok(doc) => doc,
                Err(why) => return Ok((false, Some(why))),
            };
            let Some(actual) = path.get(&doc) else {
                return Ok((
                    false,
                    Some(format!("{} is not in the output", path.written)),
                ));
            };
            (
                json_equal(actual, want),
                Some(format!(
                    "expected {} to equal {want}, got {actual}",
                    path.written
                )),
            )
        }
        ScoreKind::Contains(_) => {
            let needle = text_of(want.unwrap_or(&Value::Null));
            (
                output.contains(&needle),
                Some(format!(
                    "expected output to contain {}, got {got}",
                    quote(&needle)
                )),
            )
        }
        ScoreKind::NotContains(_) => {
            let needle = text_of(want.unwrap_or(&Value::Null));
            (
                !output.contains(&needle),
                Some(format!("expected output not to contain {}", quote(&needle))),
            )
        }
        ScoreKind::Matches(_) => {
            let pattern = text_of(want.unwrap_or(&Value::Null));
            let re = regex::Regex::new(&pattern)
                .map_err(|e| format!("`matches` is not a valid regular expression: {e}"))?;
            (
                re.is_match(output),
                Some(format!("expected output to match /{pattern}/, got {got}")),
            )
        }
        ScoreKind::JsonSchema(schema) => {
            let validator = jsonschema::validator_for(&schema.value)
                .map_err(|e| format!("the JSON Schema does not compile: {e}"))?;
            let doc = match serde_json::from_str::<Value>(output) {
                Ok(doc) => doc,
                Err(e) => return Ok((false, Some(format!("the output is not JSON ({e})")))),
            };
            let errors = super::schema_errors(&validator, &doc);
            (
                errors.is_empty(),
                Some(format!(
                    "the output does not match the JSON Schema: {}",
                    errors.join("; ")
                )),
            )
        }
        ScoreKind::Within {
            path, tolerance, ..
        } => {
            let want = want.unwrap_or(&Value::Null);
            let want =
                number_of(want).ok_or_else(|| format!("`within.of` is not a number: {want}"))?;
            let actual = match path {
                None => output.trim().parse::<f64>().ok(),
                Some(path) => {
                    let doc = match json_output(output) {
                        Ok(doc) => doc,
                        Err(why) => return Ok((false, Some(why))),
                    };
                    path.get(&doc).and_then(number_of)
                }
            };
            let Some(actual) = actual else {
                let at = path.as_ref().map_or("the output", |p| p.written.as_str());
                return Ok((false, Some(format!("{at} is not a number"))));
            };
            (
                (actual - want).abs() <= *tolerance,
                Some(format!("expected {want} ± {tolerance}, got {actual}")),
            )
        }
        ScoreKind::Path(check) => {
            let empty = AgentPath::default();
            let v = path::check(check, subject.path.unwrap_or(&empty));
            (v.passed, Some(v.phrase))
        }
        ScoreKind::Command { .. } | ScoreKind::Judge(_) => {
            return Err("not a check".into());
        }
    })
}

/// A text quoted for a message: JSON string syntax, cut to [`QUOTE_CHARS`].
fn quote(s: &str) -> String {
    serde_json::to_string(&truncate(s, QUOTE_CHARS)).unwrap_or_default()
}

/// A rendered value as text: a string as it is, anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn json_output(output: &str) -> Result<Value, String> {
    serde_json::from_str(output).map_err(|e| format!("the output is not JSON ({e})"))
}

/// Equality of JSON values with numbers by value (`1` equals `1.0`) and a scalar equal to its
/// text (a CSV reference `"42"` equals the output's `42`).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w))
        }
        (Value::String(s), other @ (Value::Number(_) | Value::Bool(_)))
        | (other @ (Value::Number(_) | Value::Bool(_)), Value::String(s)) => {
            *s.trim() == *other.to_string() || number_of(other) == s.trim().parse::<f64>().ok()
        }
        (x, y) => x == y,
    }
}

/// The score a `command:` scorer printed: one JSON object `{score, label?, explanation?}` with
/// `score` a number or a boolean. `Err` says what was printed instead.
fn parse_command_score(stdout: &str) -> Result<Score, String> {
    let text = stdout.trim();
    if text.is_empty() {
        return Err("nothing on stdout; it must print `{\"score\": …}`".into());
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("stdout that is not JSON ({e}): {}", quote(text)))?;
    let Value::Object(obj) = value else {
        return Err(format!("{text} on stdout, not a JSON object"));
    };
    let mut score = Score::new("", ScoreSource::Command);
    match obj.get("score") {
        Some(Value::Bool(b)) => {
            score.value = Some(if *b { 1.0 } else { 0.0 });
            score.passed = Some(*b);
        }
        Some(Value::Number(n)) => score.value = n.as_f64(),
        Some(other) => {
            return Err(format!(
                "a `score` that is {other}, not a number or a boolean"
            ));
        }
        None => return Err(format!("an object without `score`: {}", quote(text))),
    }
    let text_field = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("a `{k}` that is {other}, not a string")),
        }
    };
    score.label = text_field("label")?;
    score.explanation = text_field("explanation")?;
    Ok(score)
}

/// The judge's output schema and what it is told about it.
fn judge_schema(scale: &JudgeScale) -> (Value, String) {
    match scale {
        JudgeScale::Choices(choices) => {
            let labels: Vec<&String> = choices.keys().collect();
            (
                json!({
                    "type": "object",
                    "properties": {
                        "reasoning": {"type": "string"},
                        "label": {"type": "string", "enum": labels},
                    },
                    "required": ["reasoning", "label"],
                    "additionalProperties": false,
                }),
                format!(
                    "Answer with JSON: your reasoning, then one label of: {}.",
                    labels
                        .iter()
                        .map(|l| format!("\"{l}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
        JudgeScale::Range(min, max) => (
            json!({
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string"},
                    "score": {"type": "number", "minimum": min, "maximum": max},
                },
                "required": ["reasoning", "score"],
                "additionalProperties": false,
            }),
            format!("Answer with JSON: your reasoning, then a score from {min} to {max}."),
        ),
    }
}

/// The score in a judge's reply; `Err` says why the reply is not one (malformed, off-scale).
fn parse_verdict(name: &str, scale: &JudgeScale, text: &str) -> Result<Score, String> {
    let value: Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("the judge's reply is not JSON ({e}): {}", quote(text)))?;
    let reasoning = value
        .get("reasoning")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut score = Score {
        explanation: reasoning,
        ..Score::new(name, ScoreSource::Judge)
    };
    match scale {
        JudgeScale::Choices(choices) => {
            let label = value
                .get("label")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the judge's reply has no `label`: {}", quote(text)))?;
            let Some(v) = choices.get(label) else {
                let known: Vec<&str> = choices.keys().map(String::as_str).collect();
                return Err(format!(
                    "the judge answered the label {}, which is not one of the choices ({})",
                    quote(label),
                    known.join(", ")
                ));
            };
            score.value = Some(*v);
            score.label = Some(label.to_string());
        }
        JudgeScale::Range(min, max) => {
            let v = value.get("score").and_then(Value::as_f64).ok_or_else(|| {
                format!("the judge's reply has no numeric `score`: {}", quote(text))
            })?;
            if !(*min..=*max).contains(&v) {
                return Err(format!(
                    "the judge's score {v} is off the scale [{min}, {max}]"
                ));
            }
            score.value = Some(v);
        }
    }
    Ok(score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;

    #[test]
    fn command_scores_are_one_json_object_with_a_number_or_a_boolean() {
        let s =
            parse_command_score(r#"{"score": 0.8, "label": "good", "explanation": "ok"}"#).unwrap();
        assert_eq!(
            (
                s.value,
                s.label.as_deref(),
                s.explanation.as_deref(),
                s.passed
            ),
            (Some(0.8), Some("good"), Some("ok"), None)
        );
        let s = parse_command_score("{\"score\": true}\n").unwrap();
        assert_eq!((s.value, s.passed), (Some(1.0), Some(true)));
        for (bad, why) in [
            ("", "nothing on stdout"),
            ("score: 1", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"label": "x"}"#, "without `score`"),
            (r#"{"score": "high"}"#, "not a number or a boolean"),
            (r#"{"score": 1, "label": 3}"#, "not a string"),
        ] {
            let e = parse_command_score(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn verdicts_map_labels_to_values_and_reject_off_scale_replies() {
        let choices = JudgeScale::Choices(IndexMap::from([
            ("correct".to_string(), 1.0),
            ("wrong".to_string(), 0.0),
        ]));
        let s = parse_verdict(
            "c",
            &choices,
            r#"{"reasoning": "fine", "label": "correct"}"#,
        )
        .unwrap();
        assert_eq!(
            (s.value, s.label.as_deref(), s.explanation.as_deref()),
            (Some(1.0), Some("correct"), Some("fine"))
        );
        let e = parse_verdict("c", &choices, r#"{"reasoning": "", "label": "maybe"}"#).unwrap_err();
        assert!(e.contains("not one of the choices (correct, wrong)"), "{e}");
        let e = parse_verdict("c", &choices, "I think it is correct").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
        let range = JudgeScale::Range(1.0, 5.0);
        let s = parse_verdict("r", &range, r#"{"reasoning": "ok", "score": 4}"#).unwrap();
        assert_eq!(s.value, Some(4.0));
        let e = parse_verdict("r", &range, r#"{"reasoning": "ok", "score": 9}"#).unwrap_err();
        assert!(e.contains("off the scale [1, 5]"), "{e}");
        let e = parse_verdict("r", &range, r#"{"reasoning": "ok"}"#).unwrap_err();
        assert!(e.contains("no numeric `score`"), "{e}");
    }

    #[derive(Default)]
    struct Ended(std::sync::Mutex<Vec<crate::trace::Span>>);

    impl crate::trace::Sink for Ended {
        fn trace_started(&self, _: &crate::trace::Trace) {}
        fn span_started(&self, _: &std::sync::Arc<crate::trace::StartedSpan>) {}
        fn span_ended(&self, s: &std::sync::Arc<crate::trace::Span>) {
            self.0.lock().unwrap().push((**s).clone());
        }
        fn trace_ended(&self, _: &crate::trace::Trace) {}
    }

    /// The case of an evaluation reaches the run: its vars over the workflow's, its id and
    /// reference fields as `case` in the scores' templates and on a command scorer's stdin.
    #[tokio::test]
    async fn the_evaluated_case_is_read_by_vars_templates_and_command_scorers() {
        let dir = std::env::temp_dir().join(format!("agentrace-case-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.yaml");
        let src = "name: t\nvars: { city: Rome }\nsteps:\n  - id: say\n    run: [echo, \"{{ vars.city }}\"]\n    scores:\n      - { name: right, equals: \"{{ case.expected }}\" }\n      - name: seen\n        command: [sh, -c, \"cat > seen.json; echo '{\\\"score\\\": true}'\"]\n";
        std::fs::write(&path, src).unwrap();
        let wf = crate::workflow::load(&path).unwrap();
        let opts = super::super::RunOptions {
            offline: true,
            case: Some(super::super::CaseInput {
                id: "c7".into(),
                vars: serde_json::from_value(json!({"city": "Paris"})).unwrap(),
                reference: serde_json::from_value(json!({"expected": "Paris"})).unwrap(),
            }),
            ..Default::default()
        };
        let engine = std::sync::Arc::new(super::super::Engine::new(wf, opts).unwrap());
        let sink = std::sync::Arc::new(Ended::default());
        let outcome = engine
            .run(
                vec![sink.clone()],
                tokio_util::sync::CancellationToken::new(),
            )
            .await;
        assert_eq!(outcome.status, Status::Ok);
        let spans = sink.0.lock().unwrap().clone();
        let score = |name: &str| {
            let span = spans.iter().find(|s| s.name == name).unwrap();
            assert_eq!(span.kind, SpanKind::Score);
            Score::from_event(&span.events[0]).unwrap()
        };
        assert!(score("right").is_pass(), "{:?}", score("right"));
        assert!(score("seen").is_pass(), "{:?}", score("seen"));
        let stdin: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("seen.json")).unwrap()).unwrap();
        assert_eq!(
            stdin,
            json!({"case": {"id": "c7", "expected": "Paris"}, "output": "Paris",
                   "outputs": {"say": "Paris"}, "reference": {"expected": "Paris"}})
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn kind(src: &str) -> ScoreKind {
        let yaml = format!("name: t\nsteps:\n  - run: [echo]\n    scores:\n      - {src}\n");
        let (wf, diags) = crate::workflow::check_str("w.yaml", "w.yaml".into(), &yaml);
        assert_eq!(diags, [], "{src}");
        wf.unwrap().traces[0].steps[0].scores[0].kind.clone()
    }

    fn verdict(src: &str, want: Option<Value>, output: &str) -> (bool, Option<String>) {
        let subject = Subject { output, path: None };
        evaluate(&kind(src), want.as_ref(), &subject).unwrap()
    }

    #[test]
    fn text_checks_compare_the_output_with_the_rendered_value() {
        let paris = Some(json!("Paris"));
        assert!(verdict("{ name: e, equals: x }", paris.clone(), " Paris\n").0);
        let (passed, why) = verdict("{ name: e, equals: x }", paris.clone(), "Rome");
        assert!(!passed);
        assert_eq!(
            why.unwrap(),
            r#"expected output to equal "Paris", got "Rome""#
        );
        assert!(verdict("{ name: e, equals: x }", Some(json!(42)), "42").0);
        assert!(verdict("{ name: c, contains: x }", paris.clone(), "To Paris!").0);
        assert!(!verdict("{ name: c, contains: x }", paris.clone(), "To Rome!").0);
        assert!(verdict("{ name: n, not_contains: x }", paris.clone(), "Rome").0);
        assert!(!verdict("{ name: n, not_contains: x }", paris.clone(), "Paris").0);
        let re = Some(json!("^P[a-z]+$"));
        assert!(verdict("{ name: m, matches: x }", re.clone(), "Paris").0);
        assert!(!verdict("{ name: m, matches: x }", re, "paris").0);
        // A pattern that only a rendered template made invalid cannot be checked.
        let subject = Subject {
            output: "x",
            path: None,
        };
        let bad = evaluate(
            &kind("{ name: m, matches: x }"),
            Some(&json!("(")),
            &subject,
        );
        assert!(bad.unwrap_err().contains("not a valid regular expression"));
    }

    #[test]
    fn json_checks_read_the_output_as_json() {
        let out = r#"{"a": {"b": [7, {"c": "x"}]}, "n": 41.6}"#;
        let schema = "{ name: s, json_schema: { type: object, required: [a] } }";
        assert!(verdict(schema, None, out).0);
        let (passed, why) = verdict(schema, None, "not json");
        assert!(!passed && why.unwrap().contains("not JSON"));
        let schema = "{ name: s, json_schema: { type: object, required: [z] } }";
        assert!(!verdict(schema, None, out).0);
        let at = "{ name: p, json_path: \"$.a.b[0]\", equals: 7 }";
        assert!(verdict(at, Some(json!(7)), out).0);
        assert!(
            verdict(at, Some(json!("7")), out).0,
            "a CSV reference is text"
        );
        assert!(!verdict(at, Some(json!(8)), out).0);
        let deep = "{ name: p, json_path: \"$.a.b[1]\", equals: { c: x } }";
        assert!(verdict(deep, Some(json!({"c": "x"})), out).0);
        let (passed, why) = verdict(
            "{ name: p, json_path: $.zz, equals: 1 }",
            Some(json!(1)),
            out,
        );
        assert!(!passed);
        assert_eq!(why.unwrap(), "$.zz is not in the output");
        let (passed, why) = verdict(at, Some(json!(7)), "plain text");
        assert!(!passed && why.unwrap().contains("not JSON"));
    }

    #[test]
    fn within_compares_numbers_with_a_tolerance() {
        let near = "{ name: w, within: { of: 42, tolerance: 0.5 }, json_path: $.n }";
        let out = r#"{"n": 41.6}"#;
        assert!(verdict(near, Some(json!(42)), out).0);
        assert!(verdict(near, Some(json!("42")), out).0);
        let (passed, why) = verdict(near, Some(json!(40)), out);
        assert!(!passed);
        assert_eq!(why.unwrap(), "expected 40 ± 0.5, got 41.6");
        let plain = "{ name: w, within: { of: 3, tolerance: 0 } }";
        assert!(verdict(plain, Some(json!(3)), " 3\n").0);
        let (passed, why) = verdict(plain, Some(json!(3)), "three");
        assert!(!passed && why.unwrap().contains("not a number"));
        let subject = Subject {
            output: "3",
            path: None,
        };
        let e = evaluate(&kind(plain), Some(&json!("many")), &subject).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
    }

    #[test]
    fn path_scores_read_the_agent_path() {
        use crate::workflow::scores::PathCheck;
        let path = AgentPath {
            calls: vec![("lookup".into(), json!({"id": 7}))],
            handoffs: Vec::new(),
            turns: 2,
        };
        let subject = Subject {
            output: "",
            path: Some(&path),
        };
        let at_most = |n| ScoreKind::Path(PathCheck::MaxTurns(n));
        assert!(evaluate(&at_most(2), None, &subject).unwrap().0);
        let (passed, why) = evaluate(&at_most(1), None, &subject).unwrap();
        assert!(!passed);
        assert_eq!(why.unwrap(), "expected at most 1 model calls, made 2");
    }

    #[test]
    fn json_equality_is_by_value() {
        assert!(json_equal(&json!(1), &json!(1.0)));
        assert!(json_equal(&json!("42"), &json!(42)));
        assert!(json_equal(
            &json!({"a": [1, "x"]}),
            &json!({"a": [1.0, "x"]})
        ));
        assert!(!json_equal(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_equal(&json!([1, 2]), &json!([2, 1])));
        assert!(json_equal(&json!(true), &json!("true")));
    }
}
