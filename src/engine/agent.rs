//! Agent steps: one `agent` span with one `generation` child per model call.

use serde_json::{Map, Value, json};

use super::Failure;
use super::executor::{TraceRun, end_with, error_at};
use crate::llm::{ChatRequest, Message};
use crate::trace::{SpanHandle, SpanId, SpanKind, Status};
use crate::workflow::template::Output;
use crate::workflow::{Step, StepKind};

impl TraceRun<'_> {
    pub(crate) async fn run_agent(
        &self,
        step: &Step,
        parent: Option<SpanId>,
    ) -> Result<(), Failure> {
        let StepKind::Agent { agent, input, mock, .. } = &step.kind else {
            return Ok(());
        };
        let wf = &self.engine.wf;
        let def = wf.agents.get(&agent.value);
        let model_name = def
            .and_then(|d| d.model.as_ref())
            .or(wf.model.as_ref())
            .map(|m| m.value.clone())
            .unwrap_or_default();
        let mut attrs = self.step_attributes(step);
        attrs.insert("agent".into(), Value::String(agent.value.clone()));
        attrs.insert("model".into(), Value::String(model_name.clone()));
        let span = self
            .rec
            .span(parent, SpanKind::Agent, agent.value.clone(), attrs);

        let result = async {
            let Some(def) = def else {
                return Err(Failure::error(error_at(
                    format!("unknown agent `{}` at {}", agent.value, self.at(agent.loc)),
                    Value::Null,
                )));
            };
            let Some(model) = self.engine.models.for_agent(&agent.value) else {
                return Err(Failure::error(error_at(
                    format!("no model client for agent `{}`", agent.value),
                    Value::Null,
                )));
            };
            let instructions = match &def.instructions {
                Some(i) => Some(self.render("instructions", i.loc, &i.value)?),
                None => None,
            };
            let user = self.render("input", input.loc, &input.value)?;
            if !self.engine.opts.no_content {
                span.set_attribute("input", Value::String(user.clone()));
            }
            let mut messages = Vec::new();
            if let Some(system) = instructions.filter(|s| !s.is_empty()) {
                messages.push(Message::system(system));
            }
            messages.push(Message::user(user));
            let request = ChatRequest {
                model: model_name.clone(),
                messages,
                temperature: def.temperature,
                max_tokens: def.max_tokens,
                mock: mock.as_ref().and_then(|turns| match turns.first() {
                    Some(crate::workflow::MockTurn::Text(t)) => Some(t.value.clone()),
                    _ => None,
                }),
            };
            let text = self.generation(&span, model.as_ref(), &request).await?;
            Ok(text)
        }
        .await;

        match result {
            Ok(text) => {
                if !self.engine.opts.no_content {
                    span.set_attribute("output", Value::String(text.clone()));
                }
                self.record_output(step, &Output::from_text(text), Status::Ok);
                span.end(Status::Ok, None);
                Ok(())
            }
            Err(failure) => {
                let result = Err(failure);
                end_with(span, &result);
                result
            }
        }
    }

    /// One model call as a `generation` span under `agent_span`; adds its usage to the agent's.
    async fn generation(
        &self,
        agent_span: &SpanHandle,
        model: &dyn crate::llm::Model,
        request: &ChatRequest,
    ) -> Result<String, Failure> {
        let no_content = self.engine.opts.no_content;
        let mut attrs = Map::new();
        attrs.insert("model".into(), Value::String(request.model.clone()));
        let mut config = Map::new();
        if let Some(t) = request.temperature {
            config.insert("temperature".into(), json!(t));
        }
        if let Some(m) = request.max_tokens {
            config.insert("max_tokens".into(), json!(m));
        }
        if !config.is_empty() {
            attrs.insert("model_config".into(), Value::Object(config));
        }
        if let Some(endpoint) = model.endpoint() {
            attrs.insert("base_url".into(), Value::String(endpoint));
        }
        if model.is_offline() {
            attrs.insert("offline".into(), Value::Bool(true));
        }
        if !no_content {
            attrs.insert("input".into(), json!(request.messages));
        }
        let span = self.rec.span(
            Some(agent_span.id()),
            SpanKind::Generation,
            request.model.clone(),
            attrs,
        );
        let response = tokio::select! {
            r = model.complete(request) => r,
            () = self.cancel.cancelled() => {
                span.end(Status::Cancelled, None);
                return Err(Failure::cancelled());
            }
        };
        match response {
            Ok(response) => {
                span.set_attribute("usage", response.usage.to_value());
                if let Some(m) = &response.response_model {
                    span.set_attribute("response_model", Value::String(m.clone()));
                }
                if let Some(f) = &response.finish_reason {
                    span.set_attribute("finish_reason", Value::String(f.clone()));
                }
                if let Some(id) = &response.response_id {
                    span.set_attribute("response_id", Value::String(id.clone()));
                }
                if !no_content {
                    span.set_attribute("output", Value::String(response.text.clone()));
                }
                span.end(Status::Ok, None);
                agent_span.add_usage(response.usage);
                Ok(response.text)
            }
            Err(e) => {
                let mut data = Map::new();
                if let Some(status) = e.status {
                    data.insert("http_status".into(), json!(status));
                }
                let error = error_at(e.message, Value::Object(data));
                span.end(Status::Error, Some(error.clone()));
                Err(Failure::error(error))
            }
        }
    }
}
