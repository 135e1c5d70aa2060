//! Reading a workflow file: YAML → located tree → the typed [`Workflow`], reporting every
//! problem in the file at once.
//!
//! The conversion is written by hand rather than derived so that one bad value never hides the
//! next: each key is checked on its own, unknown keys get a did-you-mean, and a step keeps its
//! place in the result even when one of its keys was wrong (so validation does not add
//! follow-on noise such as "unknown step" for a step that is there).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;

use super::diagnostic::{Loc, did_you_mean, list, suggest};
use super::node::{self, Node, NodeKind};
use super::schema::{
    AgentDef, BudgetDef, Command, EventDef, HANDOFF_PREFIX, Located, LocatedValue, MockToolCall,
    MockTurn, PriceDef, Provider, RetryDef, Step, StepKind, ToolDef, TraceDef, is_function_name,
};
use super::{Diagnostic, Workflow};
use expect::Level;

mod expect;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "vars",
    "group_id",
    "metadata",
    "model",
    "provider",
    "tools",
    "agents",
    "steps",
    "traces",
    "timeout",
    "retry",
    "max_concurrency",
    "budget",
    "prices",
    "expect",
];
const PROVIDER_KEYS: &[&str] = &["base_url", "api_key_env", "headers", "stream"];
const TOOL_KEYS: &[&str] = &["description", "parameters", "command"];
const AGENT_KEYS: &[&str] = &[
    "instructions",
    "model",
    "temperature",
    "max_tokens",
    "seed",
    "provider",
    "tools",
    "handoffs",
    "handoff_description",
    "output_schema",
    "max_turns",
    "retry",
];
const RETRY_KEYS: &[&str] = &["attempts", "backoff", "timeout"];
const BUDGET_KEYS: &[&str] = &["max_tokens", "max_cost_usd", "max_duration"];
const PRICE_KEYS: &[&str] = &["input", "output"];
/// Attempts a `retry:` may ask for, the first included.
const MAX_ATTEMPTS: u64 = 20;
/// Names a `foreach:` variable may not take: they would hide the template's own roots.
const RESERVED_NAMES: &[&str] = &["vars", "steps", "trace"];
const MOCK_TURN_KEYS: &[&str] = &["tool_calls", "handoff"];
const TOOL_CALL_KEYS: &[&str] = &["name", "arguments"];
/// The prefix of the tools that stand for handoffs (`transfer_to_<agent>`).
const TRACE_KEYS: &[&str] = &["name", "metadata", "steps"];
const STEP_KEYS: &[&str] = &[
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
];
/// What a duration looks like, for messages.
const DURATION: &str = "a duration like 30s, 2m or 1h";

/// Parses text. `file` is the label used in messages (the path as the user typed it). Returns
/// what could be built plus every problem found.
pub fn parse_str(file: &str, path: PathBuf, source: &str) -> (Option<Workflow>, Vec<Diagnostic>) {
    let root = match node::parse(source) {
        Ok(root) => root,
        Err(err) => return (None, vec![Diagnostic::new(file, err.loc, err.message)]),
    };
    let mut parser = Parser {
        file,
        source,
        diagnostics: Vec::new(),
    };
    let workflow = parser.workflow(&root, path);
    let mut diagnostics = parser.diagnostics;
    diagnostics.sort_by_key(|d| d.loc);
    (workflow, diagnostics)
}

/// Whether a step id can be written as `steps.<id>` in a template.
pub(crate) fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A duration's text in milliseconds (negative when the text says so); `None` when it is not a
/// duration. A bare whole number is seconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds as f64 * 1000.0);
    }
    let span = text.parse::<jiff::Span>().ok()?;
    span.total((
        jiff::Unit::Millisecond,
        jiff::SpanRelativeTo::days_are_24_hours(),
    ))
    .ok()
    .filter(|ms| ms.is_finite())
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

/// The entries of one YAML mapping, looked up by key.
struct Fields<'n> {
    entries: &'n [(Located<String>, Node)],
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<(&'n Located<String>, &'n Node)> {
        self.entries
            .iter()
            .find(|(k, _)| k.value == key)
            .map(|(k, v)| (k, v))
    }

    fn value(&self, key: &str) -> Option<&'n Node> {
        self.get(key).map(|(_, v)| v)
    }
}

