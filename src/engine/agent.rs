//! Agent steps: the agent loop. Each model call is a `generation` span under the agent's span;
//! tool calls the model makes run (concurrently within a turn) as `function` spans and their
//! results go back to the model; a `transfer_to_<agent>` call records a `handoff` span and the
//! target agent continues the same conversation in a new `agent` span beside the first. The
//! step's output is the last agent's final answer.

use std::collections::VecDeque;

use serde_json::{Map, Value, json};

use super::Failure;
use super::executor::{Frame, TraceRun, end_with, error_at};
use super::limits::RetryPolicy;
use super::path::AgentPath;
use super::scope::Stop;
use super::scores::Subject;
use crate::llm::{ChatRequest, DeltaFn, Message, Model, Scripted, ToolCall, ToolSpec};
use crate::trace::{HANDOFF_PREFIX, SpanHandle, SpanId, SpanKind, Status};
use crate::workflow::template::Output;
use crate::workflow::{AgentDef, MockTurn, Step, StepKind};

/// Model calls one agent step may make when the agent does not set `max_turns`.
pub const DEFAULT_MAX_TURNS: u32 = 10;

/// The conversation of one agent step, shared by the agents it is handed between.
struct Conversation {
    /// Everything after the system message.
    messages: Vec<Message>,
    /// Model calls made so far in the step.
    turns: u32,
    max_turns: u32,
    /// The offline model's scripted answers still to play.
    script: VecDeque<MockTurn>,
    scripted_calls: usize,
    /// The step's own `retry:`, over the agents' and the workflow's.
    retry: Option<crate::workflow::RetryDef>,
    /// Tokens used by the step's model calls so far (across handoffs), for `expect:`.
    usage: crate::trace::Usage,
    /// The tools called, handoffs taken and model calls made, for the path checks.
    path: AgentPath,
}

enum Turn {
    Answer(String),
    Handoff(String),
}

impl TraceRun {
    pub(crate) async fn run_agent(
        &self,
        frame: &Frame,
        step: &Step,
        parent: Option<SpanId>,
    ) -> Result<(), Failure> {
        let StepKind::Agent {
            agent,
            input,
            mock,
            session,
        } = &step.kind
        else {
            return Ok(());
        };
        let wf = &self.engine.wf;
        let no_content = self.engine.opts.no_content;
        let mut convo = Conversation {
            messages: Vec::new(),
            turns: 0,
            max_turns: wf
                .agents
                .get(&agent.value)
                .and_then(|d| d.max_turns.as_ref())
                .map_or(DEFAULT_MAX_TURNS, |m| m.value),
            script: mock.clone().unwrap_or_default().into(),
            scripted_calls: 0,
            retry: step.retry.clone(),
            usage: crate::trace::Usage::default(),
            path: AgentPath::default(),
        };
        let started = std::time::Instant::now();
        let mut current = agent.value.clone();
        let mut handed_from: Option<String> = None;
        // Set once the user message is known: (session key, messages of this step to keep).
        let mut session_key: Option<String> = None;
        let mut user_text = String::new();
        loop {
            let span = self.agent_span(step, parent, &current, handed_from.as_deref());
            let result = async {
                if handed_from.is_none() {
                    user_text = self.render(frame, "input", input.loc, &input.value).await?;
                    if !no_content {
                        span.set_attribute("input", Value::String(user_text.clone()));
                    }
                    if let Some(template) = session {
                        let key = self
                            .render(frame, "session", template.loc, &template.value)
                            .await?;
                        let history = self.load_session(&key).await?;
                        span.set_attribute("session", Value::String(key.clone()));
                        span.set_attribute("session_messages", json!(history.len()));
                        convo.messages.extend(history);
                        session_key = Some(key);
                    }
                    convo.messages.push(Message::user(user_text.clone()));
                }
                self.agent_turns(frame, &span, &current, &mut convo).await
            }
            .await;
            match result {
                Ok(Turn::Handoff(target)) => {
                    span.end(Status::Ok, None);
                    handed_from = Some(std::mem::replace(&mut current, target));
                }
                Ok(Turn::Answer(text)) => {
                    let checked = self.check_output(&span, &current, text).and_then(|output| {
                        // -- `expect:` checks, while the span is open: their events land on it.
                        self.check_expectations(
                            step,
                            &span,
                            output.text(),
                            convo.usage,
                            started.elapsed(),
                            Some(&convo.path),
                        )
                        .map(|()| output)
                    });
                    let output = match checked {
                        Ok(output) => output,
                        Err(failure) => {
                            self.note_path(&convo.path);
                            let result = Err(failure);
                            end_with(span, &result);
                            return result;
                        }
                    };
                    if !no_content {
                        span.set_attribute("output", Value::String(output.text().to_string()));
                    }
                    if let Some(key) = &session_key {
                        self.save_session(key, &user_text, output.text()).await?;
                    }
                    self.record_output(frame, step, &output, Status::Ok);
                    // -- `scores:`, under the step's (last agent's) span; they never fail it.
                    self.note_path(&convo.path);
                    if !step.scores.is_empty() {
                        let subject = Subject {
                            output: output.text(),
                            path: Some(&convo.path),
                        };
                        // Boxed, like anything large that not every agent step runs: the
                        // step's future is copied whole when a fan-out starts its branch.
                        Box::pin(self.run_scores(frame, &step.scores, Some(span.id()), &subject))
                            .await;
                    }
                    span.end(Status::Ok, None);
                    return Ok(());
                }
                Err(failure) => {
                    self.note_path(&convo.path);
                    let result = Err(failure);
                    end_with(span, &result);
                    return result;
                }
            }
        }
    }

