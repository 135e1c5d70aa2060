//! Control flow: `if:` conditions, `parallel:` branches and `foreach:` loops.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::Failure;
use super::executor::{Frame, TraceRun, end_with, error_at};
use super::join::{join_branches, prepare_heap};
use super::scope::Stop;
use crate::trace::bound::truncate;
use crate::trace::{SpanHandle, SpanId, SpanKind, Status};
use crate::workflow::template::Output;
use crate::workflow::{Located, LocatedValue, Step, StepKind};

/// The longest span name an item gives its iteration.
const ITEM_NAME_MAX: usize = 60;

/// An `if:` as an expression: GitHub Actions style (`steps.x.status == 'ok'`) or wrapped in
/// `{{ }}`.
pub(crate) fn condition_expression(text: &str) -> &str {
    let t = text.trim();
    t.strip_prefix("{{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .map_or(t, str::trim)
}

fn item_name(item: &Value) -> String {
    let text = match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    truncate(&text, ITEM_NAME_MAX)
}

/// The most items one `foreach:` runs: each iteration holds a context, a span and a task, so a
/// list from a runaway command must not become a million of them.
pub const MAX_FOREACH_ITEMS: usize = 10_000;

impl TraceRun {
    /// The name a step's span gets: its `name:`, else its id, else its form.
    pub(crate) fn display_name(&self, step: &Step) -> String {
        match (&step.name, &step.id, &step.kind) {
            (Some(n), _, _) => n.value.clone(),
            (None, _, StepKind::Span { name, .. }) => name.value.clone(),
            // The convention: a parallel or foreach span is named by `name:` only.
            (None, _, StepKind::Parallel { .. }) => "parallel".into(),
            (None, _, StepKind::Foreach { .. }) => "foreach".into(),
            (None, Some(id), _) => id.value.clone(),
            (None, None, StepKind::Agent { agent, .. }) => agent.value.clone(),
            (None, None, kind) => match kind {
                StepKind::Parallel { .. } => "parallel".into(),
                StepKind::Foreach { .. } => "foreach".into(),
                _ => "step".into(),
            },
        }
    }

    pub(crate) async fn condition_holds(
        &self,
        frame: &Frame,
        condition: &Located<String>,
    ) -> Result<bool, Failure> {
        let expr = condition_expression(&condition.value);
        self.eval(frame, "if", condition.loc, expr)
            .await
            .map(|v| v.is_true())
    }

    /// Records a step whose `if:` was false as a `skipped` span.
    pub(crate) async fn skip(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<&SpanHandle>,
        condition: &Located<String>,
    ) {
        let reason = format!("if: {} was false", condition.value.trim());
        self.skipped_step(frame, step, parent.map(SpanHandle::id), &reason)
            .await;
    }

    /// A step that did not run as a `skipped` span with `reason`; its id reads as skipped to
    /// later templates. Returns the span's id.
    async fn skipped_step(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<SpanId>,
        reason: &str,
    ) -> SpanId {
        let kind = match step.kind {
            StepKind::Agent { .. } => SpanKind::Agent,
            StepKind::Run { .. } => SpanKind::Command,
            _ => SpanKind::Custom,
        };
        let name = match &step.kind {
            StepKind::Span { name, .. } => self
                .render(frame, "span", name.loc, &name.value)
                .await
                .unwrap_or_else(|_| name.value.clone()),
            _ => self.display_name(step),
        };
        let id = self
            .rec
            .skipped_span(parent, kind, name, self.step_attributes(step), reason);
        if let Some(id) = &step.id {
            frame
                .ctx
                .steps
                .insert(&id.value, &Output::Text(String::new()), "skipped");
        }
        id
    }

    /// Why the steps after `failure` did not run: "not run: step `boom` failed".
    pub(crate) fn not_run_reason(&self, failure: &Failure) -> String {
        match self.rec.failure_origin(&failure.error) {
            Some(origin) => format!("not run: {origin} failed"),
            None => "not run: an earlier step failed".to_string(),
        }
    }

    /// Records `steps`, which never ran because an earlier step failed, as `skipped` spans
    /// with `reason`, and the steps each holds under it (a `foreach:`'s items are not known,
    /// so its span stands alone). Events add nothing.
    pub(crate) fn skip_unrun<'s>(
        &'s self,
        frame: &'s Frame,
        steps: &'s [Step],
        parent: Option<SpanId>,
        reason: &'s str,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 's>> {
        Box::pin(async move {
            for step in steps {
                let inner: &[Step] = match &step.kind {
                    StepKind::Event(_) => continue,
                    StepKind::Span { steps, .. } => steps,
                    StepKind::Parallel { branches, .. } => branches,
                    _ => &[],
                };
                let id = self.skipped_step(frame, step, parent, reason).await;
                self.skip_unrun(frame, inner, Some(id), reason).await;
            }
        })
    }

    /// Branches run concurrently under one custom span. A failure fails the step once every
    /// branch is done, or at once with `fail_fast` (the others are cancelled).
    pub(crate) async fn run_parallel(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<SpanId>,
        branches: &[Step],
        fail_fast: bool,
    ) -> Result<(), Failure> {
        let mut attrs = self.step_attributes(step);
        attrs.insert("branches".into(), json!(branches.len()));
        let span = self
            .rec
            .span(parent, SpanKind::Custom, self.display_name(step), attrs);
        let scope = frame.scope.child();
        let inner = frame.with_scope(scope.clone());
        prepare_heap(branches.len());
        // Each branch is a task of its own, owning what it uses: the run, its frame and the
        // branches (copied once for the whole fan-out, shared by index).
        let run = self.arc();
        let shared: Arc<[Step]> = branches.into();
        let results = join_branches(
            (0..shared.len())
                .map(|i| {
                    let (run, shared, inner, scope) =
                        (run.clone(), shared.clone(), inner.clone(), scope.clone());
                    let parent = span.share();
                    async move {
                        // A branch that a fail-fast failure finds not yet started does not
                        // start (see `run_step`).
                        let result = run.run_step(&inner, &shared[i], Some(&parent)).await;
                        if fail_fast && matches!(&result, Err(f) if !f.cancelled) {
                            scope.stop(Stop::SiblingFailed);
                        }
                        result
                    }
                })
                .collect(),
        )
        .await;
        let result = first_failure(results);
        end_with(span, &result);
        result
    }

    /// The steps run once per item (at most `concurrency` at a time), each iteration under a
    /// custom span named with its item; the output is the list of each item's last output.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_foreach(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<SpanId>,
        items: &LocatedValue,
        as_name: &str,
        concurrency: u32,
        steps: &[Step],
    ) -> Result<(), Failure> {
        let mut attrs = self.step_attributes(step);
        let span_name = self.display_name(step);
        let list = self.foreach_items(frame, items).await;
        if let Ok(list) = &list {
            attrs.insert("items".into(), json!(list.len()));
        }
        attrs.insert("concurrency".into(), json!(concurrency));
        let span = self.rec.span(parent, SpanKind::Custom, span_name, attrs);
        let list = match list {
            Ok(list) => list,
            Err(failure) => {
                let result = Err(failure);
                end_with(span, &result);
                return result;
            }
        };
        let scope = frame.scope.child();
        let at_once = concurrency.max(1) as usize;
        let permits = Arc::new(Semaphore::new(at_once));
        prepare_heap(list.len().min(at_once));
        // Each iteration is a task of its own (see `run_parallel`); the body and the items are
        // shared by all of them.
        let run = self.arc();
        let body: Arc<[Step]> = steps.into();
        let list: Arc<[Value]> = list.into();
        let as_name: Arc<str> = as_name.into();
        let results = join_branches(
            (0..list.len())
                .map(|index| {
                    let (run, body, list, as_name) =
                        (run.clone(), body.clone(), list.clone(), as_name.clone());
                    let (scope, frame, permits) = (scope.clone(), frame.clone(), permits.clone());
                    let parent = span.id();
                    async move {
                        let _permit = permits.acquire().await;
                        if scope.is_cancelled() {
                            return (index, Err(scope.failure()));
                        }
                        let item = &list[index];
                        let ctx = frame
                            .ctx
                            .iteration(&as_name, minijinja::Value::from_serialize(item));
                        let iteration = Frame {
                            ctx,
                            scope: scope.clone(),
                        };
                        let mut attrs = Map::new();
                        attrs.insert("index".into(), json!(index));
                        attrs.insert("item".into(), item.clone());
                        let item_span =
                            run.rec
                                .span(Some(parent), SpanKind::Custom, item_name(item), attrs);
                        let result = run.run_steps(&iteration, &body, Some(&item_span)).await;
                        end_with(item_span, &result);
                        if matches!(&result, Err(f) if !f.cancelled) {
                            // Items not started yet do not start; running ones are cancelled.
                            scope.stop(Stop::SiblingFailed);
                        }
                        let last = iteration.ctx.steps.last();
                        (index, result.map(|()| last))
                    }
                })
                .collect(),
        )
        .await;
        let mut outputs = vec![Value::Null; list.len()];
        let mut failures = Vec::new();
        for (index, result) in results {
            match result {
                Ok(last) => outputs[index] = last.map_or(Value::Null, |o| o.to_json()),
                Err(f) => failures.push(Err(f)),
            }
        }
        let result = first_failure(failures);
        if result.is_ok() {
            let data = Value::Array(outputs);
            let output = Output::Data {
                text: data.to_string(),
                data,
            };
            self.record_output(frame, step, &output, Status::Ok);
        }
        end_with(span, &result);
        result
    }

    async fn foreach_items(
        &self,
        frame: &Frame,
        items: &LocatedValue,
    ) -> Result<Vec<Value>, Failure> {
        let value = self.render_value(frame, "foreach", items).await?;
        let value = match value {
            // A command's JSON output used whole renders as its text.
            Value::String(text) => {
                serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text))
            }
            other => other,
        };
        match value {
            Value::Array(list) if list.len() > MAX_FOREACH_ITEMS => Err(Failure::error(error_at(
                format!(
                    "`foreach:` at {} has {} items, more than the limit of {MAX_FOREACH_ITEMS}",
                    self.at(items.loc),
                    list.len()
                ),
                Value::Null,
            ))),
            Value::Array(list) => Ok(list),
            other => Err(Failure::error(error_at(
                format!(
                    "`foreach:` at {} needs a list, got {}",
                    self.at(items.loc),
                    truncate(&other.to_string(), 80)
                ),
                Value::Null,
            ))),
        }
    }
}

/// The failure a group of concurrent steps reports: the first real error, else a cancellation.
fn first_failure(results: Vec<Result<(), Failure>>) -> Result<(), Failure> {
    let mut cancelled = None;
    for result in results {
        match result {
            Err(f) if !f.cancelled => return Err(f),
            Err(f) => cancelled = Some(f),
            Ok(()) => {}
        }
    }
    cancelled.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_may_be_bare_or_braced() {
        assert_eq!(
            condition_expression("steps.a.status == 'ok'"),
            "steps.a.status == 'ok'"
        );
        assert_eq!(condition_expression(" {{ vars.go }} "), "vars.go");
    }

    #[test]
    fn items_name_their_spans() {
        assert_eq!(item_name(&json!("AI in health")), "AI in health");
        assert_eq!(item_name(&json!({"a": 1})), "{\"a\":1}");
        assert_eq!(
            item_name(&json!("x".repeat(100))).chars().count(),
            ITEM_NAME_MAX
        );
    }
}