struct Parser<'a> {
    file: &'a str,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn error(&mut self, loc: Loc, message: impl Into<String>) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::new(self.file, loc, message));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    fn help(&mut self, help: impl Into<String>) {
        if let Some(d) = self.diagnostics.last_mut() {
            d.help = Some(help.into());
        }
    }

    fn wrong_type(&mut self, key: &str, expected: &str, node: &Node) {
        let message = match node.kind {
            NodeKind::Null => format!("`{key}:` needs a value ({expected})"),
            _ => format!("`{key}` must be {expected}, found {}", node.describe()),
        };
        self.error(node.loc, message);
    }

    /// A mapping's entries, reporting keys not in `allowed`; `None` (and an error naming
    /// `what`) when the node is not a mapping.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        place: &str,
        what: &str,
    ) -> Option<Fields<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            self.error(
                node.loc,
                format!("{what} must be a mapping, found {}", node.describe()),
            );
            return None;
        };
        for (key, _) in entries {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let width = key.value.chars().count();
            let suggestion = suggest(&key.value, allowed.iter().copied());
            let d = self.error(
                key.loc,
                format!(
                    "unknown key `{}` {place}{}",
                    key.value,
                    did_you_mean(suggestion)
                ),
            );
            d.width = width.max(1);
            if suggestion.is_none() {
                self.help(format!("allowed keys: {}", list(allowed)));
            }
        }
        Some(Fields { entries })
    }

    /// Text: a string, or a number or boolean as written.
    fn text(&mut self, key: &str, node: &Node) -> Option<Located<String>> {
        match node.scalar_text(self.source) {
            Some(text) => Some(Located::new(text, node.loc)),
            None => {
                self.wrong_type(key, "a string", node);
                None
            }
        }
    }

    fn opt_text(&mut self, fields: &Fields, key: &str) -> Option<Located<String>> {
        let node = fields.value(key)?;
        self.text(key, node)
    }

    fn json_map(&mut self, fields: &Fields, key: &str) -> IndexMap<String, LocatedValue> {
        let mut out = IndexMap::new();
        match fields.value(key).map(|n| (n, &n.kind)) {
            None | Some((_, NodeKind::Null)) => {}
            Some((_, NodeKind::Map(entries))) => {
                for (k, v) in entries {
                    out.insert(k.value.clone(), Located::new(v.to_json(), v.loc));
                }
            }
            Some((node, _)) => self.wrong_type(key, "a mapping", node),
        }
        out
    }

    fn text_map(&mut self, fields: &Fields, key: &str) -> IndexMap<String, Located<String>> {
        let mut out = IndexMap::new();
        match fields.value(key).map(|n| (n, &n.kind)) {
            None | Some((_, NodeKind::Null)) => {}
            Some((_, NodeKind::Map(entries))) => {
                for (k, v) in entries {
                    match v.scalar_text(self.source) {
                        Some(text) => {
                            out.insert(k.value.clone(), Located::new(text, v.loc));
                        }
                        None => {
                            self.error(
                                v.loc,
                                format!(
                                    "`{key}.{}` must be a string, found {}",
                                    k.value,
                                    v.describe()
                                ),
                            );
                        }
                    }
                }
            }
            Some((node, _)) => self.wrong_type(key, "a mapping", node),
        }
        out
    }

    fn workflow(&mut self, root: &Node, path: PathBuf) -> Option<Workflow> {
        let start = Loc { line: 1, col: 1 };
        match &root.kind {
            NodeKind::Null => {
                self.error(start, "the workflow file is empty");
                self.help("a workflow needs at least `name:` and `steps:`");
                return None;
            }
            NodeKind::Map(_) => {}
            _ => {
                self.error(
                    root.loc,
                    format!(
                        "a workflow must be a mapping with `name:` and `steps:`, found {}",
                        root.describe()
                    ),
                );
                return None;
            }
        }
        let f = self.fields(root, TOP_KEYS, "at top level", "a workflow")?;
        let name = match f.value("name") {
            Some(node) => self.text("name", node),
            None => {
                self.error(root.loc, "a workflow needs `name:`");
                self.help("add `name: ...` at the top level; it names the workflow and its trace");
                None
            }
        }
        .unwrap_or_else(|| Located::new(String::new(), root.loc));
        let description = self.opt_text(&f, "description").map(|d| d.value);
        let vars = self.json_map(&f, "vars");
        let group_id = self.opt_text(&f, "group_id");
        let metadata = self.json_map(&f, "metadata");
        let model = self.opt_text(&f, "model");
        let provider = f.value("provider").and_then(|node| self.provider(node));
        let tools = self.tools(&f);
        let agents = self.agents(&f);
        let traces = self.traces(&f, root, &name);
        let timeout = f
            .value("timeout")
            .and_then(|n| self.located_duration("timeout", n));
        let retry = f.value("retry").and_then(|n| self.retry(n));
        let max_concurrency = f.value("max_concurrency").and_then(|n| {
            let count = self.whole("max_concurrency", n, 1, u64::from(u32::MAX))?;
            Some(Located::new(u32::try_from(count).ok()?, n.loc))
        });
        let budget = f.value("budget").and_then(|n| self.budget(n));
        let prices = self.prices(&f);
        let expect = f
            .value("expect")
            .and_then(|n| self.expect(n, Level::Workflow));
        Some(Workflow {
            path,
            source: Arc::from(self.source),
            name,
            description,
            vars,
            group_id,
            metadata,
            model,
            provider,
            tools,
            agents,
            traces,
            timeout,
            retry,
            max_concurrency,
            budget,
            prices,
            expect,
        })
    }

    fn provider(&mut self, node: &Node) -> Option<Provider> {
        let f = self.fields(node, PROVIDER_KEYS, "in provider", "`provider`")?;
        Some(Provider {
            base_url: self.opt_text(&f, "base_url"),
            api_key_env: self.opt_text(&f, "api_key_env"),
            headers: self
                .text_map(&f, "headers")
                .into_iter()
                .map(|(k, v)| (k, v.value))
                .collect(),
            stream: f.value("stream").and_then(|n| self.boolean("stream", n)),
            loc: node.loc,
        })
    }

    /// The entries of the top-level mapping `key` (names to definitions): none when it is
    /// absent or null, and an error when it is something else.
    fn named_map<'n>(
        &mut self,
        top: &Fields<'n>,
        key: &str,
        expected: &str,
    ) -> &'n [(Located<String>, Node)] {
        let Some(node) = top.value(key) else {
            return &[];
        };
        match &node.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null => &[],
            _ => {
                self.wrong_type(key, expected, node);
                &[]
            }
        }
    }

    fn agents(&mut self, top: &Fields) -> IndexMap<String, AgentDef> {
        let mut out = IndexMap::new();
        let entries = self.named_map(top, "agents", "a mapping of agent names to agents");
        for (name, def) in entries {
            let place = format!("in agent `{}`", name.value);
            let agent = match &def.kind {
                NodeKind::Null => AgentDef {
                    name: name.clone(),
                    instructions: None,
                    model: None,
                    temperature: None,
                    max_tokens: None,
                    seed: None,
                    provider: None,
                    tools: Vec::new(),
                    handoffs: Vec::new(),
                    handoff_description: None,
                    output_schema: None,
                    max_turns: None,
                    retry: None,
                    loc: name.loc,
                },
                _ => {
                    let Some(f) =
                        self.fields(def, AGENT_KEYS, &place, &format!("agent `{}`", name.value))
                    else {
                        continue;
                    };
                    AgentDef {
                        name: name.clone(),
                        instructions: self.opt_text(&f, "instructions"),
                        model: self.opt_text(&f, "model"),
                        temperature: f.value("temperature").and_then(|n| self.temperature(n)),
                        max_tokens: f.value("max_tokens").and_then(|n| self.max_tokens(n)),
                        seed: f.value("seed").and_then(|n| self.seed(n)),
                        provider: f.value("provider").and_then(|n| self.provider(n)),
                        tools: self.names(&f, "tools", "tool"),
                        handoffs: self.names(&f, "handoffs", "agent"),
                        handoff_description: self
                            .opt_text(&f, "handoff_description")
                            .map(|d| d.value),
                        output_schema: self.schema(&f, "output_schema"),
                        max_turns: f.value("max_turns").and_then(|n| self.max_turns(n)),
                        retry: f.value("retry").and_then(|n| self.retry(n)),
                        loc: name.loc,
                    }
                }
            };
            out.insert(name.value.clone(), agent);
        }
        out
    }

    fn temperature(&mut self, node: &Node) -> Option<f64> {
        match node.kind {
            NodeKind::Int(i) => Some(i as f64),
            NodeKind::UInt(u) => Some(u as f64),
            NodeKind::Float(f) => Some(f),
            _ => {
                self.wrong_type("temperature", "a number", node);
                None
            }
        }
    }

    fn seed(&mut self, node: &Node) -> Option<i64> {
        match node.kind {
            NodeKind::Int(i) => Some(i),
            NodeKind::UInt(_) => {
                self.error(node.loc, "`seed` is too large");
                None
            }
            _ => {
                self.wrong_type("seed", "a whole number", node);
                None
            }
        }
    }

    fn max_tokens(&mut self, node: &Node) -> Option<u32> {
        match node.kind {
            NodeKind::Int(i) if i > 0 => u32::try_from(i).ok().or_else(|| {
                self.error(node.loc, "`max_tokens` is too large");
                None
            }),
            NodeKind::UInt(_) => {
                self.error(node.loc, "`max_tokens` is too large");
                None
            }
            _ => {
                self.wrong_type("max_tokens", "a positive whole number", node);
                None
            }
        }
    }

    fn traces(&mut self, top: &Fields, root: &Node, name: &Located<String>) -> Vec<TraceDef> {
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

    /// `retry: { attempts, backoff, timeout }`.
    fn retry(&mut self, node: &Node) -> Option<RetryDef> {
        let f = self.fields(node, RETRY_KEYS, "in retry", "`retry`")?;
        Some(RetryDef {
            attempts: f
                .value("attempts")
                .and_then(|n| self.whole("attempts", n, 1, MAX_ATTEMPTS))
                .and_then(|n| u32::try_from(n).ok()),
            backoff: f.value("backoff").and_then(|n| self.duration("backoff", n)),
            timeout: f.value("timeout").and_then(|n| self.duration("timeout", n)),
            loc: node.loc,
        })
    }

    /// `budget: { max_tokens, max_cost_usd, max_duration }`.
    fn budget(&mut self, node: &Node) -> Option<BudgetDef> {
        let f = self.fields(node, BUDGET_KEYS, "in budget", "`budget`")?;
        Some(BudgetDef {
            max_tokens: f
                .value("max_tokens")
                .and_then(|n| self.whole("max_tokens", n, 1, i64::MAX.unsigned_abs())),
            max_cost_usd: f.value("max_cost_usd").and_then(|n| {
                let cost = self.number("max_cost_usd", n)?;
                if cost > 0.0 {
                    Some(cost)
                } else {
                    self.error(n.loc, "`max_cost_usd` must be more than zero");
                    None
                }
            }),
            max_duration: f
                .value("max_duration")
                .and_then(|n| self.duration("max_duration", n)),
            loc: node.loc,
        })
    }

    /// `prices: { MODEL: { input, output } }`, USD per million tokens.
    fn prices(&mut self, top: &Fields) -> IndexMap<String, PriceDef> {
        let mut out = IndexMap::new();
        let entries = self.named_map(top, "prices", "a mapping of model names to prices");
        for (model, def) in entries {
            let what = format!("the price of model `{}`", model.value);
            let Some(f) = self.fields(def, PRICE_KEYS, &format!("in {what}"), &what) else {
                continue;
            };
            let mut rate = |key: &str| match f.value(key) {
                Some(n) => {
                    let usd = self.number(key, n)?;
                    if usd < 0.0 {
                        self.error(n.loc, format!("`{key}` must not be negative"));
                        return None;
                    }
                    Some(usd)
                }
                None => {
                    let d = self.error(model.loc, format!("{what} needs `{key}:`"));
                    d.width = model.value.chars().count().max(1);
                    self.help("prices are USD per million tokens: `{ input: 0.15, output: 0.6 }`");
                    None
                }
            };
            let input = rate("input");
            let output = rate("output");
            if let (Some(input), Some(output)) = (input, output) {
                out.insert(
                    model.value.clone(),
                    PriceDef {
                        input,
                        output,
                        loc: model.loc,
                    },
                );
            }
        }
        out
    }

    /// A number, integer or not (the YAML parser rejects `.inf` and `.nan`).
    fn number(&mut self, key: &str, node: &Node) -> Option<f64> {
        match node.kind {
            NodeKind::Int(i) => Some(i as f64),
            NodeKind::UInt(u) => Some(u as f64),
            NodeKind::Float(f) => Some(f),
            _ => {
                self.wrong_type(key, "a number", node);
                None
            }
        }
    }

    /// A whole number in `min..=max`; a `max` at a type's limit reads as "too large".
    fn whole(&mut self, key: &str, node: &Node, min: u64, max: u64) -> Option<u64> {
        let n = match node.kind {
            NodeKind::Int(i) => i128::from(i),
            NodeKind::UInt(u) => i128::from(u),
            _ => {
                self.wrong_type(key, "a whole number", node);
                return None;
            }
        };
        if n < i128::from(min) {
            self.error(node.loc, format!("`{key}` must be at least {min}"));
            None
        } else if n > i128::from(max) {
            let message = if max >= u64::from(u32::MAX) {
                format!("`{key}` is too large")
            } else {
                format!("`{key}` must be at most {max}")
            };
            self.error(node.loc, message);
            None
        } else {
            u64::try_from(n).ok()
        }
    }

    fn located_duration(&mut self, key: &str, node: &Node) -> Option<Located<Duration>> {
        self.duration(key, node).map(|d| Located::new(d, node.loc))
    }

    /// A duration: `500ms`, `30s`, `2m`, `1h30m`, or a whole number of seconds; more than zero.
    fn duration(&mut self, key: &str, node: &Node) -> Option<Duration> {
        let parsed = match &node.kind {
            NodeKind::Int(i) => Some(*i as f64 * 1000.0),
            NodeKind::UInt(u) => Some(*u as f64 * 1000.0),
            NodeKind::Str(text) => parse_duration_ms(text),
            NodeKind::Float(_) => None,
            _ => {
                self.wrong_type(key, DURATION, node);
                return None;
            }
        };
        let Some(ms) = parsed else {
            self.error(node.loc, format!("`{key}` must be {DURATION}"));
            self.help("units: ms, s, m, h, d; they combine, as in 1h30m; a bare number is seconds");
            return None;
        };
        if ms <= 0.0 {
            self.error(node.loc, format!("`{key}` must be longer than zero"));
            return None;
        }
        match Duration::try_from_secs_f64(ms / 1000.0) {
            Ok(d) => Some(d),
            Err(_) => {
                self.error(node.loc, format!("`{key}` is too long"));
                None
            }
        }
    }

    /// `mock:` — a string (one text turn) or a list of turns.
    fn mock(&mut self, node: &Node) -> Option<Vec<MockTurn>> {
        let items = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Map(_) => {
                self.wrong_type("mock", "a string or a list of turns", node);
                self.help("wrap the turn in a list: `mock: [{ tool_calls: [...] }, \"answer\"]`");
                return None;
            }
            _ => {
                return match node.scalar_text(self.source) {
                    Some(text) => Some(vec![MockTurn::Text(Located::new(text, node.loc))]),
                    None => {
                        self.wrong_type("mock", "a string or a list of turns", node);
                        None
                    }
                };
            }
        };
        if items.is_empty() {
            self.error(node.loc, "`mock:` has no turns");
            self.help("give at least the final answer: `mock: [\"answer\"]`");
        }
        Some(
            items
                .iter()
                .filter_map(|item| self.mock_turn(item))
                .collect(),
        )
    }

    fn mock_turn(&mut self, node: &Node) -> Option<MockTurn> {
        if !matches!(node.kind, NodeKind::Map(_)) {
            return match node.scalar_text(self.source) {
                Some(text) => Some(MockTurn::Text(Located::new(text, node.loc))),
                None => {
                    self.error(
                        node.loc,
                        format!(
                            "a mock turn must be a string, `{{ tool_calls: [...] }}` or `{{ handoff: AGENT }}`, found {}",
                            node.describe()
                        ),
                    );
                    None
                }
            };
        }
        let f = self.fields(node, MOCK_TURN_KEYS, "in a mock turn", "a mock turn")?;
        match (f.get("tool_calls"), f.get("handoff")) {
            (Some((_, calls)), None) => self.tool_calls(calls).map(MockTurn::ToolCalls),
            (None, Some((_, target))) => {
                let target = self.text("handoff", target)?;
                if target.value.is_empty() {
                    self.error(target.loc, "`handoff:` needs the name of an agent");
                    return None;
                }
                Some(MockTurn::Handoff(target))
            }
            (Some((calls, _)), Some((handoff, _))) => {
                let second = if calls.loc > handoff.loc {
                    calls
                } else {
                    handoff
                };
                let d = self.error(
                    second.loc,
                    "a mock turn cannot have both `tool_calls:` and `handoff:`",
                );
                d.width = second.value.len();
                self.help("split it into two turns");
                None
            }
            (None, None) => {
                // An entry with only unknown keys has been reported already.
                if f.entries.is_empty() {
                    self.error(
                        node.loc,
                        "a mock turn needs `tool_calls:` or `handoff:` (or is a string)",
                    );
                }
                None
            }
        }
    }

    fn tool_calls(&mut self, node: &Node) -> Option<Vec<MockToolCall>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_type("tool_calls", "a list of `{ name, arguments }`", node);
            return None;
        };
        if items.is_empty() {
            self.error(node.loc, "`tool_calls:` has no calls");
            return None;
        }
        let mut calls = Vec::new();
        for item in items {
            let Some(f) = self.fields(item, TOOL_CALL_KEYS, "in a tool call", "a tool call") else {
                continue;
            };
            let name = match f.value("name") {
                Some(n) => self.text("name", n),
                None => {
                    self.error(item.loc, "a tool call needs `name:`");
                    self.help("name one of the workflow's `tools:`");
                    None
                }
            };
            let arguments = match f.value("arguments") {
                None => Some(serde_json::Value::Object(serde_json::Map::new())),
                Some(n) => match &n.kind {
                    NodeKind::Null => Some(serde_json::Value::Object(serde_json::Map::new())),
                    NodeKind::Map(_) => Some(n.to_json()),
                    _ => {
                        self.wrong_type("arguments", "a mapping", n);
                        None
                    }
                },
            };
            if let (Some(name), Some(arguments)) = (name, arguments) {
                calls.push(MockToolCall { name, arguments });
            }
        }
        Some(calls)
    }

    /// Top-level `tools:` — name → `{ description, parameters, command }`.
    fn tools(&mut self, top: &Fields) -> IndexMap<String, ToolDef> {
        let mut out = IndexMap::new();
        let entries = self.named_map(top, "tools", "a mapping of tool names to tools");
        for (name, def) in entries {
            self.tool_name(name);
            let (description, parameters, command) = match &def.kind {
                NodeKind::Null => {
                    self.tool_needs_command(name);
                    (None, None, Vec::new())
                }
                _ => {
                    let place = format!("in tool `{}`", name.value);
                    let Some(f) =
                        self.fields(def, TOOL_KEYS, &place, &format!("tool `{}`", name.value))
                    else {
                        continue;
                    };
                    let description = self.opt_text(&f, "description").map(|d| d.value);
                    let parameters = self.schema(&f, "parameters");
                    let command = match f.value("command") {
                        Some(n) => self.tool_command(n),
                        None => {
                            self.tool_needs_command(name);
                            Vec::new()
                        }
                    };
                    (description, parameters, command)
                }
            };
            out.insert(
                name.value.clone(),
                ToolDef {
                    name: name.clone(),
                    description,
                    parameters,
                    command,
                    loc: name.loc,
                },
            );
        }
        out
    }

    fn tool_name(&mut self, name: &Located<String>) {
        let width = name.value.chars().count();
        if !is_function_name(&name.value) {
            let d = self.error(
                name.loc,
                format!(
                    "tool name `{}` must be 1 to 64 letters, digits, `_` or `-`",
                    name.value
                ),
            );
            d.width = width.max(1);
            self.help("the name is the function name the model sees");
        } else if name.value.starts_with(HANDOFF_PREFIX) {
            let d = self.error(
                name.loc,
                format!(
                    "tool name `{}` starts with `{HANDOFF_PREFIX}`, which is reserved for handoffs",
                    name.value
                ),
            );
            d.width = width.max(1);
            self.help("handoffs to an agent are offered as `transfer_to_<agent>`; rename the tool");
        }
    }

    fn tool_needs_command(&mut self, name: &Located<String>) {
        let d = self.error(name.loc, format!("tool `{}` needs `command:`", name.value));
        d.width = name.value.chars().count().max(1);
        self.help(
            "add `command: [prog, arg]`; the call's arguments arrive as JSON on stdin and stdout is the result",
        );
    }

    /// A tool's `command:` — a non-empty argv list (no shell form).
    fn tool_command(&mut self, node: &Node) -> Vec<Located<String>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_type("command", "a command list `[prog, arg]`", node);
            if matches!(node.kind, NodeKind::Str(_)) {
                self.help("tools run without a shell; write `command: [prog, arg]`");
            }
            return Vec::new();
        };
        if items.is_empty() {
            self.error(node.loc, "`command:` list is empty");
            self.help("give the program and its arguments: `command: [prog, arg]`");
        }
        let mut argv = Vec::new();
        for item in items {
            match item.scalar_text(self.source) {
                Some(text) => argv.push(Located::new(text, item.loc)),
                None => {
                    self.error(
                        item.loc,
                        format!(
                            "each `command:` argument must be a string, found {}",
                            item.describe()
                        ),
                    );
                }
            }
        }
        argv
    }

    /// A JSON Schema written as a mapping (compiled by `validate`).
    fn schema(&mut self, f: &Fields, key: &str) -> Option<LocatedValue> {
        let node = f.value(key)?;
        match &node.kind {
            NodeKind::Null => None,
            NodeKind::Map(_) => Some(Located::new(node.to_json(), node.loc)),
            _ => {
                self.wrong_type(key, "a mapping (a JSON Schema)", node);
                None
            }
        }
    }

    /// A list of names (`tools: [a, b]`, `handoffs: [x]`); `what` names one item.
    fn names(&mut self, f: &Fields, key: &str, what: &str) -> Vec<Located<String>> {
        let mut out = Vec::new();
        let Some(node) = f.value(key) else {
            return out;
        };
        let items = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => return out,
            _ => {
                self.wrong_type(key, &format!("a list of {what} names"), node);
                return out;
            }
        };
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        for item in items {
            match item.scalar_text(self.source) {
                Some(name) if !name.is_empty() => out.push(Located::new(name, item.loc)),
                text => {
                    let found = if text.is_some() {
                        "an empty string"
                    } else {
                        item.describe()
                    };
                    self.error(
                        item.loc,
                        format!("each `{key}:` item must be {article} {what} name, found {found}"),
                    );
                }
            }
        }
        out
    }

    fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, "`true` or `false`", node);
                None
            }
        }
    }

    fn max_turns(&mut self, node: &Node) -> Option<Located<u32>> {
        let turns = self.whole("max_turns", node, 1, u64::from(u32::MAX))?;
        Some(Located::new(u32::try_from(turns).ok()?, node.loc))
    }

    fn command(&mut self, node: &Node) -> Command {
        match &node.kind {
            NodeKind::Str(script) => {
                if script.trim().is_empty() {
                    self.error(node.loc, "`run:` script is empty");
                }
                Command::Script(Located::new(script.clone(), node.loc))
            }
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    self.error(node.loc, "`run:` list is empty");
                    self.help("give the program and its arguments: `run: [prog, arg]`");
                }
                let mut argv = Vec::new();
                for item in items {
                    match item.scalar_text(self.source) {
                        Some(text) => argv.push(Located::new(text, item.loc)),
                        None => {
                            self.error(
                                item.loc,
                                format!(
                                    "each `run:` argument must be a string, found {}",
                                    item.describe()
                                ),
                            );
                        }
                    }
                }
                Command::Argv(argv)
            }
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// Every problem parse and validation find, as `FILE:LINE:COL: message`, in file order.
    fn problems(src: &str) -> Vec<String> {
        let (_, diags) = crate::workflow::check_str("w.yaml", PathBuf::from("w.yaml"), src);
        diags.iter().map(Diagnostic::headline).collect()
    }

    fn helps(src: &str) -> Vec<Option<String>> {
        let (_, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        diags.into_iter().map(|d| d.help).collect()
    }

    fn parsed(src: &str) -> Workflow {
        let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        assert_eq!(diags, [], "unexpected problems");
        wf.expect("a workflow")
    }

    /// A workflow that parses and validates without a problem.
    fn valid(src: &str) -> Workflow {
        let (wf, diags) = crate::workflow::check_str("w.yaml", PathBuf::from("w.yaml"), src);
        assert_eq!(diags, [], "unexpected problems");
        wf.expect("a workflow")
    }

    const HEAD: &str = "name: t\nmodel: m\nagents: { a: {} }\n";

    #[test]
    fn a_yaml_syntax_error_is_one_problem_at_its_place() {
        assert_eq!(
            problems("name: t\nsteps:\n  - id: a\n   run: [echo\n"),
            [
                "w.yaml:4:4: invalid YAML: while parsing a block collection, did not find expected '-' indicator"
            ]
        );
    }

    #[test]
    fn an_empty_file_is_reported_at_the_start() {
        assert_eq!(problems(""), ["w.yaml:1:1: the workflow file is empty"]);
        assert_eq!(
            problems("# only a comment\n"),
            ["w.yaml:1:1: the workflow file is empty"]
        );
        assert_eq!(
            problems("- a\n- b\n"),
            ["w.yaml:1:1: a workflow must be a mapping with `name:` and `steps:`, found a list"]
        );
    }

    #[test]
    fn unknown_keys_point_at_the_key_with_a_suggestion() {
        let src = "name: t\nmodle: m\nagents:\n  a: { model: m, temprature: 1 }\n\
                   steps:\n  - id: s\n    agent: a\n    inptu: hi\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:2:1: unknown key `modle` at top level; did you mean `model`?",
                "w.yaml:4:18: unknown key `temprature` in agent `a`; did you mean `temperature`?",
                "w.yaml:6:5: an `agent:` step needs `input:`",
                "w.yaml:8:5: unknown key `inptu` in a step; did you mean `input`?",
            ]
        );
        assert_eq!(
            helps(src),
            [
                None,
                None,
                Some("add `input: ...`, the message the agent answers".to_string()),
                None,
            ]
        );
    }

    #[test]
    fn unknown_keys_without_a_close_match_list_the_allowed_keys() {
        let src = "name: t\nprovider: { base_url: x, zzzzzz: 1 }\nsteps:\n  - span: S\n    events:\n      - { name: e, wxyz: 1 }\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:2:26: unknown key `zzzzzz` in provider",
                "w.yaml:6:20: unknown key `wxyz` in an event",
            ]
        );
        assert_eq!(
            helps(src),
            [
                Some("allowed keys: `base_url`, `api_key_env`, `headers`, `stream`".to_string()),
                Some("allowed keys: `name`, `attributes`".to_string()),
            ]
        );
    }

    #[test]
    fn wrong_types_point_at_the_value() {
        let src = "name: t\nmodel: m\nagents:\n  a: { temperature: hot, max_tokens: -3, seed: x }\n\
                   steps:\n  - run: { a: 1 }\n  - id: x\n    run: [echo, [nested]]\n    env: { A: 1, B: [2] }\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:4:21: `temperature` must be a number, found a string",
                "w.yaml:4:38: `max_tokens` must be a positive whole number, found a number",
                "w.yaml:4:48: `seed` must be a whole number, found a string",
                "w.yaml:6:10: `run` must be a command list `[prog, arg]` or a script string, found a mapping",
                "w.yaml:8:17: each `run:` argument must be a string, found a list",
                "w.yaml:9:21: `env.B` must be a string, found a list",
            ]
        );
        assert_eq!(
            problems("name: t\nsteps: go\n"),
            ["w.yaml:2:8: `steps` must be a list of steps, found a string"]
        );
        assert_eq!(
            problems("name: t\nsteps:\n  - run: echo\n    name:\n"),
            ["w.yaml:4:9: `name:` needs a value (a string)"]
        );
    }

    #[test]
    fn required_keys_are_reported() {
        assert_eq!(
            problems("description: d\nsteps:\n  - run: echo\n"),
            ["w.yaml:1:1: a workflow needs `name:`"]
        );
        assert_eq!(
            problems("name: t\n"),
            ["w.yaml:1:1: a workflow needs `steps:` (or `traces:`)"]
        );
        assert_eq!(
            problems("name: t\nsteps: [{run: a}]\ntraces: []\n"),
            ["w.yaml:3:1: a workflow has either `steps:` or `traces:`, not both"]
        );
        assert_eq!(
            problems("name: t\ntraces:\n  - metadata: {}\n  - name: b\n"),
            [
                "w.yaml:3:5: a trace needs `name:`",
                "w.yaml:3:5: a trace needs `steps:`",
                "w.yaml:4:5: a trace needs `steps:`",
            ]
        );
    }

    #[test]
    fn a_step_has_exactly_one_form() {
        let src = format!(
            "{HEAD}steps:\n  - id: x\n    name: nothing\n  - id: y\n    agent: a\n    input: hi\n    run: echo\n"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:5:5: a step needs exactly one of `agent:`, `run:`, `span:`, `event:`, `parallel:` or `foreach:`",
                "w.yaml:10:5: a step cannot have both `agent:` and `run:`",
            ]
        );
    }

    #[test]
    fn keys_of_another_form_are_errors() {
        let src = format!(
            "{HEAD}steps:\n  - agent: a\n    input: hi\n    env: {{ A: b }}\n  - run: echo\n    input: x\n    attributes: {{}}\n  - span: S\n    mock: m\n"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:7:5: `env:` only applies to `run:` steps",
                "w.yaml:9:5: `input:` only applies to `agent:` steps",
                "w.yaml:10:5: `attributes:` only applies to `event:` steps",
                "w.yaml:12:5: `mock:` only applies to `agent:` steps",
            ]
        );
    }

    #[test]
    fn step_ids_must_be_identifiers() {
        let src = "name: t\nsteps:\n  - id: my-step\n    run: echo\n  - id: 2nd\n    run: echo\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:9: step id `my-step` must be letters, digits and `_`, not starting with a digit",
                "w.yaml:5:9: step id `2nd` must be letters, digits and `_`, not starting with a digit",
            ]
        );
        assert_eq!(
            helps(src),
            [
                Some("ids are used as `steps.<id>` in templates; try `my_step`".to_string()),
                Some("ids are used as `steps.<id>` in templates; try `_2nd`".to_string()),
            ]
        );
        assert_eq!(
            problems("name: t\nsteps:\n  - id: \"\"\n    run: echo\n"),
            ["w.yaml:3:9: `id:` is empty"]
        );
    }

    #[test]
    fn a_step_with_a_bad_key_is_kept_so_references_still_resolve() {
        let src = format!(
            "{HEAD}steps:\n  - id: first\n    agent: a\n    input: hi\n    mokc: x\n  - id: second\n    agent: a\n    input: \"{{{{ steps.first.output }}}}\"\n"
        );
        assert_eq!(
            problems(&src),
            ["w.yaml:8:5: unknown key `mokc` in a step; did you mean `mock`?"]
        );
    }

    #[test]
    fn run_is_argv_or_a_script() {
        let wf = parsed("name: t\nsteps:\n  - run: [sleep, 0.50, 3, true]\n  - run: echo hi\n");
        let steps = &wf.traces[0].steps;
        let StepKind::Run {
            command: Command::Argv(argv),
            ..
        } = &steps[0].kind
        else {
            panic!("argv expected: {:?}", steps[0].kind)
        };
        let argv: Vec<&str> = argv.iter().map(|a| a.as_str()).collect();
        assert_eq!(argv, ["sleep", "0.50", "3", "true"]);
        let StepKind::Run {
            command: Command::Script(script),
            ..
        } = &steps[1].kind
        else {
            panic!("script expected: {:?}", steps[1].kind)
        };
        assert_eq!(script.as_str(), "echo hi");
        assert_eq!(
            problems("name: t\nsteps:\n  - run: []\n"),
            ["w.yaml:3:10: `run:` list is empty"]
        );
    }

    /// The workflow of the format's documentation, every key in use; `load` reads it too.
    pub(crate) const EXAMPLE: &str = r#"name: Research and Analysis Workflow      # required; the trace name
