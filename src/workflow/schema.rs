//! The typed workflow: what a YAML file means once parsed, with the source location of every
//! value that a later check or a runtime error may need to point at.
//!
//! Parsing (`parse/`) builds these types and reports every problem it finds; validation
//! (`validate/`) checks the relations between them (ids, references, agents, templates). The
//! engine only ever sees a `Workflow` that passed both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::diagnostic::Loc;
use indexmap::IndexMap;

// Defined beside `Loc`, so that the types of `expect:` and `scores:` hold located values
// without importing this file (which holds them).
pub use super::diagnostic::{Located, LocatedValue};

#[derive(Clone, Debug)]
pub struct Workflow {
    /// The path the file was read from, as the user gave it (used in every message).
    pub path: PathBuf,
    /// The file's text, for snippets in runtime errors.
    pub source: Arc<str>,
    /// The top-level `name`: the workflow name, and the trace name unless `traces:` names them.
    pub name: Located<String>,
    pub description: Option<String>,
    /// Defaults for `vars`, in file order; `--var K=V` may override only these keys.
    pub vars: IndexMap<String, LocatedValue>,
    /// A template for the group id shared by every trace of the run.
    pub group_id: Option<Located<String>>,
    /// Values are templates where they are strings.
    pub metadata: IndexMap<String, LocatedValue>,
    /// The default model of agents that do not name one.
    pub model: Option<Located<String>>,
    pub provider: Option<Provider>,
    /// Function tools agents may call: name → definition.
    pub tools: IndexMap<String, ToolDef>,
    /// MCP tool servers agents may use (`mcp_servers:`): name → definition.
    pub mcp_servers: IndexMap<String, McpServerDef>,
    pub agents: IndexMap<String, AgentDef>,
    /// Always at least one: a file with top-level `steps:` holds one trace named after the
    /// workflow.
    pub traces: Vec<TraceDef>,
    /// The whole run's time limit (`timeout: 2m`).
    pub timeout: Option<Located<Duration>>,
    /// How model calls are retried unless an agent or step says otherwise.
    pub retry: Option<RetryDef>,
    /// Model calls in flight at once across the run; `--max-concurrency` overrides.
    pub max_concurrency: Option<Located<u32>>,
    pub budget: Option<BudgetDef>,
    /// USD per million tokens by model, over the built-in table.
    pub prices: IndexMap<String, PriceDef>,
    /// `expect:` on the run as a whole, checked after the last trace's steps.
    pub expect: Option<super::expect::Expect>,
    /// `scores:` of the whole trace, run after its steps (after the last trace's, like
    /// `expect:`).
    pub scores: Vec<super::scores::ScoreDef>,
    /// `dataset:`: the cases `agentrace eval` runs when no `--dataset` is given (`run` ignores
    /// it).
    pub dataset: Option<DatasetDef>,
}

/// Where an evaluation's cases are written.
#[derive(Clone, Debug)]
pub enum DatasetDef {
    /// `dataset: cases.jsonl`: a file (.jsonl, .csv or .yaml), relative to the workflow file.
    File(Located<String>),
    /// `dataset: [ { … }, … ]`: the cases in the workflow, each with the line it starts on.
    Inline(Vec<(u32, serde_json::Map<String, serde_json::Value>)>),
}

/// `retry: { attempts, backoff, timeout }`: model calls retried on HTTP 429, 5xx, connection
/// errors and timeouts, with exponential backoff and jitter, honouring `Retry-After`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RetryDef {
    /// Attempts in all, the first included (1 = no retry).
    pub attempts: Option<u32>,
    /// The first wait; each later one doubles (plus jitter).
    pub backoff: Option<Duration>,
    /// The time limit of each attempt.
    pub timeout: Option<Duration>,
    pub loc: Loc,
}

/// `budget: { max_tokens, max_cost_usd, max_duration }`: crossing one stops the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BudgetDef {
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_duration: Option<Duration>,
    pub loc: Loc,
}

