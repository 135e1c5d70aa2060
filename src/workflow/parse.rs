//! Reading a workflow file: YAML → located tree → the typed [`Workflow`], reporting every
//! problem in the file at once.
//!
//! The conversion is written by hand rather than derived so that one bad value never hides the
//! next: each key is checked on its own, unknown keys get a did-you-mean, and a step keeps its
//! place in the result even when one of its keys was wrong (so validation does not add
//! follow-on noise such as "unknown step" for a step that is there).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::node::{self, Node, NodeKind};
use super::schema::{
    AgentDef, Command, EventDef, Loc, Located, LocatedValue, Provider, Step, StepKind, TraceDef,
};
use super::{Diagnostic, Workflow, validate};
use crate::error::Error;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "vars",
    "group_id",
    "metadata",
    "model",
    "provider",
    "agents",
    "steps",
    "traces",
];
const PROVIDER_KEYS: &[&str] = &["base_url", "api_key_env", "headers"];
const AGENT_KEYS: &[&str] = &[
    "instructions",
    "model",
    "temperature",
    "max_tokens",
    "provider",
];
const TRACE_KEYS: &[&str] = &["name", "metadata", "steps"];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "agent",
    "input",
    "mock",
    "run",
    "env",
    "span",
    "steps",
    "events",
    "event",
    "attributes",
];
const EVENT_KEYS: &[&str] = &["name", "attributes"];
/// The keys that choose a step's form.
const FORMS: &[&str] = &["agent", "run", "span", "event"];
/// Keys that belong to one form only, and that form.
const FORM_ONLY_KEYS: &[(&str, &str)] = &[
    ("input", "agent"),
    ("mock", "agent"),
    ("env", "run"),
    ("steps", "span"),
    ("events", "span"),
    ("attributes", "event"),
];

/// Reads, parses and validates a workflow file; every problem in one Error::Invalid (sorted by
/// line/col), or Error::ReadFile.
pub fn load(path: &Path) -> Result<Workflow, Error> {
    let source = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let (workflow, mut diagnostics) = parse_str(&file, path.to_path_buf(), &source);
    if let Some(wf) = &workflow {
        diagnostics.extend(validate::validate(wf));
    }
    match workflow {
        Some(wf) if diagnostics.is_empty() => Ok(wf),
        _ => {
            if diagnostics.is_empty() {
                diagnostics.push(Diagnostic::new(
                    &file,
                    Loc { line: 1, col: 1 },
                    "not a usable workflow",
                ));
            }
            diagnostics.sort_by_key(|d| d.loc);
            Err(Error::Invalid {
                diagnostics: diagnostics
                    .into_iter()
                    .map(|d| d.with_source(&source))
                    .collect(),
            })
        }
    }
}

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

