//! Checks the relations inside a parsed workflow: unique step ids, known agents with a model,
//! tools, handoffs and scripted (`mock:`) turns that name what exists, JSON Schemas that compile,
//! events inside spans, no templates in shell scripts, `if:` conditions, `foreach:` lists, and
//! every template's syntax and references, each against the point of execution where it is
//! rendered: a step inside a `foreach:` sees the loop's variable and the earlier steps of the
//! same item, but the steps after the loop only see the loop's output; a parallel branch cannot
//! see the branches beside it.
//!
//! Every problem is reported in one pass, each at the location of the value that holds it.

use std::collections::{HashMap, HashSet};

use indexmap::IndexSet;

use serde_json::Value;

use super::diagnostic::{Loc, did_you_mean, list, suggest};
use super::schema::{
    AgentDef, Command, EventDef, HANDOFF_PREFIX, Located, LocatedValue, MockTurn, Step, StepKind,
    is_function_name,
};
use super::template::{Templates, is_template, single_expression};
use super::{Diagnostic, Workflow};

/// Names minijinja provides itself; templates may call them.
const GLOBALS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "lipsum",
    "cycler",
    "joiner",
    "debug",
];
const STEP_FIELDS: &[&str] = &["output", "status"];
/// The values of `steps.<id>.status`.
const STATUSES: &[&str] = &["ok", "error", "skipped"];
const TRACE_FIELDS: &[&str] = &["id", "group_id"];
/// What a tool's `command:` may reference: it is rendered whenever the tool is called, by any
/// agent in any step.
const TOOL_COMMAND: Only = Only {
    roots: &["vars", "trace"],
    message: "tool commands can only use `vars` and `trace`",
    help: "a tool can be called from any step; pass step outputs to it through the agent's input",
};
/// What a step's `session:` may reference: it is rendered when the trace starts (the trace's
/// group id defaults to it).
const SESSION: Only = Only {
    roots: &["vars"],
    message: "a `session:` can only use `vars`",
    help: "the session key is rendered when the trace starts, because the trace's group id defaults to it",
};

pub fn validate(wf: &Workflow) -> Vec<Diagnostic> {
    let mut v = Validator {
        wf,
        file: wf.path.display().to_string(),
        templates: Templates::new(),
        all_ids: wf
            .all_steps()
            .into_iter()
            .filter_map(|s| s.id.as_ref().map(|id| id.value.clone()))
            .collect(),
        seen: HashSet::new(),
        diagnostics: Vec::new(),
    };
    v.duplicate_ids();
    v.tools();
    v.agent_defs();
    v.agents();
    let before_any = Scope {
        done: &HashSet::new(),
        hidden: None,
        locals: &[],
        current: None,
        checks: Checks::All,
        note: Some("the top-level `group_id` and `metadata` are rendered before any step runs"),
        only: None,
    };
    if let Some(group_id) = &wf.group_id {
        v.template(group_id, &before_any);
    }
    for value in wf.metadata.values() {
        v.value(value, &before_any);
    }
    let mut reach = Reach::default();
    for trace in &wf.traces {
        let scope = Scope {
            done: &reach.done,
            hidden: Some(&reach.hidden),
            locals: &[],
            current: None,
            checks: Checks::All,
            note: Some("a trace's name and metadata are rendered when the trace starts"),
            only: None,
        };
        v.template(&trace.name, &scope);
        for value in trace.metadata.values() {
            v.value(value, &scope);
        }
        v.steps(&trace.steps, &mut reach, false);
    }
    v.diagnostics.sort_by_key(|d| d.loc);
    v.diagnostics
}

/// Which references a template check looks at.
#[derive(Clone, Copy, PartialEq)]
enum Checks {
    All,
    /// Syntax, roots, `vars` and `trace`, but not `steps` (checked per use).
    NotSteps,
    /// Only `steps` references (the rest was checked once).
    OnlySteps,
}

/// Why a step that has finished by some point still cannot be referenced there.
#[derive(Clone, Debug)]
enum Hidden {
    /// It is inside a `foreach:` (the id of the loop step, if it has one): it ran once per item.
    InLoop(Option<String>),
    /// It is in a parallel branch beside the one being checked: it runs at the same time.
    Beside,
}

/// What the steps at one point of the walk through the file can see.
#[derive(Clone, Debug, Default)]
struct Reach {
    /// Ids of the steps that have finished, and whose outputs can be used.
    done: HashSet<String>,
    hidden: HashMap<String, Hidden>,
    /// The `as:` names of the loops around, outermost first.
    locals: Vec<String>,
}

/// The point of execution at which a template is rendered.
struct Scope<'s> {
    /// Ids of the steps that have finished by then.
    done: &'s HashSet<String>,
    /// Steps that have run but cannot be referenced from here, and why.
    hidden: Option<&'s HashMap<String, Hidden>>,
    /// Loop variables (`item`) defined here.
    locals: &'s [String],
    /// The step being rendered, which cannot use its own output.
    current: Option<&'s str>,
    checks: Checks,
    /// Why a step has not run yet, for the help line.
    note: Option<&'s str>,
    /// The only variables this template may use, when narrower than usual.
    only: Option<&'s Only>,
}

/// A narrower set of template roots, and what to say about a reference outside it.
struct Only {
    roots: &'static [&'static str],
    message: &'static str,
    help: &'static str,
}

struct Validator<'w> {
    wf: &'w Workflow,
    file: String,
    templates: Templates,
    /// Every step id of the file, in file order.
    all_ids: IndexSet<String>,
    /// (location, message) pairs already reported, so a shared template reports once.
    seen: HashSet<(Loc, String)>,
    diagnostics: Vec<Diagnostic>,
}

impl<'w> Validator<'w> {
    fn report(&mut self, loc: Loc, message: String, help: Option<String>, width: usize) {
        if !self.seen.insert((loc, message.clone())) {
            return;
        }
        let mut d = Diagnostic::new(&self.file, loc, message).width(width);
        d.help = help;
        self.diagnostics.push(d);
    }