/// `prices: { MODEL: { input, output } }`, USD per million tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceDef {
    pub input: f64,
    pub output: f64,
    pub loc: Loc,
}

/// Where model calls go: an OpenAI-compatible server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provider {
    pub base_url: Option<Located<String>>,
    /// The name of the environment variable that holds the API key (never the key itself).
    pub api_key_env: Option<Located<String>>,
    /// Extra HTTP headers sent with every model call (values may not be secrets: they are
    /// written in the file).
    pub headers: IndexMap<String, String>,
    /// Whether model calls stream (default true; `false` for servers that cannot).
    pub stream: Option<bool>,
    /// Which OpenAI API agent steps call: `chat` (Chat Completions, the default) or
    /// `responses` (the Responses API).
    pub api: Option<Located<Api>>,
    /// The most model calls in flight to this provider's server at once (over HTTP/1.1, its
    /// connections); more wait their turn. Unset: [`crate::llm::openai::default_max_connections`].
    pub max_connections: Option<Located<u32>>,
    pub loc: Loc,
}

/// The OpenAI API a provider's model calls go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Api {
    /// `/v1/chat/completions`.
    #[default]
    Chat,
    /// `/v1/responses`, stateless (`store: false`, the conversation in `input`).
    Responses,
}

impl Api {
    /// Every `api:` value, in the order the docs and errors list them.
    pub const NAMES: &[&str] = &["chat", "responses"];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Responses => "responses",
        }
    }

    /// The API a provider's `api:` value names.
    pub fn from_name(name: &str) -> Option<Api> {
        match name {
            "chat" => Some(Api::Chat),
            "responses" => Some(Api::Responses),
            _ => None,
        }
    }
}

