//! Agents, tools and handoffs: the names they list exist, JSON Schemas compile, each agent a
//! step may end with has a model, instructions are checked where they are rendered, tool
//! commands use only what is known at any call, and scripted (`mock:`) turns hand off only where
//! the speaking agent may.

use std::collections::HashSet;

use serde_json::Value;

use super::super::Workflow;
use super::super::diagnostic::{did_you_mean, list, suggest};
use super::super::schema::{
    AgentDef, Api, HANDOFF_PREFIX, Located, LocatedValue, MockTurn, Step, StepKind,
    is_function_name,
};
use super::{Checks, Only, Scope, Validator};

/// What a tool's `command:` may reference: it is rendered whenever the tool is called, by any
/// agent in any step.
const TOOL_COMMAND: Only = Only {
    roots: &["vars", "trace"],
    message: "tool commands can only use `vars` and `trace`",
    help: "a tool can be called from any step; pass step outputs to it through the agent's input",
};

impl<'w> Validator<'w> {
    /// Agent instructions: syntax, variables and `trace` once per agent; their step references
    /// are checked at each step that uses the agent, or for existence when no step does.
    pub(super) fn agents(&mut self) {
        let used: HashSet<&str> = self
            .wf
            .all_steps()
            .into_iter()
            .filter_map(|s| match &s.kind {
                StepKind::Agent { agent, .. } => Some(agent.as_str()),
                _ => None,
            })
            .flat_map(|name| self.reachable(name))
            .map(|def| def.name.as_str())
            .collect();
        let all: HashSet<String> = self.all_ids.iter().cloned().collect();
        for agent in self.wf.agents.values() {
            let Some(instructions) = &agent.instructions else {
                continue;
            };
            let scope = Scope {
                done: &all,
                hidden: None,
                locals: &[],
                current: None,
                checks: Checks::NotSteps,
                note: None,
                only: None,
            };
            self.template(instructions, &scope);
            if !used.contains(agent.name.as_str()) {
                let scope = Scope {
                    checks: Checks::OnlySteps,
                    ..scope
                };
                self.template(instructions, &scope);
            }
        }
    }

    pub(super) fn agent_use(&mut self, agent: &Located<String>, step: &Step, scope: &Scope) {
        if agent.value.is_empty() {
            return; // reported by the parser
        }
        if !self.wf.agents.contains_key(&agent.value) {
            self.unknown_agent(agent);
            return;
        }
        // The step may end with any agent its agent hands off to, directly or not.
        for def in self.reachable(&agent.value) {
            self.agent_in_step(def, step, scope);
        }
    }