    fn duplicate_ids(&mut self) {
        let mut first: Vec<(&str, Loc)> = Vec::new();
        for step in self.wf.all_steps() {
            let Some(id) = &step.id else { continue };
            match first.iter().find(|(name, _)| *name == id.value) {
                Some((_, loc)) => {
                    let message = format!(
                        "duplicate step id `{}` (first used on line {})",
                        id.value, loc.line
                    );
                    let help = "step ids are unique across the file; rename one of them";
                    self.report(id.loc, message, Some(help.into()), id.value.chars().count());
                }
                None => first.push((&id.value, id.loc)),
            }
        }
    }

    /// Agent instructions: syntax, variables and `trace` once per agent; their step references
    /// are checked at each step that uses the agent, or for existence when no step does.
    fn agents(&mut self) {
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

    /// Checks `steps` in execution order; `in_span` tells whether a span encloses them (a
    /// `span:`, a `parallel:` step, or the item span of a `foreach:`).
    fn steps(&mut self, steps: &[Step], reach: &mut Reach, in_span: bool) {
        for step in steps {
            let current = step.id.as_ref().map(|id| id.as_str());
            let scope = Scope {
                done: &reach.done,
                hidden: Some(&reach.hidden),
                locals: &reach.locals,
                current,
                checks: Checks::All,
                note: None,
                only: None,
            };
            if let Some(name) = &step.name {
                self.template(name, &scope);
            }
            if let Some(condition) = &step.condition {
                self.condition(condition, &scope);
            }
            match &step.kind {
                StepKind::Agent {
                    agent,
                    input,
                    mock,
                    session,
                } => {
                    self.agent_use(agent, step, &scope);
                    self.template(input, &scope);
                    if let Some(session) = session {
                        let scope = Scope {
                            done: &HashSet::new(),
                            hidden: None,
                            locals: &[],
                            current,
                            checks: Checks::All,
                            note: None,
                            only: Some(&SESSION),
                        };
                        self.template(session, &scope);
                    }
                    if let Some(turns) = mock {
                        self.mock(agent, turns);
                    }
                }
                StepKind::Run { command, env } => {
                    match command {
                        Command::Script(script) => self.script(script),
                        Command::Argv(argv) => {
                            for arg in argv {
                                self.template(arg, &scope);
                            }
                        }
                    }
                    for value in env.values() {
                        self.template(value, &scope);
                    }
                }
                StepKind::Span {
                    name,
                    events,
                    steps: children,
                } => {
                    let scope = Scope {
                        note: Some("a span's name and events are rendered when the span starts"),
                        ..scope
                    };
                    self.template(name, &scope);
                    for event in events {
                        self.event(event, &scope);
                    }
                    self.steps(children, reach, true);
                }
                StepKind::Event(event) => {
                    if !in_span {
                        self.report(
                            step.loc,
                            "an `event:` step must be inside a `span:` block; events belong to the enclosing span".into(),
                            Some("move it into the `steps:` of a `span:` (or of a `foreach:`), or list it under that span's `events:`".into()),
                            1,
                        );
                    }
                    self.event(event, &scope);
                }
                StepKind::Parallel { branches, .. } => self.parallel(branches, reach),
                StepKind::Foreach {
                    items,
                    as_name,
                    steps: children,
                    ..
                } => {
                    let scope = Scope {
                        note: Some("a `foreach:` list is rendered before the loop starts"),
                        ..scope
                    };
                    self.foreach_items(items, &scope);
                    let mut inner = reach.clone();
                    inner.locals.push(as_name.clone());
                    self.steps(children, &mut inner, true);
                    // Each item runs the steps again: after the loop only its output is known.
                    let loop_id = current.map(str::to_string);
                    for id in ids_within(children) {
                        reach.hidden.insert(id, Hidden::InLoop(loop_id.clone()));
                    }
                }
            }
            if let Some(id) = current {
                reach.done.insert(id.to_string());
            }
        }
    }

    /// Branches run at the same time: each sees what ran before the `parallel:` step but none
    /// of the others; the steps after it see every branch.
    fn parallel(&mut self, branches: &[Step], reach: &mut Reach) {
        let mut done = reach.done.clone();
        let mut in_loops = Vec::new();
        // Each branch's ids, found once: walking every other branch again for each branch made
        // a wide `parallel:` quadratic in its size.
        let ids: Vec<Vec<String>> = branches
            .iter()
            .map(|b| ids_within(std::slice::from_ref(b)))
            .collect();
        for (i, branch) in branches.iter().enumerate() {
            let mut inner = reach.clone();
            for (j, others) in ids.iter().enumerate() {
                if j != i {
                    for id in others {
                        inner.hidden.insert(id.clone(), Hidden::Beside);
                    }
                }
            }
            self.steps(std::slice::from_ref(branch), &mut inner, true);
            done.extend(inner.done);
            in_loops.extend(
                inner
                    .hidden
                    .into_iter()
                    .filter(|(_, why)| matches!(why, Hidden::InLoop(_))),
            );
        }
        reach.done = done;
        reach.hidden.extend(in_loops);
    }

    /// `foreach:` items: a list (whose strings are templates), or one expression giving a list.
    fn foreach_items(&mut self, items: &LocatedValue, scope: &Scope) {
        match &items.value {
            Value::String(text) => {
                if single_expression(text).is_none() {
                    let help = if is_template(text) {
                        "the expression must give a list; text around `{{ }}` would make a string"
                    } else {
                        "write the items as a YAML list (`foreach: [a, b]`) or name one with `{{ vars.topics }}`"
                    };
                    self.report(
                        items.loc,
                        "`foreach:` must be a list or a single expression like `{{ vars.topics }}`"
                            .into(),
                        Some(help.into()),
                        1,
                    );
                }
                self.check(text, items.loc, scope);
            }
            Value::Array(_) => self.value(items, scope),
            // Anything else was reported by the parser.
            _ => {}
        }
    }

    /// `if:` — one expression, bare (`steps.check.status == 'ok'`) or in `{{ }}`.
    fn condition(&mut self, condition: &Located<String>, scope: &Scope) {
        let text = condition.value.trim();
        if text.is_empty() {
            return; // reported by the parser
        }
        let expr = single_expression(text).unwrap_or(text);
        match self.templates.expression_variables(expr) {
            Ok(paths) => {
                self.paths(&paths, condition.loc, scope);
                self.statuses(expr, condition.loc);
            }
            Err(err) => {
                let help = is_template(text).then(|| {
                    "write the condition bare (`steps.check.status == 'ok'`) or as one `{{ ... }}`"
                        .to_string()
                });
                self.report(
                    condition.loc,
                    format!("`if:` is not a valid expression: {}", error_text(&err)),
                    help,
                    1,
                );
            }
        }
    }

    fn agent_use(&mut self, agent: &Located<String>, step: &Step, scope: &Scope) {
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

    fn unknown_agent(&mut self, agent: &Located<String>) {
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

    fn script(&mut self, script: &Located<String>) {
        if is_template(&script.value) {
            self.report(
                script.loc,
                "templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form".into(),
                Some(
                    "pass the value through `env:` (env: { TOPIC: \"{{ vars.topic }}\" }, then use \
                     \"$TOPIC\" in the script) or use the argv form `run: [prog, arg]`, which never \
                     goes through a shell"
                        .into(),
                ),
                1,
            );
        }
    }

    fn event(&mut self, event: &EventDef, scope: &Scope) {
        self.template(&event.name, scope);
        for value in event.attributes.values() {
            self.value(value, scope);
        }
    }

    /// Every string leaf of a YAML value is a template.
    fn value(&mut self, value: &LocatedValue, scope: &Scope) {
        fn leaves<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
            match value {
                Value::String(s) => out.push(s),
                Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
                Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
                _ => {}
            }
        }
        let mut strings = Vec::new();
        leaves(&value.value, &mut strings);
        for s in strings {
            self.check(s, value.loc, scope);
        }
    }

    fn template(&mut self, text: &Located<String>, scope: &Scope) {
        self.check(&text.value, text.loc, scope);
    }

    fn check(&mut self, text: &str, loc: Loc, scope: &Scope) {
        if !is_template(text) {
            return;
        }
        let paths = match self.templates.variables(text) {
            Ok(paths) => paths,
            Err(err) => {
                if scope.checks != Checks::OnlySteps {
                    self.report(
                        loc,
                        format!("template error: {}", error_text(&err)),
                        None,
                        1,
                    );
                }
                return;
            }
        };
        self.paths(&paths, loc, scope);
        for code in code_segments(text) {
            self.statuses(code, loc);
        }
    }

    /// The variable paths a template or an expression reads, against what `scope` can see.
    fn paths(&mut self, paths: &[String], loc: Loc, scope: &Scope) {
        for path in paths {
            let parts: Vec<&str> = path.split('.').collect();
            if let (Some(only), Some(root)) = (scope.only, parts.first())
                && scope.checks != Checks::OnlySteps
                && !only.roots.contains(root)
                && !GLOBALS.contains(root)
            {
                self.report(
                    loc,
                    format!("`{path}`: {}", only.message),
                    Some(only.help.to_string()),
                    1,
                );
                continue;
            }
            match parts[..] {
                ["steps", id, ref rest @ ..] => {
                    if scope.checks != Checks::NotSteps {
                        self.step_ref(id, rest.first().copied(), loc, scope);
                    }
                }
                _ if scope.checks == Checks::OnlySteps => {}
                [root, ..] if scope.locals.iter().any(|l| l == root) => {}
                ["vars", name, ..] => {
                    if !self.wf.vars.contains_key(name) {
                        let suggestion = suggest(name, self.wf.vars.keys().map(String::as_str))
                            .map(|s| format!("vars.{s}"));
                        let help = suggestion.is_none().then(|| {
                            format!(
                                "declare it under `vars:` with a default value (`--var {name}=...` overrides it)"
                            )
                        });
                        self.report(
                            loc,
                            format!(
                                "unknown variable `vars.{name}`{}",
                                did_you_mean(suggestion.as_deref())
                            ),
                            help,
                            1,
                        );
                    }
                }
                ["trace", field, ..] => {
                    if !TRACE_FIELDS.contains(&field) {
                        let suggestion = suggest(field, TRACE_FIELDS.iter().copied())
                            .map(|s| format!("trace.{s}"));
                        self.report(
                            loc,
                            format!(
                                "`trace.{field}`: a trace has `id` and `group_id`{}",
                                did_you_mean(suggestion.as_deref())
                            ),
                            None,
                            1,
                        );
                    }
                }
                [root, ..] => {
                    if !matches!(root, "vars" | "steps" | "trace") && !GLOBALS.contains(&root) {
                        self.unknown_root(root, loc, scope);
                    }
                }
                [] => {}
            }
        }
    }

    fn unknown_root(&mut self, root: &str, loc: Loc, scope: &Scope) {
        let suggestion = suggest(root, scope.locals.iter().map(String::as_str));
        let message = match (suggestion, scope.locals) {
            (Some(_), _) => format!("unknown variable `{root}`{}", did_you_mean(suggestion)),
            (None, []) => {
                format!("unknown variable `{root}`; templates can use `vars`, `steps` and `trace`")
            }
            (None, locals) => {
                let mut names: Vec<String> = ["vars", "steps", "trace"]
                    .into_iter()
                    .map(String::from)
                    .chain(locals.iter().cloned())
                    .collect();
                let last = names.pop().unwrap_or_default();
                format!(
                    "unknown variable `{root}`; templates can use {} and `{last}` here",
                    list(&names)
                )
            }
        };
        // A loop's variable used outside its loop.
        let wf: &'w Workflow = self.wf;
        let help = wf.all_steps().into_iter().find_map(|step| match &step.kind {
            StepKind::Foreach { as_name, .. } if as_name == root => Some(format!(
                "`{root}` is the variable of the `foreach:` on line {}; it is only defined in that loop's `steps:`",
                step.loc.line
            )),
            _ => None,
        });
        self.report(loc, message, help, 1);
    }

    /// `steps.<id>.status` compared with a literal it can never equal (GitHub Actions habits
    /// such as `'success'` included).
    fn statuses(&mut self, code: &str, loc: Loc) {
        for (id, literal) in status_comparisons(code) {
            if STATUSES.contains(&literal.as_str()) {
                continue;
            }
            let suggestion = match literal.to_lowercase().as_str() {
                "success" | "succeeded" | "passed" | "completed" => Some("ok"),
                "failure" | "failed" | "fail" | "cancelled" | "canceled" => Some("error"),
                "skip" => Some("skipped"),
                other => suggest(other, STATUSES.iter().copied()),
            };
            self.report(
                loc,
                format!(
                    "`steps.{id}.status` is `ok`, `error` or `skipped`, never `{literal}`{}",
                    did_you_mean(suggestion)
                ),
                None,
                1,
            );
        }
    }

    /// Tools: a JSON Schema of an object for the arguments, and command templates that only
    /// use what is known whenever the tool is called.
    fn tools(&mut self) {
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

    /// Agents: the tools and handoffs they list exist, and their output schema compiles.
    fn agent_defs(&mut self) {
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
    fn mock(&mut self, agent: &Located<String>, turns: &[MockTurn]) {
        let wf: &'w Workflow = self.wf;
        let mut current = wf.agents.get(&agent.value);
        for turn in turns {
            match turn {
                MockTurn::Text(_) => {}
                MockTurn::ToolCalls(calls) => {
                    for call in calls {
                        if !wf.tools.contains_key(&call.name.value) {
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

    fn step_ref(&mut self, id: &str, field: Option<&str>, loc: Loc, scope: &Scope) {
        if !self.all_ids.contains(id) {
            let suggestion = suggest(id, self.all_ids.iter().map(String::as_str));
            let help = suggestion
                .is_none()
                .then(|| "only steps with an `id:` can be referenced".to_string());
            self.report(
                loc,
                format!("unknown step `{id}`{}", did_you_mean(suggestion)),
                help,
                1,
            );
        } else if scope.current == Some(id) {
            self.report(
                loc,
                format!("step `{id}` cannot use its own output"),
                None,
                1,
            );
        } else if let Some(why) = (!scope.done.contains(id))
            .then_some(scope.hidden)
            .flatten()
            .and_then(|hidden| hidden.get(id))
        {
            let (message, help) = match why {
                Hidden::InLoop(Some(loop_id)) => (
                    format!(
                        "step `{id}` is inside a `foreach:`; use the loop's own output (`steps.{loop_id}.output`)"
                    ),
                    "the steps of a loop run once per item; the loop's output is the list of each item's last output",
                ),
                Hidden::InLoop(None) => (
                    format!(
                        "step `{id}` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)"
                    ),
                    "give the `foreach:` step an `id:`; its output is the list of each item's last output",
                ),
                Hidden::Beside => (
                    format!("step `{id}` runs in a parallel branch beside this one"),
                    "the branches of a `parallel:` step run at the same time; use their outputs in the steps after it",
                ),
            };
            self.report(loc, message, Some(help.to_string()), 1);
        } else if !scope.done.contains(id) {
            let help = scope
                .note
                .unwrap_or("a template can only use the outputs of steps that run before it")
                .to_string();
            self.report(
                loc,
                format!("step `{id}` has not run yet at this point"),
                Some(help),
                1,
            );
        }
        if let Some(field) = field
            && !STEP_FIELDS.contains(&field)
        {
            let suggestion =
                suggest(field, STEP_FIELDS.iter().copied()).map(|s| format!("steps.{id}.{s}"));
            self.report(
                loc,
                format!(
                    "`steps.{id}.{field}`: a step has `output` and `status`{}",
                    did_you_mean(suggestion.as_deref())
                ),
                None,
                1,
            );
        }
    }
}

/// The ids of `steps` and of every step nested in them.
fn ids_within(steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    for step in steps {
        if let Some(id) = &step.id {
            out.push(id.value.clone());
        }
        match &step.kind {
            StepKind::Span { steps, .. } | StepKind::Foreach { steps, .. } => {
                out.extend(ids_within(steps))
            }
            StepKind::Parallel { branches, .. } => out.extend(ids_within(branches)),
            StepKind::Agent { .. } | StepKind::Run { .. } | StepKind::Event(_) => {}
        }
    }
    out
}

/// minijinja's message without its location suffix.
fn error_text(err: &minijinja::Error) -> String {
    let message = err.to_string();
    match message.rfind(" (in ") {
        Some(i) => message[..i].to_string(),
        None => message,
    }
}

/// The code inside a template's `{{ }}` and `{% %}` tags.
fn code_segments(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start..];
        let close = if after.starts_with("{{") {
            "}}"
        } else if after.starts_with("{%") {
            "%}"
        } else {
            rest = &rest[start + 1..];
            continue;
        };
        let body = &after[2..];
        match body.find(close) {
            Some(end) => {
                out.push(&body[..end]);
                rest = &body[end + close.len()..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// `(id, literal)` for each `steps.<id>.status == 'literal'` (or `!=`, either way round) in an
/// expression.
fn status_comparisons(code: &str) -> Vec<(String, String)> {
    #[derive(Debug, PartialEq)]
    enum Token {
        Path(String),
        Literal(String),
        Compare,
        Other,
    }
    let mut tokens = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_ascii_alphabetic() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' || d == '.' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Path(code[i..end].to_string()));
        } else if c == '\'' || c == '"' {
            let mut literal = String::new();
            for (_, d) in chars.by_ref() {
                if d == c {
                    break;
                }
                literal.push(d);
            }
            tokens.push(Token::Literal(literal));
        } else if (c == '=' || c == '!') && chars.peek().is_some_and(|&(_, d)| d == '=') {
            chars.next();
            tokens.push(Token::Compare);
        } else if !c.is_whitespace() {
            tokens.push(Token::Other);
        }
    }
    let status_of = |token: &Token| match token {
        Token::Path(path) => path
            .strip_prefix("steps.")?
            .strip_suffix(".status")
            .filter(|id| !id.is_empty() && !id.contains('.'))
            .map(str::to_string),
        _ => None,
    };
    let mut out = Vec::new();
    for window in tokens.windows(3) {
        let [left, Token::Compare, right] = window else {
            continue;
        };
        match (left, right) {
            (Token::Literal(literal), path) | (path, Token::Literal(literal)) => {
                if let Some(id) = status_of(path) {
                    out.push((id, literal.clone()));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::workflow::check_str;
    // Validation's input is a parsed workflow: the tests build it with the parser.
    use crate::workflow::parse::parse_str;

    /// Every problem in the file, parse and validation together, as `FILE:LINE:COL: message`.
    fn problems(src: &str) -> Vec<String> {
        let (_, diags) = check_str("w.yaml", PathBuf::from("w.yaml"), src);
        diags.iter().map(Diagnostic::headline).collect()
    }

    fn helps(src: &str) -> Vec<String> {
        let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        assert_eq!(diags, [], "parse problems");
        validate(&wf.expect("a workflow"))
            .into_iter()
            .map(|d| d.help.unwrap_or_default())
            .collect()
    }

    const HEAD: &str =
        "name: t\nmodel: m\nvars: { topic: x }\nagents:\n  writer: { instructions: hi }\n";

    #[test]
    fn duplicate_ids_point_at_the_second_and_name_the_first() {
        let src = format!(
            "{HEAD}traces:\n  - name: a\n    steps:\n      - {{ id: s, run: echo }}\n  - name: b\n    steps:\n      - span: S\n        steps:\n          - {{ id: s, run: echo }}\n"
        );
        assert_eq!(
            problems(&src),
            ["w.yaml:14:19: duplicate step id `s` (first used on line 9)"]
        );
    }

    #[test]
    fn agents_must_exist_and_have_a_model() {
        let src = "name: t\nagents:\n  writer: {}\n  critic: { model: m }\nsteps:\n  - { agent: writr, input: a }\n  - { agent: writer, input: b }\n  - { agent: writer, input: c }\n  - { agent: critic, input: d }\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:3: agent `writer` has no model: set `model:` on the agent or at the top level",
                "w.yaml:6:14: unknown agent `writr`; did you mean `writer`?",
            ]
        );
    }

    #[test]
    fn an_event_step_belongs_inside_a_span() {
        let src =
            "name: t\nsteps:\n  - event: too early\n  - span: S\n    steps:\n      - event: fine\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:5: an `event:` step must be inside a `span:` block; events belong to the enclosing span"
            ]
        );
    }

    #[test]
    fn a_shell_script_may_not_hold_templates() {
        let src = "name: t\nvars: { topic: x }\nsteps:\n  - run: echo {{ vars.topic }}\n  - run: \"echo {% if true %}y{% endif %}\"\n  - run: [echo, \"{{ vars.topic }}\"]\n    env: { TOPIC: \"{{ vars.topic }}\" }\n  - run: echo \"$TOPIC\"\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:4:10: templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form",
                "w.yaml:5:10: templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form",
            ]
        );
        assert_eq!(
            helps(src)[0],
            "pass the value through `env:` (env: { TOPIC: \"{{ vars.topic }}\" }, then use \"$TOPIC\" in the script) or use the argv form `run: [prog, arg]`, which never goes through a shell"
        );
    }

    #[test]
    fn template_syntax_is_checked_in_every_templated_field() {
        let src = r#"name: "{{ bad"
model: m
group_id: "{{ bad"
metadata: { k: "{{ bad" }
agents:
  writer: { instructions: "{{ bad" }
traces:
  - name: "{% if %}"
    metadata: { k: ["ok", "{{ bad"] }
    steps:
      - name: "{{ bad"
        agent: writer
        input: "{{ bad"
      - run: [echo, "{{ bad"]
        env: { A: "{{ bad" }
      - span: "{{ bad"
        events:
          - { name: "{{ bad", attributes: { a: { deep: "{{ bad" } } }
        steps:
          - event: "{{ bad"
            attributes: { b: "{{ bad" }
"#;
        let e =
            "template error: syntax error: unexpected end of input, expected end of variable block";
        let expected: Vec<String> = [
            (3, 11),
            (4, 16),
            (6, 27),
            (8, 11),
            (9, 20),
            (11, 15),
            (13, 16),
            (14, 21),
            (15, 19),
            (16, 15),
            (18, 21),
            (18, 48),
            (20, 20),
            (21, 30),
        ]
        .iter()
        .map(|(l, c)| format!("w.yaml:{l}:{c}: {e}"))
        .collect();
        let mut expected = expected;
        expected[3] = "w.yaml:8:11: template error: syntax error: unexpected end of block".into();
        assert_eq!(problems(src), expected);
    }

    #[test]
    fn templates_can_use_vars_steps_and_trace_only() {
        let src = format!(
            "{HEAD}steps:\n  - id: a\n    agent: writer\n    input: \"{{{{ vars.topc }}}} {{{{ foo }}}} {{{{ trace.name }}}} {{{{ trace.id }}}} {{{{ range(2) | list }}}}\"\n"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:9:12: unknown variable `foo`; templates can use `vars`, `steps` and `trace`",
                "w.yaml:9:12: `trace.name`: a trace has `id` and `group_id`",
                "w.yaml:9:12: unknown variable `vars.topc`; did you mean `vars.topic`?",
            ]
        );
    }

    #[test]
    fn step_references_follow_execution_order() {
        let src = format!(
            "{HEAD}steps:
  - id: first
    agent: writer
    input: \"{{{{ steps.later.output }}}} {{{{ steps.first.output }}}} {{{{ steps.frist.output }}}}\"
  - id: second
    run: [echo, \"{{{{ steps.first.outptu }}}}\", \"{{{{ steps.first.status }}}}\", \"{{{{ steps.first.output.field }}}}\"]
  - id: later
    run: echo
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:9:12: step `first` cannot use its own output",
                "w.yaml:9:12: unknown step `frist`; did you mean `first`?",
                "w.yaml:9:12: step `later` has not run yet at this point",
                "w.yaml:11:17: `steps.first.outptu`: a step has `output` and `status`; did you mean `steps.first.output`?",
            ]
        );
    }

    #[test]
    fn spans_and_workflow_level_values_render_before_their_steps() {
        let src = r#"name: t
group_id: "{{ steps.a.output }}"
metadata: { m: "{{ steps.a.output }}" }
traces:
  - name: one
    steps:
      - id: a
        run: echo
      - span: "{{ steps.inner.output }}"
        events: [{ name: e, attributes: { x: "{{ steps.inner.output }}", y: "{{ steps.a.output }}" } }]
        steps:
          - { id: inner, run: echo }
          - { event: done, attributes: { n: "{{ steps.inner.output | length }}" } }
  - name: "two after {{ steps.a.output }}"
    metadata: { m: "{{ steps.inner.status }}", n: "{{ steps.b.output }}" }
    steps:
      - { id: b, run: echo }
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:2:11: step `a` has not run yet at this point",
                "w.yaml:3:16: step `a` has not run yet at this point",
                "w.yaml:9:15: step `inner` has not run yet at this point",
                "w.yaml:10:46: step `inner` has not run yet at this point",
                "w.yaml:15:51: step `b` has not run yet at this point",
            ]
        );
        let helps = helps(src);
        assert_eq!(
            helps[0],
            "the top-level `group_id` and `metadata` are rendered before any step runs"
        );
        assert_eq!(
            helps[2],
            "a span's name and events are rendered when the span starts"
        );
    }

    #[test]
    fn agent_instructions_are_checked_where_each_step_uses_the_agent() {
        let src = r#"name: t
model: m
agents:
  writer: { instructions: "Improve {{ steps.draft.output }} {{ vars.nope }}" }
steps:
  - { id: early, agent: writer, input: go }
  - { id: draft, run: echo }
  - { id: late, agent: writer, input: go }
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:4:27: unknown variable `vars.nope`",
                "w.yaml:4:27: step `draft` has not run yet at this point",
            ]
        );
        assert_eq!(
            helps(src)[1],
            "the instructions of agent `writer` are rendered when step `early` runs (line 6)"
        );
    }

    #[test]
    fn tool_parameters_and_output_schemas_must_compile() {
        let src = r#"name: t
model: m
tools:
  typo: { command: [a], parameters: { type: objekt } }
  deep: { command: [a], parameters: { type: object, properties: { n: { pattern: "(" } } } }
  list: { command: [a], parameters: { type: array, items: { type: string } } }
  untyped: { command: [a], parameters: { properties: {} } }
  remote: { command: [a], parameters: { $ref: "http://example.com/s.json" } }
  fine: { command: [a], parameters: { type: object, properties: { n: { type: integer } } } }
agents:
  a: { output_schema: { type: object, required: x } }
  b: { output_schema: { type: string } }
steps:
  - { agent: a, input: hi }
"#;
        assert_eq!(
            problems(src),
            [
                r#"w.yaml:4:37: the `parameters` of tool `typo` is not a valid JSON Schema: "objekt" is not valid under any of the schemas listed in the 'anyOf' keyword (at `/type`)"#,
                r#"w.yaml:5:37: the `parameters` of tool `deep` is not a valid JSON Schema: "(" is not a "regex" (at `/properties/n/pattern`)"#,
                "w.yaml:6:37: the `parameters` of tool `list` must have `type: object`, found `type: \"array\"`",
                "w.yaml:7:40: the `parameters` of tool `untyped` must have `type: object`",
                "w.yaml:8:39: the `parameters` of tool `remote` is not a valid JSON Schema: Resource 'http://example.com/s.json' is not present in a registry and retrieving it failed: `resolve-http` feature or a custom resolver is required to resolve external schemas via HTTP",
                r#"w.yaml:11:23: the `output_schema` of agent `a` is not a valid JSON Schema: "x" is not of type "array" (at `/required`)"#,
            ]
        );
        assert_eq!(
            helps(src)[2],
            "a tool's arguments are one JSON object: `{ type: object, properties: { ... } }`"
        );
    }

    #[test]
    fn agents_list_known_tools_and_handoffs() {
        let src = r#"name: t
model: m
tools:
  lookup: { command: [a] }
  refund: { command: [a] }
agents:
  triage:
    tools: [lookpu, refund, refund, zzz]
    handoffs: [billing, triage, biling, billing, ghost, "Billing Desk"]
  billing: {}
  Billing Desk: {}
steps:
  - { agent: triage, input: hi }
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:8:13: unknown tool `lookpu`; did you mean `lookup`?",
                "w.yaml:8:29: agent `triage` lists tool `refund` twice",
                "w.yaml:8:37: unknown tool `zzz`",
                "w.yaml:9:25: agent `triage` cannot hand off to itself",
                "w.yaml:9:33: unknown agent `biling`; did you mean `billing`?",
                "w.yaml:9:41: agent `triage` lists handoff `billing` twice",
                "w.yaml:9:50: unknown agent `ghost`",
                "w.yaml:9:57: agent `Billing Desk` cannot be a handoff target: `transfer_to_Billing Desk` is not a valid tool name",
            ]
        );
        assert_eq!(helps(src)[2], "tools defined: `lookup`, `refund`");
        assert_eq!(
            helps(src)[6],
            "agents defined: `triage`, `billing`, `Billing Desk`"
        );
    }

    #[test]
    fn mock_turns_name_tools_and_handoffs_the_agent_can_take() {
        let src = r#"name: t
model: m
tools:
  lookup: { command: [a] }
agents:
  triage: { tools: [lookup], handoffs: [billing] }
  billing: { handoffs: [refunds] }
  refunds: {}
  other: {}
steps:
  - agent: triage
    input: hi
    mock:
      - tool_calls: [{ name: lookup, arguments: { q: 1 } }, { name: lokup }, { name: transfer_to_billing }]
      - handoff: billing
      - handoff: refunds
      - answer
  - agent: triage
    input: hi
    mock: [{ handoff: refunds }, { handoff: other }, { handoff: bilings }]
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:14:69: unknown tool `lokup`; did you mean `lookup`?",
                "w.yaml:14:86: unknown tool `transfer_to_billing`",
                "w.yaml:20:23: mock hands off to `refunds`, which agent `triage` cannot hand off to",
                "w.yaml:20:45: mock hands off to `other`, which agent `refunds` cannot hand off to",
                "w.yaml:20:65: unknown agent `bilings`; did you mean `billing`?",
            ]
        );
        let helps = helps(src);
        assert_eq!(
            helps[1],
            "handoffs are written `handoff: billing` (in `mock:`) or listed under `handoffs:`"
        );
        assert_eq!(
            helps[2],
            "add `refunds` to the `handoffs:` of agent `triage`"
        );
    }