    fn agent_span(
        &self,
        step: &Step,
        parent: Option<SpanId>,
        agent: &str,
        handed_from: Option<&str>,
    ) -> SpanHandle {
        let wf = &self.engine.wf;
        let def = wf.agents.get(agent);
        let mut attrs = self.step_attributes(step);
        attrs.insert("agent".into(), Value::String(agent.to_string()));
        attrs.insert("model".into(), Value::String(model_name(self, def)));
        let tools: Vec<String> = def.map(offered_tool_names).unwrap_or_default();
        if !tools.is_empty() {
            attrs.insert("tools".into(), json!(tools));
        }
        if let Some(from) = handed_from {
            attrs.insert("handoff_from".into(), Value::String(from.to_string()));
        }
        if def.is_some_and(|d| d.output_schema.is_some()) {
            attrs.insert("output_type".into(), Value::String("json_schema".into()));
        }
        self.rec
            .span(parent, SpanKind::Agent, agent.to_string(), attrs)
    }

    /// Model calls until the current agent answers or hands off.
    async fn agent_turns(
        &self,
        frame: &Frame,
        span: &SpanHandle,
        agent: &str,
        convo: &mut Conversation,
    ) -> Result<Turn, Failure> {
        let wf = &self.engine.wf;
        let Some(def) = wf.agents.get(agent) else {
            return Err(Failure::error(error_at(
                format!("unknown agent `{agent}`"),
                Value::Null,
            )));
        };
        let Some(model) = self.engine.models.for_agent(agent) else {
            return Err(Failure::error(error_at(
                format!("no model client for agent `{agent}`"),
                Value::Null,
            )));
        };
        let instructions = match &def.instructions {
            Some(i) => self.render(frame, "instructions", i.loc, &i.value).await?,
            None => String::new(),
        };
        let mut tools = self.tool_specs(def);
        let mcp = self.mcp_offer(frame, span, def, &tools).await?;
        tools.extend(mcp.specs.iter().cloned());
        let retry =
            RetryPolicy::resolve(&[convo.retry.as_ref(), def.retry.as_ref(), wf.retry.as_ref()]);
        loop {
            if convo.turns >= convo.max_turns {
                return Err(Failure::error(error_at(
                    format!(
                        "agent `{agent}` exceeded max_turns ({}) without a final answer",
                        convo.max_turns
                    ),
                    json!({ "max_turns": convo.max_turns }),
                )));
            }
            convo.turns += 1;
            let mut messages = Vec::with_capacity(convo.messages.len() + 1);
            if !instructions.is_empty() {
                messages.push(Message::system(instructions.clone()));
            }
            messages.extend(convo.messages.iter().cloned());
            let scripted = match convo.script.pop_front() {
                // A text turn is a template (so that an evaluation's cases can script their own
                // answers, `{{ case.answer }}`); only the offline model reads it.
                Some(MockTurn::Text(text)) if self.engine.opts.offline => Some(Scripted::Text(
                    self.render(frame, "mock", text.loc, &text.value).await?,
                )),
                Some(turn) => {
                    let base = convo.scripted_calls;
                    let scripted = scripted_answer(turn, base);
                    if let Scripted::ToolCalls(calls) = &scripted {
                        convo.scripted_calls += calls.len();
                    }
                    Some(scripted)
                }
                None => None,
            };
            let request = ChatRequest {
                model: model_name(self, Some(def)),
                messages,
                temperature: def.temperature,
                max_tokens: def.max_tokens,
                seed: def.seed,
                tools: tools.clone(),
                output_schema: def
                    .output_schema
                    .as_ref()
                    .map(|s| (format!("{agent}_output"), s.value.clone())),
                stream: model.streams(),
                scripted,
                reasoning: super::models::reasoning_of(def),
            };
            let response = self
                .generation(frame, span, agent, model.as_ref(), &request, retry, false)
                .await?;
            convo.usage.add(response.usage);
            convo.path.turns += 1;
            if response.tool_calls.is_empty() {
                convo
                    .messages
                    .push(Message::assistant(response.text.clone()));
                return Ok(Turn::Answer(response.text));
            }
            convo.messages.push(Message::Assistant {
                content: response.text.clone(),
                tool_calls: response.tool_calls.clone(),
            });
            // Tool calls run concurrently; handoffs are decided after them, the first one wins.
            let mut handoff: Option<String> = None;
            let mut results: Vec<Option<Message>> = vec![None; response.tool_calls.len()];
            let mut pending = Vec::new();
            for (i, call) in response.tool_calls.iter().enumerate() {
                match handoff_target(def, &call.function.name) {
                    Some(target) if handoff.is_none() => {
                        self.record_handoff(span, agent, &target);
                        convo.path.handoffs.push(target.clone());
                        results[i] = Some(Message::Tool {
                            tool_call_id: call.id.clone(),
                            content: json!({ "assistant": target }).to_string(),
                        });
                        handoff = Some(target);
                    }
                    Some(_) => {
                        results[i] = Some(Message::Tool {
                            tool_call_id: call.id.clone(),
                            content: "Error: only one handoff can be taken per turn".into(),
                        });
                    }
                    None => {
                        let args =
                            serde_json::from_str(&call.function.arguments).unwrap_or(Value::Null);
                        convo.path.calls.push((call.function.name.clone(), args));
                        pending.push((i, call));
                    }
                }
            }
            let outcomes = futures::future::join_all(pending.iter().map(|(_, call)| {
                let server = mcp.server_of(&call.function.name);
                async move {
                    match server {
                        Some(server) => self.call_mcp_tool(frame, span, server, call).await,
                        None => self.call_tool(frame, span, def, call).await,
                    }
                }
            }))
            .await;
            for ((i, _), outcome) in pending.iter().zip(outcomes) {
                results[*i] = Some(outcome?);
            }
            convo.messages.extend(results.into_iter().flatten());
            if let Some(target) = handoff {
                return Ok(Turn::Handoff(target));
            }
        }
    }