/// An MCP tool server (`mcp_servers: {NAME: ...}`): started (stdio) or connected to (streamable
/// HTTP) at its first use in a run, its tools listed once and kept for the run.
#[derive(Clone, Debug)]
pub struct McpServerDef {
    pub name: Located<String>,
    pub transport: McpTransport,
    /// Tools of the server offered at all (none = every tool); agents may narrow further.
    pub allowed_tools: Option<Vec<Located<String>>>,
    /// Tools of the server never offered.
    pub blocked_tools: Vec<Located<String>>,
    /// How long starting, initialising and listing the tools may take (default 30 s).
    pub startup_timeout: Option<Located<Duration>>,
    /// How long one `tools/call` may take (default 60 s).
    pub call_timeout: Option<Located<Duration>>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum McpTransport {
    /// `command: [argv]` (no shell), `env:` (values may hold `${VAR}` from agentrace's own
    /// environment), `cwd:` (relative to the workflow file's directory).
    Stdio {
        command: Vec<Located<String>>,
        env: IndexMap<String, Located<String>>,
        cwd: Option<Located<String>>,
    },
    /// `url:` and `headers:` (values may hold `${VAR}` from the environment).
    Http {
        url: Located<String>,
        headers: IndexMap<String, Located<String>>,
    },
}

/// One entry of an agent's `mcp:`: a server name, or `{server, allowed_tools, blocked_tools}`
/// to narrow what that agent is offered.
#[derive(Clone, Debug)]
pub struct AgentMcp {
    pub server: Located<String>,
    pub allowed_tools: Option<Vec<Located<String>>>,
    pub blocked_tools: Vec<Located<String>>,
}

/// A function tool: offered to the model with its JSON Schema, run as a process that reads the
/// call's arguments as JSON on stdin and answers on stdout.
#[derive(Clone, Debug)]
pub struct ToolDef {
    pub name: Located<String>,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema); `{"type":"object","properties":{}}` when
    /// absent.
    pub parameters: Option<LocatedValue>,
    /// argv; elements are templates rendered when the tool is called.
    pub command: Vec<Located<String>>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct AgentDef {
    pub name: Located<String>,
    /// A template rendered into the system message.
    pub instructions: Option<Located<String>>,
    pub model: Option<Located<String>>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Sampling seed, for servers that honour it (reproducible answers).
    pub seed: Option<i64>,
    pub provider: Option<Provider>,
    /// Names of workflow `tools:` this agent may call.
    pub tools: Vec<Located<String>>,
    /// MCP servers whose tools this agent may call.
    pub mcp: Vec<AgentMcp>,
    /// Agents this one may hand the conversation to (offered as `transfer_to_<agent>` tools).
    pub handoffs: Vec<Located<String>>,
    /// Told to other agents' models when they may hand off to this one.
    pub handoff_description: Option<String>,
    /// JSON Schema the final answer must match (sent as a strict `response_format`).
    pub output_schema: Option<LocatedValue>,
    /// Model calls allowed in one agent step (across handoffs); default 10.
    pub max_turns: Option<Located<u32>>,
    pub retry: Option<RetryDef>,
    /// How hard a reasoning model thinks and whether it sums its reasoning up (`reasoning:`).
    pub reasoning: Option<ReasoningDef>,
    pub loc: Loc,
}

/// An agent's `reasoning:`: sent as the Responses API's `reasoning` object, or, on Chat
/// Completions, as `reasoning_effort` (Chat Completions has no summaries: validation refuses
/// `summary` there rather than drop it unsaid).
#[derive(Clone, Debug, PartialEq)]
pub struct ReasoningDef {
    /// One of [`REASONING_EFFORTS`].
    pub effort: Option<Located<String>>,
    /// One of [`REASONING_SUMMARIES`].
    pub summary: Option<Located<String>>,
    pub loc: Loc,
}

/// The values of `reasoning.effort` OpenAI's APIs take (`none` and `xhigh` only on the newest
/// models, `minimal` only on some: the server says which it refuses).
pub const REASONING_EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// The values of `reasoning.summary`.
pub const REASONING_SUMMARIES: &[&str] = &["auto", "concise", "detailed"];

#[derive(Clone, Debug)]
pub struct TraceDef {
    pub name: Located<String>,
    /// Added to (and overriding) the workflow's metadata for this trace.
    pub metadata: IndexMap<String, LocatedValue>,
    pub steps: Vec<Step>,
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Step {
    /// Needed to reference the step's output; unique across the file.
    pub id: Option<Located<String>>,
    /// A display name for the step's span.
    pub name: Option<Located<String>>,
    /// `if:` — a template expression; the step runs only when it is true.
    pub condition: Option<Located<String>>,
    /// Record a failure of this step and go on.
    pub continue_on_error: bool,
    pub timeout: Option<Located<Duration>>,
    /// Retries of this step's model calls (agent steps).
    pub retry: Option<RetryDef>,
    /// `expect:` on the step's output, tokens and time (agent and run steps).
    pub expect: Option<super::expect::Expect>,
    /// `scores:` of the step's output and path (agent and run steps); they never fail it.
    pub scores: Vec<super::scores::ScoreDef>,
    pub kind: StepKind,
    /// Where the step's mapping starts (its `- ` item).
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum StepKind {
    /// `agent: NAME` with `input:` — one agent run.
    Agent {
        agent: Located<String>,
        input: Located<String>,
        /// The offline model's answers for this step, one per model call (ignored by real
        /// models). A plain string is one text turn.
        mock: Option<Vec<MockTurn>>,
        /// A template naming a conversation kept in the store across runs.
        session: Option<Located<String>>,
    },
    /// `run:` — one process.
    Run {
        command: Command,
        /// Values are templates; they reach the process as variables, never through a shell.
        env: IndexMap<String, Located<String>>,
    },
    /// `span: NAME` — a custom span; its steps nest under it.
    Span {
        name: Located<String>,
        events: Vec<EventDef>,
        steps: Vec<Step>,
    },
    /// `event: NAME` — an event on the enclosing span.
    Event(EventDef),
    /// `parallel: [steps]` — branches run concurrently under one custom span.
    Parallel {
        branches: Vec<Step>,
        /// Cancel the other branches when one fails (default: let them finish).
        fail_fast: bool,
    },
    /// `foreach: LIST` — the steps run once per item, under one custom span per item.
    Foreach {
        /// A list, or a template (`"{{ vars.topics }}"`, `"{{ steps.x.output }}"`) that gives one.
        items: LocatedValue,
        /// The item's name in templates (`as:`, default `item`).
        as_name: String,
        /// Items in flight at once (default 1).
        concurrency: u32,
        steps: Vec<Step>,
    },
}

/// One scripted answer of the offline model.
#[derive(Clone, Debug, PartialEq)]
pub enum MockTurn {
    /// A final text answer (for agents with an `output_schema`, the JSON text).
    Text(Located<String>),
    /// `tool_calls: [{ name, arguments }]`: the model calls these tools in one turn.
    ToolCalls(Vec<MockToolCall>),
    /// `handoff: AGENT`: the model takes the `transfer_to_AGENT` handoff.
    Handoff(Located<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct MockToolCall {
    pub name: Located<String>,
    /// The arguments object; sent to the tool as JSON.
    pub arguments: serde_json::Value,
}

#[derive(Clone, Debug)]
pub enum Command {
    /// `run: [prog, arg, ...]` — executed directly; each element is a template that becomes
    /// exactly one argument.
    Argv(Vec<Located<String>>),
    /// `run: "script"` — run by `sh -c`; may not contain templates.
    Script(Located<String>),
}

#[derive(Clone, Debug)]
pub struct EventDef {
    pub name: Located<String>,
    /// Values may be templates where they are strings; a string that is exactly one
    /// `{{ expression }}` keeps the expression's type (a number stays a number).
    pub attributes: IndexMap<String, LocatedValue>,
    pub loc: Loc,
}

impl Step {
    /// The step's form, as the key that chose it.
    pub fn form(&self) -> &'static str {
        match self.kind {
            StepKind::Agent { .. } => "agent",
            StepKind::Run { .. } => "run",
            StepKind::Span { .. } => "span",
            StepKind::Event(_) => "event",
            StepKind::Parallel { .. } => "parallel",
            StepKind::Foreach { .. } => "foreach",
        }
    }
}

impl Workflow {
    /// Whether a step does steps at once (`parallel:` or `foreach:`).
    pub fn fans_out(&self) -> bool {
        self.all_steps().iter().any(|s| {
            matches!(
                &s.kind,
                StepKind::Parallel { .. } | StepKind::Foreach { .. }
            )
        })
    }

    /// Every step of the file in execution order, depth first.
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for step in steps {
                out.push(step);
                match &step.kind {
                    StepKind::Span { steps, .. } | StepKind::Foreach { steps, .. } => {
                        walk(steps, out)
                    }
                    StepKind::Parallel { branches, .. } => walk(branches, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        for trace in &self.traces {
            walk(&trace.steps, &mut out);
        }
        out
    }

    /// The provider an agent's model calls use: its own `provider:` as a whole, or else the
    /// workflow's.
    pub fn provider_of(&self, agent: &str) -> Option<&Provider> {
        self.agents
            .get(agent)
            .and_then(|a| a.provider.as_ref())
            .or(self.provider.as_ref())
    }

    /// The API an agent's model calls go to (its provider's `api:`, Chat Completions if unset).
    pub fn api_of(&self, agent: &str) -> Api {
        self.provider_of(agent)
            .and_then(|p| p.api.as_ref())
            .map(|a| a.value)
            .unwrap_or_default()
    }
}

/// Handoffs are offered to the model as tools named `transfer_to_<agent>`; a workflow tool may
/// not take a name of that form.
pub use crate::trace::HANDOFF_PREFIX;

/// Whether a name can be a function (tool) name for OpenAI-compatible APIs:
/// `^[A-Za-z0-9_-]{1,64}$`.
pub(crate) fn is_function_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