description: An example
group_id: "{{ vars.conversation_id }}"
metadata: { customer_id: cust_789, priority: high }
vars: { topic: AI in healthcare, conversation_id: conv_1, sku: A-1, order_id: 7, ratio: 0.5 }
model: gpt-4o-mini
provider: { base_url: http://127.0.0.1:11434/v1, api_key_env: OLLAMA_KEY }
agents:
  researcher:
    instructions: You research {{ vars.topic }} and answer in five bullet points.
    model: gpt-4o-mini
    temperature: 0.2
    max_tokens: 500
steps:
  - id: research
    agent: researcher
    input: "Research {{ vars.topic }}"
  - span: Analysis Phase
    events:
      - { name: Phase started, attributes: { inputs: 1 } }
    steps:
      - id: analysis
        agent: researcher
        input: "Analyze: {{ steps.research.output }}"
        mock: a mocked answer
      - event: Analysis done
        attributes: { output_length: "{{ steps.analysis.output | length }}", ratio: 0.25, nested: { ok: true } }
  - id: inventory
    run: ["./scripts/check-stock.sh", "--sku", "{{ vars.sku }}"]
    env: { ORDER_ID: "{{ vars.order_id }}" }
"#;

    #[test]
    fn the_spec_example_parses_into_the_expected_structure() {
        let wf = valid(EXAMPLE);
        assert_eq!(wf.name.as_str(), "Research and Analysis Workflow");
        assert_eq!(wf.name.loc, Loc { line: 1, col: 7 });
        assert_eq!(wf.description.as_deref(), Some("An example"));
        assert_eq!(
            wf.group_id.as_ref().map(|g| g.as_str()),
            Some("{{ vars.conversation_id }}")
        );
        assert_eq!(wf.metadata["customer_id"].value, json!("cust_789"));
        assert_eq!(
            wf.vars.keys().collect::<Vec<_>>(),
            ["topic", "conversation_id", "sku", "order_id", "ratio"]
        );
        assert_eq!(wf.vars["order_id"].value, json!(7));
        assert_eq!(wf.vars["ratio"].value, json!(0.5));
        assert_eq!(wf.model.as_ref().map(|m| m.as_str()), Some("gpt-4o-mini"));
        let provider = wf.provider.as_ref().expect("provider");
        assert_eq!(
            provider.api_key_env.as_ref().map(|k| k.as_str()),
            Some("OLLAMA_KEY")
        );
        let agent = &wf.agents["researcher"];
        assert_eq!(agent.temperature, Some(0.2));
        assert_eq!(agent.max_tokens, Some(500));
        assert_eq!(agent.seed, None);
        assert_eq!(agent.loc, Loc { line: 9, col: 3 });
        let seeded = parsed(&EXAMPLE.replace("max_tokens: 500", "max_tokens: 500\n    seed: -12"));
        assert_eq!(seeded.agents["researcher"].seed, Some(-12));

        assert_eq!(wf.traces.len(), 1);
        let trace = &wf.traces[0];
        assert_eq!(trace.name, wf.name);
        let forms: Vec<&str> = trace.steps.iter().map(Step::form).collect();
        assert_eq!(forms, ["agent", "span", "run"]);
        let all: Vec<(Option<&str>, &str)> = wf
            .all_steps()
            .iter()
            .map(|s| (s.id.as_ref().map(|i| i.as_str()), s.form()))
            .collect();
        assert_eq!(
            all,
            [
                (Some("research"), "agent"),
                (None, "span"),
                (Some("analysis"), "agent"),
                (None, "event"),
                (Some("inventory"), "run"),
            ]
        );

        let StepKind::Agent {
            agent, input, mock, ..
        } = &trace.steps[0].kind
        else {
            panic!("agent step expected")
        };
        assert_eq!(
            (agent.as_str(), input.as_str()),
            ("researcher", "Research {{ vars.topic }}")
        );
        assert_eq!(input.loc, Loc { line: 17, col: 12 });
        assert_eq!(mock, &None);
        assert_eq!(trace.steps[0].loc, Loc { line: 15, col: 5 });

        let StepKind::Span {
            name,
            events,
            steps,
        } = &trace.steps[1].kind
        else {
            panic!("span step expected")
        };
        assert_eq!(name.as_str(), "Analysis Phase");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name.as_str(), "Phase started");
        assert_eq!(events[0].attributes["inputs"].value, json!(1));
        let StepKind::Agent { mock, .. } = &steps[0].kind else {
            panic!("agent step expected")
        };
        match mock.as_deref() {
            Some([super::super::schema::MockTurn::Text(t)]) => {
                assert_eq!(t.value, "a mocked answer")
            }
            other => panic!("expected one text turn, got {other:?}"),
        }
        let StepKind::Event(event) = &steps[1].kind else {
            panic!("event step expected")
        };
        assert_eq!(event.name.as_str(), "Analysis done");
        assert_eq!(
            event.attributes["output_length"].value,
            json!("{{ steps.analysis.output | length }}")
        );
        assert_eq!(event.attributes["ratio"].value, json!(0.25));
        assert_eq!(event.attributes["nested"].value, json!({ "ok": true }));

        let StepKind::Run {
            command: Command::Argv(argv),
            env,
        } = &trace.steps[2].kind
        else {
            panic!("argv run step expected")
        };
        let argv: Vec<&str> = argv.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            argv,
            ["./scripts/check-stock.sh", "--sku", "{{ vars.sku }}"]
        );
        assert_eq!(env["ORDER_ID"].as_str(), "{{ vars.order_id }}");
    }

    #[test]
    fn traces_share_the_file_and_keep_their_metadata() {
        let src = "name: chat\nmodel: m\nagents: { a: {} }\ntraces:\n  - name: turn 1\n    metadata: { turn: 1 }\n    steps:\n      - { id: q1, agent: a, input: hi }\n  - name: turn 2\n    steps:\n      - { id: q2, agent: a, input: \"{{ steps.q1.output }}\" }\n";
        let wf = valid(src);
        let names: Vec<&str> = wf.traces.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["turn 1", "turn 2"]);
        assert_eq!(wf.traces[0].metadata["turn"].value, json!(1));
        assert_eq!(wf.traces[1].steps[0].loc, Loc { line: 11, col: 9 });
    }

    const ACTING: &str = r#"name: Support