    /// The tools offered to the model: the agent's function tools, then its handoffs.
    fn tool_specs(&self, def: &AgentDef) -> Vec<ToolSpec> {
        let wf = &self.engine.wf;
        let mut specs = Vec::new();
        for name in &def.tools {
            if let Some(tool) = wf.tools.get(&name.value) {
                specs.push(ToolSpec {
                    name: name.value.clone(),
                    description: tool.description.clone().unwrap_or_default(),
                    parameters: tool
                        .parameters
                        .as_ref()
                        .map(|p| p.value.clone())
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                });
            }
        }
        for target in &def.handoffs {
            let mut description = format!(
                "Handoff to the {} agent to handle the request.",
                target.value
            );
            if let Some(extra) = wf
                .agents
                .get(&target.value)
                .and_then(|a| a.handoff_description.as_ref())
            {
                description.push(' ');
                description.push_str(extra);
            }
            specs.push(ToolSpec {
                name: format!("{HANDOFF_PREFIX}{}", target.value),
                description,
                parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            });
        }
        specs
    }

    fn record_handoff(&self, agent_span: &SpanHandle, from: &str, to: &str) {
        let mut attrs = Map::new();
        attrs.insert("from_agent".into(), Value::String(from.to_string()));
        attrs.insert("to_agent".into(), Value::String(to.to_string()));
        self.rec
            .span(
                Some(agent_span.id()),
                SpanKind::Handoff,
                format!("{from} -> {to}"),
                attrs,
            )
            .end(Status::Ok, None);
    }