    #[test]
    fn sessions_use_vars_and_tool_commands_use_vars_and_trace() {
        let src = r#"name: t
model: m
vars: { cid: c1 }
tools:
  look: { command: [a, "{{ vars.cid }} {{ trace.id }} {{ trace.group_id }}", "{{ steps.s.output }}", "{{ vars.cdi }}", "{{ bad"] }
agents:
  w: { tools: [look] }
steps:
  - id: s
    agent: w
    input: hi
    session: "{{ vars.cid }}-{{ range(2) | length }}"
  - id: u
    agent: w
    input: hi
    session: "{{ trace.group_id }} {{ steps.s.output }} {{ vars.nope }}"
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:5:78: `steps.s.output`: tool commands can only use `vars` and `trace`",
                "w.yaml:5:102: unknown variable `vars.cdi`; did you mean `vars.cid`?",
                "w.yaml:5:120: template error: syntax error: unexpected end of input, expected end of variable block",
                "w.yaml:16:14: `steps.s.output`: a `session:` can only use `vars`",
                "w.yaml:16:14: `trace.group_id`: a `session:` can only use `vars`",
                "w.yaml:16:14: unknown variable `vars.nope`",
            ]
        );
        assert_eq!(
            helps(src)[3],
            "the session key is rendered when the trace starts, because the trace's group id defaults to it"
        );
    }

    #[test]
    fn handoff_targets_run_in_the_step_so_they_need_a_model_and_their_instructions_are_checked_there()
     {
        let src = r#"name: t
agents:
  triage: { model: m, handoffs: [billing] }
  billing: { handoffs: [triage], instructions: "{{ steps.later.output }}" }
steps:
  - { id: first, agent: triage, input: hi }
  - { id: later, run: echo }
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:4:3: agent `billing` has no model: set `model:` on the agent or at the top level",
                "w.yaml:4:48: step `later` has not run yet at this point",
            ]
        );
        assert_eq!(
            helps(src)[1],
            "the instructions of agent `billing` are rendered when step `first` runs (line 6)"
        );
    }

    #[test]
    fn conditions_are_expressions_checked_like_templates() {
        let src = format!(
            "{HEAD}steps:
  - id: check
    run: echo
  - if: steps.check.status == 'ok' and vars.topic
    run: echo
  - if: \"{{{{ steps.check.status != 'skipped' }}}}\"
    run: echo
  - if: steps.check.status ==
    run: echo
  - if: \"{{{{ steps.check.output }}}} == 'x'\"
    run: echo
  - id: own
    if: steps.own.output or steps.later.output or steps.chek.output or vars.topc or foo
    run: echo
  - if: steps.check.status == 'success' or 'failure' != steps.check.status or steps.check.status == 'sucess'
    run: echo
  - run: [echo, \"{{% if steps.check.status == 'passed' %}}y{{% endif %}}\", \"steps.check.status == 'plain text'\"]
  - if: true
    run: echo
  - id: later
    run: echo
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:13:9: `if:` is not a valid expression: syntax error: unexpected end of input, expected expression",
                "w.yaml:15:9: `if:` is not a valid expression: syntax error: unexpected `}`, expected `:`",
                "w.yaml:18:9: unknown variable `foo`; templates can use `vars`, `steps` and `trace`",
                "w.yaml:18:9: unknown step `chek`; did you mean `check`?",
                "w.yaml:18:9: step `later` has not run yet at this point",
                "w.yaml:18:9: step `own` cannot use its own output",
                "w.yaml:18:9: unknown variable `vars.topc`; did you mean `vars.topic`?",
                "w.yaml:20:9: `steps.check.status` is `ok`, `error` or `skipped`, never `success`; did you mean `ok`?",
                "w.yaml:20:9: `steps.check.status` is `ok`, `error` or `skipped`, never `failure`; did you mean `error`?",
                "w.yaml:20:9: `steps.check.status` is `ok`, `error` or `skipped`, never `sucess`",
                "w.yaml:22:17: `steps.check.status` is `ok`, `error` or `skipped`, never `passed`; did you mean `ok`?",
            ]
        );
        assert_eq!(
            helps(&src)[1],
            "write the condition bare (`steps.check.status == 'ok'`) or as one `{{ ... }}`"
        );
    }

    #[test]
    fn foreach_lists_are_lists_or_one_expression() {
        let src = format!(
            "{HEAD}vars: {{ topics: [a, b] }}
steps:
  - id: first
    foreach: \"{{{{ vars.topics }}}}\"
    steps: [{{ run: echo }}]
  - foreach: \"{{{{ vars.topics }}}} and {{{{ vars.topics }}}}\"
    steps: [{{ run: echo }}]
  - foreach: a, b
    steps: [{{ run: echo }}]
  - id: loop
    foreach: \"{{{{ steps.loop.output }}}}{{{{ steps.later.output }}}}\"
    steps: [{{ run: echo }}]
  - foreach: [\"{{{{ vars.topic }}}}\", \"{{{{ vars.nope }}}}\", \"{{{{ item }}}}\", 3]
    steps: [{{ run: echo }}]
  - foreach: \"{{{{ steps.first.output | map(attribute='x') | list }}}}\"
    steps: [{{ run: echo }}]
  - foreach: \"{{{{ bad\"
    steps: [{{ run: echo }}]
  - {{ id: later, run: echo }}
"
        )
        .replacen("vars: { topic: x }\n", "", 1);
        assert_eq!(
            problems(&src),
            [
                "w.yaml:10:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
                "w.yaml:12:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
                "w.yaml:15:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
                "w.yaml:15:14: step `later` has not run yet at this point",
                "w.yaml:15:14: step `loop` cannot use its own output",
                "w.yaml:17:14: unknown variable `vars.topic`; did you mean `vars.topics`?",
                "w.yaml:17:14: unknown variable `vars.nope`",
                "w.yaml:17:14: unknown variable `item`; templates can use `vars`, `steps` and `trace`",
                "w.yaml:21:14: `foreach:` must be a list or a single expression like `{{ vars.topics }}`",
                "w.yaml:21:14: template error: syntax error: unexpected end of input, expected end of variable block",
            ]
        );
        let helps = helps(&src);
        assert_eq!(
            helps[1],
            "write the items as a YAML list (`foreach: [a, b]`) or name one with `{{ vars.topics }}`"
        );
        assert_eq!(
            helps[3],
            "a `foreach:` list is rendered before the loop starts"
        );
    }

    #[test]
    fn the_loop_variable_is_defined_inside_its_loop_only() {
        let src = format!(
            "{HEAD}steps:
  - foreach: [a, b]
    steps:
      - id: inner
        if: item != 'b'
        agent: writer
        input: \"{{{{ item }}}} {{{{ item.name }}}} {{{{ itme }}}}\"
        session: \"{{{{ item }}}}\"
      - foreach: [c]
        as: sub
        steps:
          - run: [echo, \"{{{{ item }}}} {{{{ sub }}}} {{{{ other }}}}\"]
      - run: [echo, \"{{{{ sub }}}}\"]
  - if: item
    run: [echo, \"{{{{ item }}}}\"]
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:12:16: unknown variable `itme`; did you mean `item`?",
                "w.yaml:13:18: `item`: a `session:` can only use `vars`",
                "w.yaml:17:25: unknown variable `other`; templates can use `vars`, `steps`, `trace`, `item` and `sub` here",
                "w.yaml:18:21: unknown variable `sub`; templates can use `vars`, `steps`, `trace` and `item` here",
                "w.yaml:19:9: unknown variable `item`; templates can use `vars`, `steps` and `trace`",
                "w.yaml:20:17: unknown variable `item`; templates can use `vars`, `steps` and `trace`",
            ]
        );
        assert_eq!(
            helps(&src)[3],
            "`sub` is the variable of the `foreach:` on line 14; it is only defined in that loop's `steps:`"
        );
    }

    #[test]
    fn steps_inside_a_loop_run_per_item_and_are_reached_through_the_loop() {
        let src = format!(
            "{HEAD}steps:
  - {{ id: before, run: echo }}
  - id: loop
    foreach: [a]
    steps:
      - {{ id: one, run: [echo, \"{{{{ steps.before.output }}}} {{{{ steps.loop.output }}}}\"] }}
      - {{ id: two, run: [echo, \"{{{{ steps.one.output }}}}\"] }}
      - span: S
        steps:
          - foreach: [b]
            steps: [{{ id: deep, run: echo }}]
          - {{ run: [echo, \"{{{{ steps.deep.output }}}}\"] }}
  - foreach: [c]
    steps: [{{ id: anonymous, run: echo }}]
  - run: [echo, \"{{{{ steps.loop.output }}}} {{{{ steps.two.output }}}} {{{{ steps.deep.status }}}} {{{{ steps.anonymous.output }}}}\"]
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:11:32: step `loop` has not run yet at this point",
                "w.yaml:17:27: step `deep` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)",
                "w.yaml:20:17: step `anonymous` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)",
                "w.yaml:20:17: step `deep` is inside a `foreach:`; use the loop's own output (`steps.loop.output`)",
                "w.yaml:20:17: step `two` is inside a `foreach:`; use the loop's own output (`steps.loop.output`)",
            ]
        );
        assert_eq!(
            helps(&src)[3],
            "the steps of a loop run once per item; the loop's output is the list of each item's last output"
        );
    }

    #[test]
    fn parallel_branches_cannot_see_each_other() {
        let src = format!(
            "{HEAD}steps:
  - {{ id: before, run: echo }}
  - id: checks
    parallel:
      - {{ id: a, run: [echo, \"{{{{ steps.before.output }}}} {{{{ steps.b.output }}}}\"] }}
      - span: B
        steps:
          - {{ id: b, run: echo }}
          - {{ id: b2, run: [echo, \"{{{{ steps.b.output }}}} {{{{ steps.a.output }}}} {{{{ steps.checks.output }}}}\"] }}
      - foreach: [x]
        steps: [{{ id: looped, run: echo }}]
      - event: started
  - run: [echo, \"{{{{ steps.a.output }}}} {{{{ steps.b2.output }}}} {{{{ steps.checks.status }}}} {{{{ steps.looped.output }}}}\"]
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:10:30: step `b` runs in a parallel branch beside this one",
                "w.yaml:14:35: step `a` runs in a parallel branch beside this one",
                "w.yaml:14:35: step `checks` has not run yet at this point",
                "w.yaml:18:17: step `looped` is inside a `foreach:`; use the loop's own output (`steps.<loop id>.output`)",
            ]
        );
        assert_eq!(
            helps(&src)[0],
            "the branches of a `parallel:` step run at the same time; use their outputs in the steps after it"
        );
    }

    #[test]
    fn events_need_a_span_and_parallel_steps_and_loop_items_are_spans() {
        let src = "name: t\nsteps:\n  - event: too early\n  - parallel:\n      - event: on the parallel span\n      - run: echo\n  - foreach: [a]\n    steps:\n      - event: \"on the item span of {{ item }}\"\n      - parallel: [{ event: nested }]\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:5: an `event:` step must be inside a `span:` block; events belong to the enclosing span"
            ]
        );
    }

    #[test]
    fn every_problem_in_a_file_is_reported_at_once() {
        let src = r#"name: many problems
vars: { topic: x }
agents:
  writer: { instructions: "{{ vars.topic }", temprature: 1 }
steps:
  - id: one
    agent: ghost
    input: "{{ steps.two.output }}"
  - id: one
    run: "echo {{ vars.topic }}"
  - event: loose
  - id: two
    run: [echo]
    input: nope
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:4:27: template error: syntax error: unexpected `}`, expected end of variable block",
                "w.yaml:4:46: unknown key `temprature` in agent `writer`; did you mean `temperature`?",
                "w.yaml:7:12: unknown agent `ghost`",
                "w.yaml:8:12: step `two` has not run yet at this point",
                "w.yaml:9:9: duplicate step id `one` (first used on line 6)",
                "w.yaml:10:10: templates are not allowed in a shell script `run:`; pass values through `env:` or use the argv form",
                "w.yaml:11:5: an `event:` step must be inside a `span:` block; events belong to the enclosing span",
                "w.yaml:14:5: `input:` only applies to `agent:` steps",
            ]
        );
    }
}
