//! Function tools: one process per call, the model's arguments as JSON on stdin, the result on
//! stdout. A failure (unknown tool, arguments that do not match the schema, a non-zero exit) is
//! recorded on the `function` span and sent back to the model as an error result, as the
//! Agents SDK does; only cancellation stops the step.

use serde_json::{Map, Value, json};

use super::Failure;
use super::executor::{Frame, TraceRun};
use crate::llm::{Message, ToolCall};
use crate::trace::{ErrorInfo, SpanHandle, SpanKind, Status};
use crate::workflow::AgentDef;

impl TraceRun {
    /// Runs one tool call under `agent_span`; the tool message to send back.
    pub(crate) async fn call_tool(
        &self,
        frame: &Frame,
        agent_span: &SpanHandle,
        agent: &AgentDef,
        call: &ToolCall,
    ) -> Result<Message, Failure> {
        let no_content = self.engine.opts.no_content;
        let name = &call.function.name;
        let mut attrs = Map::new();
        attrs.insert("tool".into(), Value::String(name.clone()));
        attrs.insert("call_id".into(), Value::String(call.id.clone()));
        if !no_content {
            attrs.insert(
                "input".into(),
                Value::String(call.function.arguments.clone()),
            );
        }
        let span = self.rec.span(
            Some(agent_span.id()),
            SpanKind::Function,
            name.clone(),
            attrs,
        );
        match self.tool_result(frame, &span, agent, call).await {
            Ok(output) => {
                if !no_content {
                    span.set_attribute("output", Value::String(output.clone()));
                }
                span.end(Status::Ok, None);
                Ok(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content: output,
                })
            }
            Err(failure) if failure.cancelled => {
                span.end(Status::Cancelled, None);
                Err(failure)
            }
            Err(failure) => {
                let content = format!("Error: {}", failure.error.message);
                if !no_content {
                    span.set_attribute("output", Value::String(content.clone()));
                }
                span.end(Status::Error, Some(failure.error));
                Ok(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content,
                })
            }
        }
    }

    async fn tool_result(
        &self,
        frame: &Frame,
        span: &SpanHandle,
        agent: &AgentDef,
        call: &ToolCall,
    ) -> Result<String, Failure> {
        let wf = &self.engine.wf;
        let name = &call.function.name;
        let fail = |message: String| Failure::error(ErrorInfo::new(message));
        let tool = match wf.tools.get(name) {
            Some(tool) if agent.tools.iter().any(|t| &t.value == name) => tool,
            _ => {
                let offered: Vec<&str> = agent.tools.iter().map(|t| t.value.as_str()).collect();
                return Err(fail(format!(
                    "unknown tool `{name}`; agent `{}` can call: {}",
                    agent.name.value,
                    if offered.is_empty() {
                        "no tools".to_string()
                    } else {
                        offered.join(", ")
                    }
                )));
            }
        };
        let raw = call.function.arguments.trim();
        let arguments: Value = if raw.is_empty() {
            json!({})
        } else {
            serde_json::from_str(raw).map_err(|e| {
                fail(format!(
                    "invalid arguments for tool `{name}`: not valid JSON: {e}"
                ))
            })?
        };
        if let Some(validator) = self.engine.tool_schemas.get(name) {
            let errors = super::schema_errors(validator, &arguments);
            if !errors.is_empty() {
                return Err(fail(format!(
                    "invalid arguments for tool `{name}`: {}",
                    errors.join("; ")
                )));
            }
        }
        let mut argv = Vec::with_capacity(tool.command.len());
        for (i, arg) in tool.command.iter().enumerate() {
            argv.push(
                self.render(
                    frame,
                    &format!("tools.{name}.command[{i}]"),
                    arg.loc,
                    &arg.value,
                )
                .await?,
            );
        }
        if !self.engine.opts.no_content {
            span.set_attribute("argv", json!(argv));
        }
        let cmd = self.program(&argv);
        let done = self
            .run_process(
                frame,
                span,
                name,
                cmd,
                Some(arguments.to_string().into_bytes()),
            )
            .await?;
        if done.status.success() {
            Ok(done.stdout)
        } else {
            if !self.engine.opts.no_content && !done.stderr_tail.is_empty() {
                span.set_attribute("stderr_tail", Value::String(done.stderr_tail.clone()));
            }
            Err(fail(done.failure_message(
                &format!("tool `{name}`"),
                self.engine.opts.no_content,
            )))
        }
    }
}