    /// A final answer of an agent with an `output_schema` must be JSON matching it. Returns the
    /// answer to keep: `text` itself, or, when its only fault is raw control characters inside
    /// strings, `text` with them escaped (an `output_repaired` event on the span says so). A
    /// structured answer is data whatever its JSON type, so that `run --format json` and
    /// templates see the value the schema describes, not a string holding it.
    fn check_output(
        &self,
        span: &SpanHandle,
        agent: &str,
        text: String,
    ) -> Result<Output, Failure> {
        let Some(validator) = self.engine.output_schemas.get(agent) else {
            return Ok(Output::from_text(text));
        };
        let (text, value) = match serde_json::from_str::<Value>(&text) {
            Ok(value) => (text, value),
            Err(e) => {
                let repaired = escape_control_chars_in_strings(&text)
                    .and_then(|fixed| Some((serde_json::from_str::<Value>(&fixed).ok()?, fixed)));
                let Some((value, fixed)) = repaired else {
                    return Err(Failure::error(error_at(
                        format!(
                            "the output of agent `{agent}` is not JSON, but it has an output_schema: {e}"
                        ),
                        Value::Null,
                    )));
                };
                let mut attrs = Map::new();
                attrs.insert(
                    "reason".into(),
                    Value::String(format!(
                        "raw control characters inside JSON strings escaped ({e})"
                    )),
                );
                span.add_event("output_repaired", attrs);
                (fixed, value)
            }
        };
        let errors = super::schema_errors(validator, &value);
        if errors.is_empty() {
            Ok(Output::Data { text, data: value })
        } else {
            Err(Failure::error(error_at(
                format!(
                    "the output of agent `{agent}` does not match its output_schema: {}",
                    errors.join("; ")
                ),
                json!({ "errors": errors }),
            )))
        }
    }

