//! Reading `steps:` and `traces:`: a step's id, its one form (`agent:`, `run:`, `span:`,
//! `event:`, `parallel:` or `foreach:`) and the keys that belong to that form, recursing into
//! nested steps. Most of what the format is lives here, so it has a file of its own.

use indexmap::IndexMap;

use super::super::node::{Node, NodeKind};
use super::super::schema::{Command, EventDef, Located, Step, StepKind, TraceDef};
use super::expect::Level;
use super::{Fields, Parser};

/// Names a `foreach:` variable may not take: they would hide the template's own roots.
const RESERVED_NAMES: &[&str] = &["vars", "steps", "trace"];
const TRACE_KEYS: &[&str] = &["name", "metadata", "steps"];
pub(super) const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "agent",
    "input",
    "mock",
    "session",
    "run",
    "env",
    "span",
    "steps",
    "events",
    "event",
    "attributes",
    "if",
    "continue_on_error",
    "timeout",
    "retry",
    "parallel",
    "fail_fast",
    "foreach",
    "as",
    "concurrency",
    "expect",
    "scores",
];
const EVENT_KEYS: &[&str] = &["name", "attributes"];
/// The keys that choose a step's form.
const FORMS: &[&str] = &["agent", "run", "span", "event", "parallel", "foreach"];
/// How a message lists the forms: "`agent:`, `run:`, ... or `foreach:`".
const FORMS_TEXT: &str = "`agent:`, `run:`, `span:`, `event:`, `parallel:` or `foreach:`";
/// Keys that belong to some forms only, and those forms.
const FORM_ONLY_KEYS: &[(&str, &[&str])] = &[
    ("input", &["agent"]),
    ("mock", &["agent"]),
    ("session", &["agent"]),
    ("retry", &["agent"]),
    ("env", &["run"]),
    ("steps", &["span", "foreach"]),
    ("events", &["span"]),
    ("attributes", &["event"]),
    ("fail_fast", &["parallel"]),
    ("as", &["foreach"]),
    ("concurrency", &["foreach"]),
    ("expect", &["agent", "run"]),
    ("scores", &["agent", "run"]),
];

