//! Model calls with retries and the run's concurrency cap. One generation span covers every
//! attempt of a call; each failed attempt is an event on it (`retry`: attempt, status, error,
//! wait), so a flaky server shows in the trace as clearly as a failure does.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::Failure;
use super::executor::{Frame, TraceRun, error_at};
use super::limits::RetryPolicy;
use super::scope::human;
use crate::llm::{ChatRequest, ChatResponse, DeltaFn, Model, ModelError};
use crate::trace::SpanHandle;

impl TraceRun {
    pub(crate) async fn call_with_retries(
        &self,
        _frame: &Frame,
        span: &SpanHandle,
        model: &dyn Model,
        request: &ChatRequest,
        on_delta: Option<&DeltaFn<'_>>,
        policy: RetryPolicy,
    ) -> Result<ChatResponse, Failure> {
        let mut attempt = 1;
        let mut queued_ms = 0.0;
        loop {
            let waiting = Instant::now();
            let permit = match &self.engine.limiter {
                Some(limiter) => Some(limiter.acquire().await.map_err(|_| {
                    Failure::error(error_at("the model call limiter closed", Value::Null))
                })?),
                None => None,
            };
            queued_ms += waiting.elapsed().as_secs_f64() * 1000.0;
            let call = model.complete(request, on_delta);
            let result = match policy.timeout {
                Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                    Err(ModelError::transient(format!(
                        "the model call timed out after {}",
                        human(limit)
                    )))
                }),
                None => call.await,
            };
            drop(permit);
            if queued_ms >= 1.0 {
                span.set_attribute("queued_ms", json!((queued_ms * 1000.0).round() / 1000.0));
            }
            match result {
                Ok(response) => {
                    if attempt > 1 {
                        span.set_attribute("attempts", json!(attempt));
                    }
                    return Ok(response);
                }
                Err(e) if e.retryable && attempt < policy.attempts => {
                    let wait = policy.wait(attempt, e.retry_after);
                    let mut attrs = Map::new();
                    attrs.insert("attempt".into(), json!(attempt));
                    attrs.insert("status".into(), json!(e.status));
                    attrs.insert("error".into(), Value::String(e.message.clone()));
                    attrs.insert("wait_ms".into(), json!(wait.as_millis() as u64));
                    span.add_event("retry", attrs);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    let mut data = Map::new();
                    if let Some(status) = e.status {
                        data.insert("http_status".into(), json!(status));
                    }
                    data.insert("attempts".into(), json!(attempt));
                    let message = if attempt > 1 {
                        format!("{} (failed after {attempt} attempts)", e.message)
                    } else {
                        e.message
                    };
                    if attempt > 1 {
                        span.set_attribute("attempts", json!(attempt));
                    }
                    return Err(Failure::error(error_at(message, Value::Object(data))));
                }
            }
        }
    }
}