    /// One model call as a `generation` span under `agent_span`; adds its usage to the agent's.
    /// A judge's call (`judging`, under a `score` span) is not streamed to the terminal and
    /// not charged to the run's budget: its tokens are counted apart from the workflow's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn generation(
        &self,
        frame: &Frame,
        agent_span: &SpanHandle,
        agent: &str,
        model: &dyn Model,
        request: &ChatRequest,
        retry: RetryPolicy,
        judging: bool,
    ) -> Result<crate::llm::ChatResponse, Failure> {
        let no_content = self.engine.opts.no_content;
        let mut attrs = Map::with_capacity(16);
        attrs.insert("model".into(), Value::String(request.model.clone()));
        // The API the agent's provider names, whichever model answers (offline and replay too).
        let api = self.engine.wf.api_of(agent);
        attrs.insert("api".into(), Value::String(api.as_str().into()));
        let mut config = Map::new();
        if let Some(t) = request.temperature {
            config.insert("temperature".into(), json!(t));
        }
        if let Some(m) = request.max_tokens {
            config.insert("max_tokens".into(), json!(m));
        }
        if let Some(s) = request.seed {
            config.insert("seed".into(), json!(s));
        }
        if let Some(r) = &request.reasoning {
            config.insert(
                "reasoning".into(),
                json!({ "effort": r.effort, "summary": r.summary }),
            );
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
        if self.engine.opts.replay.is_some() {
            attrs.insert("replayed".into(), Value::Bool(true));
        }
        if !no_content {
            attrs.insert("input".into(), json!(request.messages));
        }
        // What was asked for; replaced by what happened once the call answers.
        attrs.insert("stream".into(), Value::Bool(request.stream));
        let span = self.rec.span(
            Some(agent_span.id()),
            SpanKind::Generation,
            request.model.clone(),
            attrs,
        );
        let on_text = self.engine.on_text.clone().filter(|_| !judging);
        let forward = move |delta: &str| {
            if let Some(f) = &on_text {
                f(agent, delta);
            }
        };
        let on_delta: Option<&DeltaFn<'_>> = if self.engine.on_text.is_some() && !judging {
            Some(&forward)
        } else {
            None
        };
        let attempt = self.call_with_retries(frame, &span, model, request, on_delta, retry);
        let response = tokio::select! {
            r = attempt => r,
            () = frame.scope.cancelled() => Err(frame.scope.failure()),
        };
        if let Some(f) = self.engine.on_text.as_ref().filter(|_| !judging) {
            f(agent, "");
        }
        let response = match response {
            Ok(r) => r,
            Err(failure) => {
                span.end(
                    failure.status(),
                    (!failure.cancelled).then(|| failure.error.clone()),
                );
                return Err(failure);
            }
        };
        // What happened, set at once: one lock and one growth of the span's attributes.
        let mut done: Vec<(&str, Value)> = Vec::with_capacity(8);
        done.push(("stream", Value::Bool(response.streamed)));
        done.push(("usage", response.usage.to_value()));
        // The offline model costs nothing, whatever model name the workflow gives.
        let cost = if model.is_offline() {
            Some(0.0)
        } else {
            self.engine.prices.cost(&request.model, response.usage)
        };
        if let Some(cost) = cost {
            done.push(("cost_usd", json!(cost)));
        }
        let crossed = if judging {
            None
        } else {
            self.engine.budget.charge(response.usage, cost)
        };
        if response.usage_estimated {
            done.push(("usage_estimated", Value::Bool(true)));
        }
        if let Some(ms) = response.time_to_first_token_ms {
            done.push((
                "time_to_first_token_ms",
                json!((ms * 1000.0).round() / 1000.0),
            ));
        }
        if let Some(ms) = response.queued_ms {
            done.push(("queued_ms", json!((ms * 1000.0).round() / 1000.0)));
        }
        if let Some(m) = &response.response_model {
            done.push(("response_model", Value::String(m.clone())));
        }
        if let Some(f) = &response.finish_reason {
            done.push(("finish_reason", Value::String(f.clone())));
        }
        if let Some(id) = &response.response_id {
            done.push(("response_id", Value::String(id.clone())));
        }
        if let Some(n) = response.cached_input_tokens {
            done.push(("cached_input_tokens", json!(n)));
        }
        if let Some(n) = response.reasoning_tokens {
            done.push(("reasoning_tokens", json!(n)));
        }
        if let Some(summary) = response.reasoning_summary.as_ref().filter(|_| !no_content) {
            done.push(("reasoning_summary", Value::String(summary.clone())));
        }
        if !response.tool_calls.is_empty() {
            let calls: Vec<Value> = response
                .tool_calls
                .iter()
                .map(|c| {
                    if no_content {
                        json!({ "id": c.id, "name": c.function.name })
                    } else {
                        json!({ "id": c.id, "name": c.function.name, "arguments": c.function.arguments })
                    }
                })
                .collect();
            done.push(("tool_calls", Value::Array(calls)));
        }
        if !no_content && (response.tool_calls.is_empty() || !response.text.is_empty()) {
            done.push(("output", Value::String(response.text.clone())));
        }
        span.set_attributes(done);
        if let Some(exceeded) = crossed {
            span.add_event("budget exceeded", exceeded.attributes);
            span.end(Status::Error, Some(exceeded.error.clone()));
            agent_span.add_usage(response.usage);
            // Everything else in the run stops too, with the same reason.
            self.root.stop(Stop::Budget(exceeded.error.clone()));
            return Err(Failure::error(exceeded.error));
        }
        span.end(Status::Ok, None);
        agent_span.add_usage(response.usage);
        Ok(response)
    }
}