/// The closest candidate to a misspelt word: within edit distance 2 (and less than the word's
/// length), or one being a prefix of the other.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let c = candidate.to_lowercase();
        let distance = edit_distance(&lower, &c);
        let close = distance <= 2 && distance < lower.chars().count();
        let prefix = lower.len() >= 2 && (c.starts_with(&lower) || lower.starts_with(&c));
        let score = if close {
            distance
        } else if prefix {
            3
        } else {
            continue;
        };
        if best.is_none_or(|(b, _)| score < b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            row[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[b.len()]
}

/// "; did you mean `x`?" when there is a close match (part of the message, so that it shows in
/// the one-line `FILE:LINE:COL: message` form too).
pub(crate) fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// A list of names for a help line: "`a`, `b`, `c`".
pub(crate) fn list(names: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a step id can be written as `steps.<id>` in a template.
pub(crate) fn is_identifier(id: &str) -> bool {
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
        let agents = self.agents(&f);
        let traces = self.traces(&f, root, &name);
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
            tools: IndexMap::new(),
            agents,
            traces,
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
            stream: None,
            loc: node.loc,
        })
    }

    fn agents(&mut self, top: &Fields) -> IndexMap<String, AgentDef> {
        let mut out = IndexMap::new();
        let Some(node) = top.value("agents") else {
            return out;
        };
        let entries = match &node.kind {
            NodeKind::Map(entries) => entries,
            NodeKind::Null => return out,
            _ => {
                self.wrong_type("agents", "a mapping of agent names to agents", node);
                return out;
            }
        };
        for (name, def) in entries {
            let place = format!("in agent `{}`", name.value);
            let agent = match &def.kind {
                NodeKind::Null => AgentDef {
                    name: name.clone(),
                    instructions: None,
                    model: None,
                    temperature: None,
                    max_tokens: None,
                    provider: None,
                    tools: Vec::new(),
                    handoffs: Vec::new(),
                    handoff_description: None,
                    output_schema: None,
                    max_turns: None,
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
                        provider: f.value("provider").and_then(|n| self.provider(n)),
                        tools: Vec::new(),
                        handoffs: Vec::new(),
                        handoff_description: None,
                        output_schema: None,
                        max_turns: None,
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
                    "a step must be a mapping with one of `agent:`, `run:`, `span:` or `event:`, found {}",
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
        let forms: Vec<(&Located<String>, &Node)> = f
            .entries
            .iter()
            .filter(|(k, _)| FORMS.contains(&k.as_str()))
            .map(|(k, v)| (k, v))
            .collect();
        let Some(&(form_key, form_value)) = forms.first() else {
            self.error(
                node.loc,
                "a step needs exactly one of `agent:`, `run:`, `span:` or `event:`",
            );
            // Kept as an empty span so that references to its id do not add noise.
            let placeholder = id
                .clone()
                .unwrap_or_else(|| Located::new(String::new(), node.loc));
            return Some(Step {
                id,
                name,
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
            if let Some((_, owner)) = FORM_ONLY_KEYS.iter().find(|(k, _)| *k == key.value)
                && *owner != form
            {
                let d = self.error(
                    key.loc,
                    format!("`{}:` only applies to `{owner}:` steps", key.value),
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
            _ => StepKind::Event(EventDef {
                name: self
                    .text("event", form_value)
                    .unwrap_or_else(|| Located::new(String::new(), form_value.loc)),
                attributes: self.json_map(&f, "attributes"),
                loc: node.loc,
            }),
        };
        Some(Step {
            id,
            name,
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
            mock: self
                .opt_text(f, "mock")
                .map(|t| vec![super::schema::MockTurn::Text(t)]),
            session: None,
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
mod tests {
    use super::*;
    use serde_json::json;

    /// Every problem parse and validation find, as `FILE:LINE:COL: message`, in file order.
    pub(crate) fn problems(src: &str) -> Vec<String> {
        let (wf, mut diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        if let Some(wf) = &wf {
            diags.extend(validate::validate(wf));
        }
        diags.sort_by_key(|d| d.loc);
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
                Some("allowed keys: `base_url`, `api_key_env`, `headers`".to_string()),
                Some("allowed keys: `name`, `attributes`".to_string()),
            ]
        );
    }

    #[test]
    fn wrong_types_point_at_the_value() {
        let src = "name: t\nmodel: m\nagents:\n  a: { temperature: hot, max_tokens: -3 }\n\
                   steps:\n  - run: { a: 1 }\n  - id: x\n    run: [echo, [nested]]\n    env: { A: 1, B: [2] }\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:4:21: `temperature` must be a number, found a string",
                "w.yaml:4:38: `max_tokens` must be a positive whole number, found a number",
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
                "w.yaml:5:5: a step needs exactly one of `agent:`, `run:`, `span:` or `event:`",
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

    const EXAMPLE: &str = r#"name: Research and Analysis Workflow      # required; the trace name
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
        let wf = parsed(EXAMPLE);
        assert_eq!(validate::validate(&wf), []);
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
        assert_eq!(agent.loc, Loc { line: 9, col: 3 });

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
        let wf = parsed(src);
        assert_eq!(validate::validate(&wf), []);
        let names: Vec<&str> = wf.traces.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["turn 1", "turn 2"]);
        assert_eq!(wf.traces[0].metadata["turn"].value, json!(1));
        assert_eq!(wf.traces[1].steps[0].loc, Loc { line: 11, col: 9 });
    }

    #[test]
    fn load_reports_unreadable_files_and_gathers_every_problem_with_snippets() {
        let missing = load(Path::new("/nonexistent/w.yaml"));
        assert!(matches!(missing, Err(Error::ReadFile { .. })));

        let dir = std::env::temp_dir().join(format!("agentrace-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.yaml");
        std::fs::write(
            &path,
            "name: t\nsteps:\n  - id: a\n    run: \"echo {{ vars.x }}\"\n    inptu: 1\n",
        )
        .unwrap();
        let Err(Error::Invalid { diagnostics }) = load(&path) else {
            panic!("invalid expected")
        };
        let lines: Vec<(u32, Option<&str>)> = diagnostics
            .iter()
            .map(|d| (d.loc.line, d.line_text.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [
                (4, Some("    run: \"echo {{ vars.x }}\"")),
                (5, Some("    inptu: 1"))
            ]
        );
        std::fs::write(&path, EXAMPLE).unwrap();
        assert!(load(&path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
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