vars: { conversation_id: c1, region: eu }
model: m
provider: { base_url: "http://127.0.0.1:8080/v1", stream: false }
tools:
  check_inventory:
    description: Stock level of one SKU
    parameters:
      type: object
      properties: { sku: { type: string } }
      required: [sku]
      additionalProperties: false
    command: [./scripts/check.sh, --region, "{{ vars.region }}", "{{ trace.id }}"]
  ping-2:
    command: [true]
agents:
  triage:
    instructions: Route the customer.
    tools: [check_inventory, ping-2]
    handoffs: [billing]
    max_turns: 4
    provider: { base_url: "http://localhost:9/v1", stream: true }
  billing:
    instructions: Handle payments.
    handoff_description: Refunds and invoices
    output_schema:
      type: object
      properties: { refund: { type: boolean } }
      required: [refund]
steps:
  - id: answer
    agent: triage
    input: I want a refund
    session: "support-{{ vars.conversation_id }}"
    mock:
      - tool_calls:
          - { name: check_inventory, arguments: { sku: A-1 } }
          - { name: ping-2 }
      - handoff: billing
      - '{"refund": true}'
  - id: short
    agent: billing
    input: hi
    mock: 42
"#;

    #[test]
    fn the_keys_of_agents_that_act_parse_into_the_expected_structure() {
        let wf = valid(ACTING);
        assert_eq!(wf.provider.as_ref().map(|p| p.stream), Some(Some(false)));

        assert_eq!(
            wf.tools.keys().collect::<Vec<_>>(),
            ["check_inventory", "ping-2"]
        );
        let tool = &wf.tools["check_inventory"];
        assert_eq!(tool.name.as_str(), "check_inventory");
        assert_eq!(tool.loc, Loc { line: 6, col: 3 });
        assert_eq!(tool.description.as_deref(), Some("Stock level of one SKU"));
        let parameters = tool.parameters.as_ref().expect("parameters");
        assert_eq!(
            parameters.value,
            json!({
                "type": "object",
                "properties": { "sku": { "type": "string" } },
                "required": ["sku"],
                "additionalProperties": false
            })
        );
        assert_eq!(parameters.loc, Loc { line: 9, col: 7 });
        let argv: Vec<&str> = tool.command.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            argv,
            [
                "./scripts/check.sh",
                "--region",
                "{{ vars.region }}",
                "{{ trace.id }}"
            ]
        );
        assert_eq!(tool.command[2].loc, Loc { line: 13, col: 45 });
        let ping = &wf.tools["ping-2"];
        assert_eq!(
            (ping.description.as_ref(), ping.parameters.as_ref()),
            (None, None)
        );
        assert_eq!(
            ping.command.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            ["true"]
        );

        let triage = &wf.agents["triage"];
        let names = |v: &[Located<String>]| v.iter().map(|n| n.value.clone()).collect::<Vec<_>>();
        assert_eq!(names(&triage.tools), ["check_inventory", "ping-2"]);
        assert_eq!(triage.tools[1].loc, Loc { line: 19, col: 30 });
        assert_eq!(names(&triage.handoffs), ["billing"]);
        assert_eq!(
            triage.max_turns,
            Some(Located::new(4, Loc { line: 21, col: 16 }))
        );
        assert_eq!(triage.provider.as_ref().map(|p| p.stream), Some(Some(true)));
        assert_eq!(triage.handoff_description, None);
        assert!(triage.output_schema.is_none());
        let billing = &wf.agents["billing"];
        assert_eq!(
            billing.handoff_description.as_deref(),
            Some("Refunds and invoices")
        );
        assert_eq!(
            billing.output_schema.as_ref().map(|s| &s.value),
            Some(&json!({
                "type": "object",
                "properties": { "refund": { "type": "boolean" } },
                "required": ["refund"]
            }))
        );
        assert_eq!(billing.max_turns, None);
        assert!(billing.tools.is_empty() && billing.handoffs.is_empty());

        let StepKind::Agent { session, mock, .. } = &wf.traces[0].steps[0].kind else {
            panic!("agent step expected")
        };
        assert_eq!(
            session,
            &Some(Located::new(
                "support-{{ vars.conversation_id }}".to_string(),
                Loc { line: 34, col: 14 }
            ))
        );
        let at = |line, col| Loc { line, col };
        let expected = vec![
            MockTurn::ToolCalls(vec![
                MockToolCall {
                    name: Located::new("check_inventory".into(), at(37, 21)),
                    arguments: json!({ "sku": "A-1" }),
                },
                MockToolCall {
                    name: Located::new("ping-2".into(), at(38, 21)),
                    arguments: json!({}),
                },
            ]),
            MockTurn::Handoff(Located::new("billing".into(), at(39, 18))),
            MockTurn::Text(Located::new(r#"{"refund": true}"#.into(), at(40, 9))),
        ];
        assert_eq!(mock.as_ref(), Some(&expected));
        let StepKind::Agent { session, mock, .. } = &wf.traces[0].steps[1].kind else {
            panic!("agent step expected")
        };
        assert_eq!(session, &None);
        assert_eq!(
            mock.as_ref(),
            Some(&vec![MockTurn::Text(Located::new("42".into(), at(44, 11)))])
        );
    }

    #[test]
    fn tool_definitions_are_checked() {
        let src = r#"name: t
tools:
  "has space": { command: [a] }
  transfer_to_billing: { command: [a] }
  no_command: { description: d }
  bare:
  shell: { command: "echo hi", parameters: [a] }
  empty: { command: [], descripton: d }
  nested: { command: [a, [b]], parameters: { type: object } }
  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: { command: [a] }
steps:
  - run: echo
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:3: tool name `has space` must be 1 to 64 letters, digits, `_` or `-`",
                "w.yaml:4:3: tool name `transfer_to_billing` starts with `transfer_to_`, which is reserved for handoffs",
                "w.yaml:5:3: tool `no_command` needs `command:`",
                "w.yaml:6:3: tool `bare` needs `command:`",
                "w.yaml:7:21: `command` must be a command list `[prog, arg]`, found a string",
                "w.yaml:7:44: `parameters` must be a mapping (a JSON Schema), found a list",
                "w.yaml:8:21: `command:` list is empty",
                "w.yaml:8:25: unknown key `descripton` in tool `empty`; did you mean `description`?",
                "w.yaml:9:26: each `command:` argument must be a string, found a list",
                "w.yaml:10:3: tool name `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx` must be 1 to 64 letters, digits, `_` or `-`",
            ]
        );
        assert_eq!(
            problems("name: t\ntools: [a]\nsteps: [{ run: echo }]\n"),
            ["w.yaml:2:8: `tools` must be a mapping of tool names to tools, found a list"]
        );
        assert_eq!(
            problems("name: t\nagents: 5\ntools: ~\nsteps: [{ run: echo }]\n"),
            ["w.yaml:2:9: `agents` must be a mapping of agent names to agents, found a number"]
        );
        assert_eq!(
            helps("name: t\ntools: { a: { command: echo } }\nsteps: [{ run: echo }]\n"),
            [Some(
                "tools run without a shell; write `command: [prog, arg]`".to_string()
            )]
        );
    }

    #[test]
    fn agent_and_provider_keys_for_acting_are_checked() {
        let src = r#"name: t
model: m
provider: { stream: "yes" }
agents:
  a:
    tools: check
    handoffs: [b, [c], ""]
    max_turns: 0
    output_schema: "{}"
    handoff_description: [x]
    provider: { stream: 1 }
  b: { max_turns: 2.5, handof: [a] }
  c: { max_turns: 99999999999 }
steps:
  - { agent: a, input: hi }
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:21: `stream` must be `true` or `false`, found a string",
                "w.yaml:6:12: `tools` must be a list of tool names, found a string",
                "w.yaml:7:19: each `handoffs:` item must be an agent name, found a list",
                "w.yaml:7:24: each `handoffs:` item must be an agent name, found an empty string",
                "w.yaml:8:16: `max_turns` must be at least 1",
                "w.yaml:9:20: `output_schema` must be a mapping (a JSON Schema), found a string",
                "w.yaml:10:26: `handoff_description` must be a string, found a list",
                "w.yaml:11:25: `stream` must be `true` or `false`, found a number",
                "w.yaml:12:19: `max_turns` must be a whole number, found a number",
                "w.yaml:12:24: unknown key `handof` in agent `b`; did you mean `handoffs`?",
                "w.yaml:13:19: `max_turns` is too large",
            ]
        );
    }

    #[test]
    fn mock_turns_are_checked() {
        let src = format!(
            "{HEAD}steps:
  - agent: a
    input: hi
    mock:
      - {{ tool_calls: [{{ name: t, arguments: [1] }}, {{ arguments: {{}} }}, {{ name: t, argz: 1 }}] }}
      - {{ handoff: a, tool_calls: [] }}
      - {{ handof: a }}
      - {{}}
      - [nested]
      - {{ tool_calls: [] }}
      - {{ tool_calls: x }}
      - {{ handoff: \"\" }}
  - {{ agent: a, input: hi, mock: [] }}
  - {{ agent: a, input: hi, mock: {{ handoff: a }} }}
  - {{ agent: a, input: hi, mock: }}
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:8:46: `arguments` must be a mapping, found a list",
                "w.yaml:8:53: a tool call needs `name:`",
                "w.yaml:8:80: unknown tool `t`",
                "w.yaml:8:83: unknown key `argz` in a tool call",
                "w.yaml:9:23: a mock turn cannot have both `tool_calls:` and `handoff:`",
                "w.yaml:10:11: unknown key `handof` in a mock turn; did you mean `handoff`?",
                "w.yaml:11:9: a mock turn needs `tool_calls:` or `handoff:` (or is a string)",
                "w.yaml:12:9: a mock turn must be a string, `{ tool_calls: [...] }` or `{ handoff: AGENT }`, found a list",
                "w.yaml:13:23: `tool_calls:` has no calls",
                "w.yaml:14:23: `tool_calls` must be a list of `{ name, arguments }`, found a string",
                "w.yaml:15:20: `handoff:` needs the name of an agent",
                "w.yaml:16:34: `mock:` has no turns",
                "w.yaml:17:34: `mock` must be a string or a list of turns, found a mapping",
                "w.yaml:18:32: `mock:` needs a value (a string or a list of turns)",
            ]
        );
    }

    #[test]
    fn session_only_applies_to_agent_steps() {
        let src = format!(
            "{HEAD}steps:\n  - run: echo\n    session: s\n  - {{ agent: a, input: hi, session: [s] }}\n"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:6:5: `session:` only applies to `agent:` steps",
                "w.yaml:7:37: `session` must be a string, found a list",
            ]
        );
    }

    const CONTROL: &str = r#"name: Batch