fn model_name(run: &TraceRun, def: Option<&AgentDef>) -> String {
    def.and_then(|d| d.model.as_ref())
        .or(run.engine.wf.model.as_ref())
        .map(|m| m.value.clone())
        .unwrap_or_default()
}

fn offered_tool_names(def: &AgentDef) -> Vec<String> {
    def.tools
        .iter()
        .map(|t| t.value.clone())
        .chain(
            def.handoffs
                .iter()
                .map(|h| format!("{HANDOFF_PREFIX}{}", h.value)),
        )
        .collect()
}

/// The agent a `transfer_to_<agent>` call hands off to, if `def` may hand off to it.
fn handoff_target(def: &AgentDef, tool: &str) -> Option<String> {
    let target = tool.strip_prefix(HANDOFF_PREFIX)?;
    def.handoffs
        .iter()
        .any(|h| h.value == target)
        .then(|| target.to_string())
}

/// A scripted mock turn as the offline model's answer; tool-call ids continue from `base`.
fn scripted_answer(turn: MockTurn, base: usize) -> Scripted {
    match turn {
        MockTurn::Text(t) => Scripted::Text(t.value),
        MockTurn::ToolCalls(calls) => Scripted::ToolCalls(
            calls
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    ToolCall::new(
                        format!("call_{}", base + i + 1),
                        c.name.value,
                        c.arguments.to_string(),
                    )
                })
                .collect(),
        ),
        MockTurn::Handoff(target) => Scripted::ToolCalls(vec![ToolCall::new(
            format!("call_{}", base + 1),
            format!("{HANDOFF_PREFIX}{}", target.value),
            "{}",
        )]),
    }
}

/// `text` with every raw control character (U+0000–U+001F) inside a JSON string literal written
/// as its escape, or `None` when there is none. Strict JSON forbids them, yet some servers'
/// grammars for `response_format` let them through (llama-cpp-python's string rule is `[^"\\]`),
/// and a model then writes a line break inside a string; the data is otherwise what was asked
/// for. Python's `json.loads(strict=False)` accepts the same.
fn escape_control_chars_in_strings(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    for c in text.chars() {
        if in_string && c < ' ' {
            changed = true;
            escaped = false;
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                _ => out.push_str(&format!("\\u{:04x}", c as u32)),
            }
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::escape_control_chars_in_strings as escape;
    use super::{Frame, Step, TraceRun};

    /// The size of the future `f` returns, without calling it.
    fn future_size<'a, F: Future>(_: impl FnOnce(&'a TraceRun, &'a Frame, &'a Step) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn an_agent_steps_future_stays_small() {
        // A fan-out moves each branch's step future into a box of its own; the agent's was
        // 22 KB (an MCP server's listing and the step's scores inline), copied for every
        // branch whether it had MCP servers or scores or not.
        let size = future_size(|run, frame, step| run.run_agent(frame, step, None));
        assert!(size <= 6 * 1024, "run_agent's future is {size} bytes");
    }

    #[test]
    fn only_control_characters_inside_strings_are_escaped() {
        // Line breaks between tokens are JSON whitespace: nothing to repair.
        assert_eq!(escape("{\n\t\"a\": \"b\"\r\n}"), None);
        assert_eq!(
            escape("{\n\"a\": \"x\ny\",\n\"b\": [\"\t\", \"\\\"\u{7}\"]}").as_deref(),
            Some("{\n\"a\": \"x\\ny\",\n\"b\": [\"\\t\", \"\\\"\\u0007\"]}")
        );
        // An escaped quote does not end the string; an escaped backslash does not escape it.
        assert_eq!(
            escape(r#"{"a": "q\"\r"}"#.replace(r"\r", "\r").as_str()).as_deref(),
            Some(r#"{"a": "q\"\r"}"#)
        );
        assert_eq!(
            escape("[\"\\\\\", \"\n\"]").as_deref(),
            Some("[\"\\\\\", \"\\n\"]")
        );
        // Multi-byte text passes through unchanged.
        assert_eq!(escape("\"é\n漢\"").as_deref(), Some("\"é\\n漢\""));
    }
}
