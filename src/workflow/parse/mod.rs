//! Reading a workflow file: YAML → located tree → the typed [`Workflow`], reporting every
//! problem in the file at once.
//!
//! The conversion is written by hand rather than derived so that one bad value never hides the
//! next: each key is checked on its own, unknown keys get a did-you-mean, and a step keeps its
//! place in the result even when one of its keys was wrong (so validation does not add
//! follow-on noise such as "unknown step" for a step that is there).
//!
//! The parser is one `Parser` whose methods are spread over this folder by what they read: this
//! file holds the entry point, the checks every mapping goes through and the workflow's top level;
//! `steps` the steps and traces, `agents` the agents and their scripted turns, `tools` the
//! tool definitions, `mcp` the MCP servers and an agent's `mcp:`, `values` single values (text, numbers, durations, lists of names),
//! `expect` the `expect:` checks and `scores` the `scores:` lists.

use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use super::diagnostic::{Loc, did_you_mean, list, suggest};
use super::node::{self, Node, NodeKind};
use super::schema::{BudgetDef, DatasetDef, Located, PriceDef, Provider, RetryDef};
use super::{Diagnostic, Workflow};
use expect::Level;

mod agents;
mod expect;
mod mcp;
mod scores;
mod steps;
#[cfg(test)]
pub(super) mod tests;
mod tools;
mod values;

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "vars",
    "group_id",
    "metadata",
    "model",
    "provider",
    "tools",
    "mcp_servers",
    "agents",
    "steps",
    "traces",
    "timeout",
    "retry",
    "max_concurrency",
    "budget",
    "prices",
    "expect",
    "scores",
    "dataset",
];
const PROVIDER_KEYS: &[&str] = &[
    "base_url",
    "api_key_env",
    "headers",
    "stream",
    "api",
    "max_connections",
];
const RETRY_KEYS: &[&str] = &["attempts", "backoff", "timeout"];
const BUDGET_KEYS: &[&str] = &["max_tokens", "max_cost_usd", "max_duration"];
const PRICE_KEYS: &[&str] = &["input", "output"];
/// Attempts a `retry:` may ask for, the first included.
const MAX_ATTEMPTS: u64 = 20;
/// More connections than this to one server would exhaust any machine's file descriptors.
const MAX_CONNECTIONS: u64 = 100_000;

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
        let mcp_servers = self.mcp_servers(&f);
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
        let scores = self.scores(&f);
        let dataset = f.value("dataset").and_then(|n| self.dataset(n));
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
            mcp_servers,
            agents,
            traces,
            timeout,
            retry,
            max_concurrency,
            budget,
            prices,
            expect,
            scores,
            dataset,
        })
    }

    /// `dataset:` — a file name (with a dataset's extension) or a list of case mappings.
    fn dataset(&mut self, node: &Node) -> Option<DatasetDef> {
        match &node.kind {
            NodeKind::Str(path) => {
                let ext = std::path::Path::new(path)
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                if !matches!(
                    ext.as_deref(),
                    Some("jsonl" | "ndjson" | "csv" | "yaml" | "yml")
                ) {
                    self.error(
                        node.loc,
                        format!("dataset `{path}` is not a .jsonl, .csv or .yaml file"),
                    );
                    self.help("name a dataset file, or write the cases here as a list");
                    return None;
                }
                Some(DatasetDef::File(Located::new(path.clone(), node.loc)))
            }
            NodeKind::Seq(items) => {
                let mut cases = Vec::with_capacity(items.len());
                for item in items {
                    match item.to_json() {
                        serde_json::Value::Object(map) => cases.push((item.loc.line, map)),
                        _ => {
                            self.error(
                                item.loc,
                                format!(
                                    "a case of `dataset` is a mapping, found {}",
                                    item.describe()
                                ),
                            );
                        }
                    }
                }
                if items.is_empty() {
                    self.error(node.loc, "`dataset` has no cases");
                    return None;
                }
                Some(DatasetDef::Inline(cases))
            }
            _ => {
                self.wrong_type("dataset", "a dataset file name or a list of cases", node);
                None
            }
        }
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
            api: f.value("api").and_then(|n| self.api(n)),
            max_connections: f.value("max_connections").and_then(|n| {
                let count = self.whole("max_connections", n, 1, MAX_CONNECTIONS)?;
                Some(Located::new(u32::try_from(count).ok()?, n.loc))
            }),
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
}