model: m
vars: { topics: [a, b], order: o1 }
timeout: 1h30m
retry: { attempts: 3, backoff: 500ms, timeout: 30 }
max_concurrency: 8
budget: { max_tokens: 100000, max_cost_usd: 2.5, max_duration: 10m }
prices:
  gpt-4o-mini: { input: 0.15, output: 0.6 }
  local: { input: 0, output: 0 }
agents:
  stock: { retry: { attempts: 5 } }
  payments: {}
steps:
  - id: checks
    name: Checks
    parallel:
      - { id: inventory, agent: stock, input: "{{ vars.order }}", retry: { backoff: 2s } }
      - id: payment
        agent: payments
        input: pay
        timeout: 45s
        continue_on_error: true
      - span: Audit
        steps:
          - { id: audit, run: [echo, audit] }
      - event: Checks started
    fail_fast: true
  - id: summaries
    if: "{{ steps.checks.status == 'ok' }}"
    foreach: "{{ vars.topics }}"
    as: topic
    concurrency: 4
    steps:
      - event: Item started
      - id: summary
        agent: stock
        input: "Summarise {{ topic }} after {{ steps.payment.output }}"
        if: topic != 'skip' and steps.inventory.status == 'ok'
  - id: literal
    foreach: [x, { name: why }]
    steps:
      - { id: echo_item, run: [echo, "{{ item }}", "{{ item.name }}"] }
  - id: after
    if: steps.literal.status != 'error'
    run: [echo, "{{ steps.summaries.output }} {{ steps.audit.output }}"]
