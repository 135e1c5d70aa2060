//! Reading the top-level `agents:` (model settings, tools, handoffs, output schema) and the
//! scripted turns of a step's `mock:`, which name tools and agents the same way.

use indexmap::IndexMap;

use super::super::node::{Node, NodeKind};
use super::super::schema::{
    AgentDef, Located, MockToolCall, MockTurn, REASONING_EFFORTS, REASONING_SUMMARIES, ReasoningDef,
};
use super::{Fields, Parser};

pub(super) const AGENT_KEYS: &[&str] = &[
    "instructions",
    "model",
    "temperature",
    "max_tokens",
    "seed",
    "reasoning",
    "provider",
    "tools",
    "mcp",
    "handoffs",
    "handoff_description",
    "output_schema",
    "max_turns",
    "retry",
];
const MOCK_TURN_KEYS: &[&str] = &["tool_calls", "handoff"];
const REASONING_KEYS: &[&str] = &["effort", "summary"];
const TOOL_CALL_KEYS: &[&str] = &["name", "arguments"];

impl Parser<'_> {
    pub(super) fn agents(&mut self, top: &Fields) -> IndexMap<String, AgentDef> {
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
                    mcp: Vec::new(),
                    handoffs: Vec::new(),
                    handoff_description: None,
                    output_schema: None,
                    max_turns: None,
                    retry: None,
                    reasoning: None,
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
                        mcp: self.agent_mcp(&f),
                        handoffs: self.names(&f, "handoffs", "agent"),
                        handoff_description: self
                            .opt_text(&f, "handoff_description")
                            .map(|d| d.value),
                        output_schema: self.schema(&f, "output_schema"),
                        max_turns: f.value("max_turns").and_then(|n| self.max_turns(n)),
                        retry: f.value("retry").and_then(|n| self.retry(n)),
                        reasoning: f.value("reasoning").and_then(|n| self.reasoning(n)),
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

    /// `reasoning: { effort, summary }`.
    fn reasoning(&mut self, node: &Node) -> Option<ReasoningDef> {
        let f = self.fields(node, REASONING_KEYS, "in reasoning", "`reasoning`")?;
        Some(ReasoningDef {
            effort: f
                .value("effort")
                .and_then(|n| self.keyword("reasoning.effort", n, REASONING_EFFORTS)),
            summary: f
                .value("summary")
                .and_then(|n| self.keyword("reasoning.summary", n, REASONING_SUMMARIES)),
            loc: node.loc,
        })
    }

    fn max_turns(&mut self, node: &Node) -> Option<Located<u32>> {
        let turns = self.whole("max_turns", node, 1, u64::from(u32::MAX))?;
        Some(Located::new(u32::try_from(turns).ok()?, node.loc))
    }

    /// `mock:` — a string (one text turn) or a list of turns.
    pub(super) fn mock(&mut self, node: &Node) -> Option<Vec<MockTurn>> {
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
}