    /// The agents a step that starts with `start` may run: `start` and every agent reachable
    /// through `handoffs:` (unknown names skipped; they are reported on their own).
    fn reachable(&self, start: &str) -> Vec<&'w AgentDef> {
        let wf: &'w Workflow = self.wf;
        let mut out: Vec<&'w AgentDef> = Vec::new();
        let Some(first) = wf.agents.get(start) else {
            return out;
        };
        out.push(first);
        let mut i = 0;
        while let Some(def) = out.get(i).copied() {
            for target in &def.handoffs {
                if let Some(next) = wf.agents.get(&target.value)
                    && !out.iter().any(|d| d.name.value == next.name.value)
                {
                    out.push(next);
                }
            }
            i += 1;
        }
        out
    }

    pub(super) fn unknown_agent(&mut self, agent: &Located<String>) {
        let names: Vec<&str> = self.wf.agents.keys().map(String::as_str).collect();
        let suggestion = suggest(&agent.value, names.iter().copied());
        let help = match suggestion {
            Some(_) => None,
            None if names.is_empty() => Some("define it under `agents:`".to_string()),
            None => Some(format!("agents defined: {}", list(&names))),
        };
        let width = agent.value.chars().count();
        self.report(
            agent.loc,
            format!(
                "unknown agent `{}`{}",
                agent.value,
                did_you_mean(suggestion)
            ),
            help,
            width,
        );
    }

    fn unknown_tool(&mut self, tool: &Located<String>) {
        let names: Vec<&str> = self.wf.tools.keys().map(String::as_str).collect();
        let suggestion = suggest(&tool.value, names.iter().copied());
        let help = match suggestion {
            Some(_) => None,
            None if tool.value.starts_with(HANDOFF_PREFIX) => Some(format!(
                "handoffs are written `handoff: {}` (in `mock:`) or listed under `handoffs:`",
                &tool.value[HANDOFF_PREFIX.len()..]
            )),
            None if names.is_empty() => Some("define it under the top-level `tools:`".to_string()),
            None => Some(format!("tools defined: {}", list(&names))),
        };
        let width = tool.value.chars().count();
        self.report(
            tool.loc,
            format!("unknown tool `{}`{}", tool.value, did_you_mean(suggestion)),
            help,
            width,
        );
    }

    /// An agent that runs in a step: it needs a model, and its instructions are rendered then.
    fn agent_in_step(&mut self, def: &AgentDef, step: &Step, scope: &Scope) {
        if def.model.is_none() && self.wf.model.is_none() {
            self.report(
                def.name.loc,
                format!(
                    "agent `{}` has no model: set `model:` on the agent or at the top level",
                    def.name.value
                ),
                None,
                def.name.value.chars().count(),
            );
        }
        if let Some(instructions) = &def.instructions {
            let note = match &step.id {
                Some(id) => format!(
                    "the instructions of agent `{}` are rendered when step `{}` runs (line {})",
                    def.name.value, id.value, step.loc.line
                ),
                None => format!(
                    "the instructions of agent `{}` are rendered when the step on line {} runs",
                    def.name.value, step.loc.line
                ),
            };
            let scope = Scope {
                done: scope.done,
                hidden: scope.hidden,
                locals: scope.locals,
                current: scope.current,
                checks: Checks::OnlySteps,
                note: Some(&note),
                only: None,
            };
            self.template(instructions, &scope);
        }
    }

    /// Tools: a JSON Schema of an object for the arguments, and command templates that only
    /// use what is known whenever the tool is called.
    pub(super) fn tools(&mut self) {
        let wf: &'w Workflow = self.wf;
        for tool in wf.tools.values() {
            if let Some(parameters) = &tool.parameters {
                let what = format!("the `parameters` of tool `{}`", tool.name.value);
                if self.json_schema(parameters, &what) {
                    self.object_schema(parameters, &what);
                }
            }
            let scope = Scope {
                done: &HashSet::new(),
                hidden: None,
                locals: &[],
                current: None,
                checks: Checks::All,
                note: None,
                only: Some(&TOOL_COMMAND),
            };
            for arg in &tool.command {
                self.template(arg, &scope);
            }
        }
    }

    /// `reasoning.summary` only where a summary can come back: Chat Completions has none, and a
    /// setting dropped unsaid would look like a model that never reasons.
    pub(super) fn reasoning(&mut self) {
        let wf: &'w Workflow = self.wf;
        for agent in wf.agents.values() {
            let Some(summary) = agent.reasoning.as_ref().and_then(|r| r.summary.as_ref()) else {
                continue;
            };
            if wf.api_of(&agent.name.value) == Api::Chat {
                self.report(
                    summary.loc,
                    format!(
                        "agent `{}` asks for a reasoning summary, which only the Responses API \
                         gives: its provider uses `api: chat`",
                        agent.name.value
                    ),
                    Some(
                        "set `api: responses` on the agent's (or the workflow's) `provider:`, \
                         or remove `summary`"
                            .into(),
                    ),
                    summary.value.chars().count(),
                );
            }
        }
    }

    /// Agents: the tools and handoffs they list exist, and their output schema compiles.
    pub(super) fn agent_defs(&mut self) {
        let wf: &'w Workflow = self.wf;
        for agent in wf.agents.values() {
            let mut seen: HashSet<&str> = HashSet::new();
            for tool in &agent.tools {
                if !wf.tools.contains_key(&tool.value) {
                    self.unknown_tool(tool);
                } else if !seen.insert(&tool.value) {
                    self.report(
                        tool.loc,
                        format!(
                            "agent `{}` lists tool `{}` twice",
                            agent.name.value, tool.value
                        ),
                        None,
                        tool.value.chars().count(),
                    );
                }
            }
            let mut seen: HashSet<&str> = HashSet::new();
            for target in &agent.handoffs {
                let width = target.value.chars().count();
                if target.value == agent.name.value {
                    self.report(
                        target.loc,
                        format!("agent `{}` cannot hand off to itself", agent.name.value),
                        None,
                        width,
                    );
                } else if !wf.agents.contains_key(&target.value) {
                    self.unknown_agent(target);
                } else if !seen.insert(&target.value) {
                    self.report(
                        target.loc,
                        format!(
                            "agent `{}` lists handoff `{}` twice",
                            agent.name.value, target.value
                        ),
                        None,
                        width,
                    );
                } else if !is_function_name(&format!("{HANDOFF_PREFIX}{}", target.value)) {
                    self.report(
                        target.loc,
                        format!(
                            "agent `{}` cannot be a handoff target: `{HANDOFF_PREFIX}{}` is not a valid tool name",
                            target.value, target.value
                        ),
                        Some(format!(
                            "handoffs are offered to the model as `{HANDOFF_PREFIX}<agent>` tools, whose names are 1 to 64 letters, digits, `_` or `-`; rename the agent"
                        )),
                        width,
                    );
                }
            }
            if let Some(schema) = &agent.output_schema {
                let what = format!("the `output_schema` of agent `{}`", agent.name.value);
                self.json_schema(schema, &what);
            }
        }
    }

    /// Whether a value compiles as a JSON Schema; reports the compiler's message if not.
    fn json_schema(&mut self, schema: &LocatedValue, what: &str) -> bool {
        match jsonschema::validator_for(&schema.value) {
            Ok(_) => true,
            Err(err) => {
                let path = err.instance_path().to_string();
                let at = if path.is_empty() {
                    String::new()
                } else {
                    format!(" (at `{path}`)")
                };
                self.report(
                    schema.loc,
                    format!("{what} is not a valid JSON Schema: {err}{at}"),
                    None,
                    1,
                );
                false
            }
        }
    }

    /// A tool's arguments are one JSON object: the schema's top-level `type` is `object`.
    fn object_schema(&mut self, schema: &LocatedValue, what: &str) {
        let found = match schema.value.get("type") {
            Some(Value::String(t)) if t == "object" => return,
            Some(other) => format!(", found `type: {other}`"),
            None => String::new(),
        };
        self.report(
            schema.loc,
            format!("{what} must have `type: object`{found}"),
            Some(
                "a tool's arguments are one JSON object: `{ type: object, properties: { ... } }`"
                    .into(),
            ),
            1,
        );
    }

    /// A step's scripted turns: tools that exist, and handoffs the agent speaking at that turn
    /// may take.
    pub(super) fn mock(&mut self, agent: &Located<String>, turns: &[MockTurn]) {
        let wf: &'w Workflow = self.wf;
        let mut current = wf.agents.get(&agent.value);
        for turn in turns {
            match turn {
                MockTurn::Text(_) => {}
                MockTurn::ToolCalls(calls) => {
                    for call in calls {
                        let by_mcp =
                            current.is_some_and(|a| self.mcp_may_offer(a, &call.name.value));
                        if !wf.tools.contains_key(&call.name.value) && !by_mcp {
                            self.unknown_tool(&call.name);
                        }
                    }
                }
                MockTurn::Handoff(target) => {
                    let Some(next) = wf.agents.get(&target.value) else {
                        self.unknown_agent(target);
                        continue;
                    };
                    if let Some(from) = current
                        && !from.handoffs.iter().any(|h| h.value == target.value)
                    {
                        self.report(
                            target.loc,
                            format!(
                                "mock hands off to `{}`, which agent `{}` cannot hand off to",
                                target.value, from.name.value
                            ),
                            Some(format!(
                                "add `{}` to the `handoffs:` of agent `{}`",
                                target.value, from.name.value
                            )),
                            target.value.chars().count(),
                        );
                    }
                    current = Some(next);
                }
            }
        }
    }
}