"#;

    #[test]
    fn the_control_flow_keys_parse_into_the_expected_structure() {
        use std::time::Duration;
        let wf = valid(CONTROL);
        let at = |line, col| Loc { line, col };
        assert_eq!(
            wf.timeout,
            Some(Located::new(Duration::from_secs(5400), at(4, 10)))
        );
        assert_eq!(
            wf.retry,
            Some(RetryDef {
                attempts: Some(3),
                backoff: Some(Duration::from_millis(500)),
                timeout: Some(Duration::from_secs(30)),
                loc: at(5, 8),
            })
        );
        assert_eq!(wf.max_concurrency, Some(Located::new(8, at(6, 18))));
        assert_eq!(
            wf.budget,
            Some(BudgetDef {
                max_tokens: Some(100_000),
                max_cost_usd: Some(2.5),
                max_duration: Some(Duration::from_secs(600)),
                loc: at(7, 9),
            })
        );
        assert_eq!(
            wf.prices.clone().into_iter().collect::<Vec<_>>(),
            [
                (
                    "gpt-4o-mini".to_string(),
                    PriceDef {
                        input: 0.15,
                        output: 0.6,
                        loc: at(9, 3)
                    }
                ),
                (
                    "local".to_string(),
                    PriceDef {
                        input: 0.0,
                        output: 0.0,
                        loc: at(10, 3)
                    }
                ),
            ]
        );
        assert_eq!(
            wf.agents["stock"].retry,
            Some(RetryDef {
                attempts: Some(5),
                loc: at(12, 19),
                ..RetryDef::default()
            })
        );
        assert_eq!(wf.agents["payments"].retry, None);

        let steps = &wf.traces[0].steps;
        let forms: Vec<&str> = steps.iter().map(Step::form).collect();
        assert_eq!(forms, ["parallel", "foreach", "foreach", "run"]);
        let all: Vec<Option<&str>> = wf
            .all_steps()
            .iter()
            .map(|s| s.id.as_ref().map(|i| i.as_str()))
            .collect();
        assert_eq!(
            all,
            [
                Some("checks"),
                Some("inventory"),
                Some("payment"),
                None,
                Some("audit"),
                None,
                Some("summaries"),
                None,
                Some("summary"),
                Some("literal"),
                Some("echo_item"),
                Some("after"),
            ]
        );

        let checks = &steps[0];
        assert_eq!(checks.name.as_ref().map(|n| n.as_str()), Some("Checks"));
        assert_eq!(
            (checks.condition.as_ref(), checks.continue_on_error),
            (None, false)
        );
        let StepKind::Parallel {
            branches,
            fail_fast,
        } = &checks.kind
        else {
            panic!("parallel step expected")
        };
        assert!(*fail_fast);
        let forms: Vec<&str> = branches.iter().map(Step::form).collect();
        assert_eq!(forms, ["agent", "agent", "span", "event"]);
        assert_eq!(
            branches[0].retry,
            Some(RetryDef {
                backoff: Some(Duration::from_secs(2)),
                loc: at(18, 74),
                ..RetryDef::default()
            })
        );
        assert_eq!(branches[0].timeout, None);
        assert_eq!(
            branches[1].timeout,
            Some(Located::new(Duration::from_secs(45), at(22, 18)))
        );
        assert!(branches[1].continue_on_error);
        assert!(!branches[0].continue_on_error);

        let summaries = &steps[1];
        assert_eq!(
            summaries.condition,
            Some(Located::new(
                "{{ steps.checks.status == 'ok' }}".to_string(),
                at(30, 9)
            ))
        );
        let StepKind::Foreach {
            items,
            as_name,
            concurrency,
            steps: inner,
        } = &summaries.kind
        else {
            panic!("foreach step expected")
        };
        assert_eq!(items, &Located::new(json!("{{ vars.topics }}"), at(31, 14)));
        assert_eq!((as_name.as_str(), *concurrency), ("topic", 4));
        assert_eq!(
            inner.iter().map(Step::form).collect::<Vec<_>>(),
            ["event", "agent"]
        );
        assert_eq!(
            inner[1].condition.as_ref().map(|c| c.as_str()),
            Some("topic != 'skip' and steps.inventory.status == 'ok'")
        );

        let StepKind::Foreach {
            items,
            as_name,
            concurrency,
            steps: inner,
        } = &steps[2].kind
        else {
            panic!("foreach step expected")
        };
        assert_eq!(
            items,
            &Located::new(json!(["x", { "name": "why" }]), at(41, 14))
        );
        assert_eq!((as_name.as_str(), *concurrency), ("item", 1));
        assert_eq!(inner.len(), 1);
        assert_eq!(
            steps[3].condition.as_ref().map(|c| c.as_str()),
            Some("steps.literal.status != 'error'")
        );
    }

    #[test]
    fn durations_take_units_or_seconds_and_must_be_positive() {
        let timeout = |value: &str| {
            let src = format!("name: t\ntimeout: {value}\nsteps: [{{ run: echo }}]\n");
            let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), &src);
            match diags.first() {
                Some(d) => Err(d.headline()),
                None => Ok(wf.and_then(|wf| wf.timeout).map(|t| t.value)),
            }
        };
        use std::time::Duration;
        assert_eq!(timeout("500ms"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(timeout("30s"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(timeout("2m"), Ok(Some(Duration::from_secs(120))));
        assert_eq!(timeout("1h"), Ok(Some(Duration::from_secs(3600))));
        assert_eq!(timeout("1h30m"), Ok(Some(Duration::from_secs(5400))));
        assert_eq!(timeout("1d"), Ok(Some(Duration::from_secs(86400))));
        assert_eq!(timeout("90"), Ok(Some(Duration::from_secs(90))));
        assert_eq!(timeout("\"15\""), Ok(Some(Duration::from_secs(15))));
        let bad = "w.yaml:2:10: `timeout` must be a duration like 30s, 2m or 1h";
        for text in ["soon", "1.5", "2 parsecs", "1mo", "\"\""] {
            assert_eq!(timeout(text), Err(bad.to_string()), "{text}");
        }
        let zero = "w.yaml:2:10: `timeout` must be longer than zero";
        for text in ["0", "0s", "-5s", "-3"] {
            assert_eq!(timeout(text), Err(zero.to_string()), "{text}");
        }
        assert_eq!(
            timeout("[1s]"),
            Err(
                "w.yaml:2:10: `timeout` must be a duration like 30s, 2m or 1h, found a list".into()
            )
        );
        assert_eq!(
            timeout(""),
            Err("w.yaml:2:8: `timeout:` needs a value (a duration like 30s, 2m or 1h)".into())
        );
    }

    #[test]
    fn top_level_limits_retries_budgets_and_prices_are_checked() {
        let src = r#"name: t
model: m
timeout: forever
retry: { attempts: 0, backoff: 0s, timeot: 1s }
max_concurrency: 0
budget: { max_tokens: 0, max_cost_usd: 0, max_duration: -1m, max_cost: 1 }
prices:
  a: { input: -1, output: x }
  b: { input: 1 }
  c: 3
  d: { input: 1, output: 1, cached: 1 }
agents:
  w: { retry: { attempts: 21 } }
steps:
  - { agent: w, input: hi, retry: { attempts: 2.5, timeout: 0 } }
"#;
        assert_eq!(
            problems(src),
            [
                "w.yaml:3:10: `timeout` must be a duration like 30s, 2m or 1h",
                "w.yaml:4:20: `attempts` must be at least 1",
                "w.yaml:4:32: `backoff` must be longer than zero",
                "w.yaml:4:36: unknown key `timeot` in retry; did you mean `timeout`?",
                "w.yaml:5:18: `max_concurrency` must be at least 1",
                "w.yaml:6:23: `max_tokens` must be at least 1",
                "w.yaml:6:40: `max_cost_usd` must be more than zero",
                "w.yaml:6:57: `max_duration` must be longer than zero",
                "w.yaml:6:62: unknown key `max_cost` in budget; did you mean `max_cost_usd`?",
                "w.yaml:8:15: `input` must not be negative",
                "w.yaml:8:27: `output` must be a number, found a string",
                "w.yaml:9:3: the price of model `b` needs `output:`",
                "w.yaml:10:6: the price of model `c` must be a mapping, found a number",
                "w.yaml:11:29: unknown key `cached` in the price of model `d`",
                "w.yaml:13:27: `attempts` must be at most 20",
                "w.yaml:15:47: `attempts` must be a whole number, found a number",
                "w.yaml:15:61: `timeout` must be longer than zero",
            ]
        );
        assert_eq!(
            problems(
                "name: t\nretry: 3\nbudget: [1]\nprices: [a]\nmax_concurrency: 99999999999\nsteps: [{ run: echo }]\n"
            ),
            [
                "w.yaml:2:8: `retry` must be a mapping, found a number",
                "w.yaml:3:9: `budget` must be a mapping, found a list",
                "w.yaml:4:9: `prices` must be a mapping of model names to prices, found a list",
                "w.yaml:5:18: `max_concurrency` is too large",
            ]
        );
    }

    #[test]
    fn step_control_keys_are_checked() {
        let src = format!(
            "{HEAD}steps:
  - run: echo
    if: \"\"
    continue_on_error: \"yes\"
    timeout: 2 parsecs
    retry: {{ attempts: 2 }}
  - span: S
    fail_fast: true
    as: x
    concurrency: 2
  - parallel: []
  - parallel: {{ run: echo }}
  - foreach: 3
    as: 2nd
    concurrency: 0
    steps: [{{ run: echo }}]
  - foreach: [a]
    as: vars
  - foreach:
    steps: []
  - agent: a
    input: hi
    steps: [{{ run: echo }}]
    fail_fast: false
"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:6:9: `if:` is empty",
                "w.yaml:7:24: `continue_on_error` must be `true` or `false`, found a string",
                "w.yaml:8:14: `timeout` must be a duration like 30s, 2m or 1h",
                "w.yaml:9:5: `retry:` only applies to `agent:` steps",
                "w.yaml:11:5: `fail_fast:` only applies to `parallel:` steps",
                "w.yaml:12:5: `as:` only applies to `foreach:` steps",
                "w.yaml:13:5: `concurrency:` only applies to `foreach:` steps",
                "w.yaml:14:15: `parallel:` has no steps",
                "w.yaml:15:15: `parallel` must be a list of steps, found a mapping",
                "w.yaml:16:14: `foreach` must be a list, or a template like `{{ vars.topics }}` that gives one, found a number",
                "w.yaml:17:9: `as:` name `2nd` must be letters, digits and `_`, not starting with a digit",
                "w.yaml:18:18: `concurrency` must be at least 1",
                "w.yaml:20:5: a `foreach:` step needs `steps:`",
                "w.yaml:21:9: `as: vars` would hide the template variable `vars`",
                "w.yaml:22:12: `foreach:` needs a value (a list, or a template like `{{ vars.topics }}` that gives one)",
                "w.yaml:23:12: `steps:` has no steps",
                "w.yaml:26:5: `steps:` only applies to `span:` and `foreach:` steps",
                "w.yaml:27:5: `fail_fast:` only applies to `parallel:` steps",
            ]
        );
        assert_eq!(
            problems(&format!(
                "{HEAD}steps:\n  - parallel: [{{ run: echo }}]\n    foreach: [a]\n"
            )),
            ["w.yaml:6:5: a step cannot have both `parallel:` and `foreach:`"]
        );
    }

    #[test]
    fn suggestions_are_close_or_prefixes() {
        assert_eq!(suggest("inptu", STEP_KEYS.iter().copied()), Some("input"));
        assert_eq!(
            suggest("instr", AGENT_KEYS.iter().copied()),
            Some("instructions")
        );
        assert_eq!(suggest("zzzz", STEP_KEYS.iter().copied()), None);
        assert_eq!(suggest("x", ["id"]), None);
    }
}