/// Whether a step id can be written as `steps.<id>` in a template.
pub(super) fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn identifier_form(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

impl Parser<'_> {
    pub(super) fn traces(
        &mut self,
        top: &Fields,
        root: &Node,
        name: &Located<String>,
    ) -> Vec<TraceDef> {
        match (top.get("steps"), top.get("traces")) {
            (None, None) => {
                self.error(root.loc, "a workflow needs `steps:` (or `traces:`)");
                Vec::new()
            }
            (Some((steps_key, steps)), other) => {
                if let Some((traces_key, _)) = other {
                    let d = self.error(
                        traces_key.loc,
                        "a workflow has either `steps:` or `traces:`, not both",
                    );
                    d.width = "traces".len();
                    self.help("put the steps under one of the `traces:` items");
                }
                let steps = self.steps(steps_key, steps, true);
                vec![TraceDef {
                    name: name.clone(),
                    metadata: IndexMap::new(),
                    steps,
                    loc: root.loc,
                }]
            }
            (None, Some((_, traces))) => {
                let NodeKind::Seq(items) = &traces.kind else {
                    self.wrong_type("traces", "a list of traces", traces);
                    return Vec::new();
                };
                if items.is_empty() {
                    self.error(traces.loc, "`traces:` has no traces");
                }
                items.iter().filter_map(|item| self.trace(item)).collect()
            }
        }
    }

    fn trace(&mut self, node: &Node) -> Option<TraceDef> {
        let f = self.fields(node, TRACE_KEYS, "in a trace", "a trace")?;
        let name = match f.value("name") {
            Some(n) => self.text("name", n),
            None => {
                self.error(node.loc, "a trace needs `name:`");
                None
            }
        };
        let metadata = self.json_map(&f, "metadata");
        let steps = match f.get("steps") {
            Some((key, steps)) => self.steps(key, steps, true),
            None => {
                self.error(node.loc, "a trace needs `steps:`");
                Vec::new()
            }
        };
        Some(TraceDef {
            name: name.unwrap_or_else(|| Located::new(String::new(), node.loc)),
            metadata,
            steps,
            loc: node.loc,
        })
    }

    fn steps(&mut self, key: &Located<String>, node: &Node, required: bool) -> Vec<Step> {
        match &node.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() && required {
                    self.error(node.loc, format!("`{}:` has no steps", key.value));
                }
                items.iter().filter_map(|item| self.step(item)).collect()
            }
            NodeKind::Null if !required => Vec::new(),
            _ => {
                self.wrong_type(&key.value, "a list of steps", node);
                Vec::new()
            }
        }
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.error(
                node.loc,
                format!(
                    "a step must be a mapping with one of {FORMS_TEXT}, found {}",
                    node.describe()
                ),
            );
            return None;
        }
        let f = self.fields(node, STEP_KEYS, "in a step", "a step")?;
        let id = self.opt_text(&f, "id");
        if let Some(id) = &id
            && id.value.is_empty()
        {
            self.error(id.loc, "`id:` is empty");
        } else if let Some(id) = &id
            && !is_identifier(&id.value)
        {
            let width = id.value.chars().count();
            let d = self.error(
                id.loc,
                format!(
                    "step id `{}` must be letters, digits and `_`, not starting with a digit",
                    id.value
                ),
            );
            d.width = width.max(1);
            self.help(format!(
                "ids are used as `steps.<id>` in templates; try `{}`",
                identifier_form(&id.value)
            ));
        }
        let name = self.opt_text(&f, "name");
        let condition = self.opt_text(&f, "if");
        if let Some(condition) = &condition
            && condition.value.trim().is_empty()
        {
            self.error(condition.loc, "`if:` is empty");
            self.help("write a condition such as `steps.check.status == 'ok'`, or remove `if:`");
        }
        let continue_on_error = f
            .value("continue_on_error")
            .and_then(|n| self.boolean("continue_on_error", n))
            .unwrap_or(false);
        let timeout = f
            .value("timeout")
            .and_then(|n| self.located_duration("timeout", n));
        let retry = f.value("retry").and_then(|n| self.retry(n));
        let expect = f.value("expect").and_then(|n| self.expect(n, Level::Step));
        let scores = self.scores(&f);
        let forms: Vec<(&Located<String>, &Node)> = f
            .entries
            .iter()
            .filter(|(k, _)| FORMS.contains(&k.as_str()))
            .map(|(k, v)| (k, v))
            .collect();
        let Some(&(form_key, form_value)) = forms.first() else {
            self.error(
                node.loc,
                format!("a step needs exactly one of {FORMS_TEXT}"),
            );
            // Kept as an empty span so that references to its id do not add noise.
            let placeholder = id
                .clone()
                .unwrap_or_else(|| Located::new(String::new(), node.loc));
            return Some(Step {
                id,
                name,
                condition,
                continue_on_error,
                timeout,
                retry,
                expect,
                scores,
                kind: StepKind::Span {
                    name: placeholder,
                    events: Vec::new(),
                    steps: Vec::new(),
                },
                loc: node.loc,
            });
        };
        let form = form_key.as_str();
        if let Some((second, _)) = forms.get(1) {
            let d = self.error(
                second.loc,
                format!("a step cannot have both `{form}:` and `{}:`", second.value),
            );
            d.width = second.value.len();
            self.help("split it into two steps");
        }
        for (key, _) in f.entries {
            if let Some((_, owners)) = FORM_ONLY_KEYS.iter().find(|(k, _)| *k == key.value)
                && !owners.contains(&form)
            {
                let owners: Vec<String> = owners.iter().map(|o| format!("`{o}:`")).collect();
                let d = self.error(
                    key.loc,
                    format!(
                        "`{}:` only applies to {} steps",
                        key.value,
                        owners.join(" and ")
                    ),
                );
                d.width = key.value.len();
            }
        }
        let kind = match form {
            "agent" => self.agent_step(&f, form_value, node),
            "run" => StepKind::Run {
                command: self.command(form_value),
                env: self.text_map(&f, "env"),
            },
            "span" => StepKind::Span {
                name: self
                    .text("span", form_value)
                    .unwrap_or_else(|| Located::new(String::new(), form_value.loc)),
                events: self.events(&f),
                steps: match f.get("steps") {
                    Some((key, steps)) => self.steps(key, steps, false),
                    None => Vec::new(),
                },
            },
            "event" => StepKind::Event(EventDef {
                name: self
                    .text("event", form_value)
                    .unwrap_or_else(|| Located::new(String::new(), form_value.loc)),
                attributes: self.json_map(&f, "attributes"),
                loc: node.loc,
            }),
            "parallel" => StepKind::Parallel {
                branches: self.steps(form_key, form_value, true),
                fail_fast: f
                    .value("fail_fast")
                    .and_then(|n| self.boolean("fail_fast", n))
                    .unwrap_or(false),
            },
            _ => self.foreach_step(&f, form_value, node),
        };
        Some(Step {
            id,
            name,
            condition,
            continue_on_error,
            timeout,
            retry,
            expect,
            scores,
            kind,
            loc: node.loc,
        })
    }

    fn agent_step(&mut self, f: &Fields, agent: &Node, step: &Node) -> StepKind {
        let agent = match self.text("agent", agent) {
            Some(a) if a.value.is_empty() => {
                self.error(a.loc, "`agent:` needs the name of an agent");
                a
            }
            Some(a) => a,
            None => Located::new(String::new(), agent.loc),
        };
        let input = match f.value("input") {
            Some(node) => self.text("input", node),
            None => {
                self.error(step.loc, "an `agent:` step needs `input:`");
                self.help("add `input: ...`, the message the agent answers");
                None
            }
        }
        .unwrap_or_else(|| Located::new(String::new(), step.loc));
        StepKind::Agent {
            agent,
            input,
            mock: f.value("mock").and_then(|n| self.mock(n)),
            session: self.opt_text(f, "session"),
        }
    }

    /// `foreach: LIST` with `as:`, `concurrency:` and the `steps:` run for each item.
    fn foreach_step(&mut self, f: &Fields, items: &Node, step: &Node) -> StepKind {
        match &items.kind {
            NodeKind::Seq(_) | NodeKind::Str(_) => {}
            _ => {
                self.wrong_type(
                    "foreach",
                    "a list, or a template like `{{ vars.topics }}` that gives one",
                    items,
                );
            }
        }
        let as_name = match f.value("as").and_then(|n| self.text("as", n)) {
            Some(name) if !is_identifier(&name.value) => {
                let d = self.error(
                    name.loc,
                    format!(
                        "`as:` name `{}` must be letters, digits and `_`, not starting with a digit",
                        name.value
                    ),
                );
                d.width = name.value.chars().count().max(1);
                self.help("the name is used as a variable in templates: `{{ item }}`");
                name.value
            }
            Some(name) if RESERVED_NAMES.contains(&name.as_str()) => {
                let d = self.error(
                    name.loc,
                    format!(
                        "`as: {}` would hide the template variable `{}`",
                        name.value, name.value
                    ),
                );
                d.width = name.value.len();
                self.help("choose another name, such as `item`");
                name.value
            }
            Some(name) => name.value,
            None => "item".to_string(),
        };
        let concurrency = f
            .value("concurrency")
            .and_then(|n| self.whole("concurrency", n, 1, u64::from(u32::MAX)))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1);
        let steps = match f.get("steps") {
            Some((key, steps)) => self.steps(key, steps, true),
            None => {
                self.error(step.loc, "a `foreach:` step needs `steps:`");
                self.help("add `steps:`, the steps run for each item");
                Vec::new()
            }
        };
        StepKind::Foreach {
            items: Located::new(items.to_json(), items.loc),
            as_name,
            concurrency,
            steps,
        }
    }

    fn command(&mut self, node: &Node) -> Command {
        match &node.kind {
            NodeKind::Str(script) => {
                if script.trim().is_empty() {
                    self.error(node.loc, "`run:` script is empty");
                }
                Command::Script(Located::new(script.clone(), node.loc))
            }
            NodeKind::Seq(items) => Command::Argv(self.argv("run", node, items)),
            _ => {
                self.wrong_type(
                    "run",
                    "a command list `[prog, arg]` or a script string",
                    node,
                );
                Command::Argv(Vec::new())
            }
        }
    }

    fn events(&mut self, f: &Fields) -> Vec<EventDef> {
        let Some(node) = f.value("events") else {
            return Vec::new();
        };
        let items = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => return Vec::new(),
            _ => {
                self.wrong_type("events", "a list of events", node);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            let Some(ef) = self.fields(item, EVENT_KEYS, "in an event", "an event") else {
                continue;
            };
            let name = match ef.value("name") {
                Some(n) => self.text("name", n),
                None => {
                    self.error(item.loc, "an event needs `name:`");
                    None
                }
            };
            out.push(EventDef {
                name: name.unwrap_or_else(|| Located::new(String::new(), item.loc)),
                attributes: self.json_map(&ef, "attributes"),
                loc: item.loc,
            });
        }
        out
    }
}
