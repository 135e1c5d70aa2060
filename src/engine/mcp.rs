//! MCP tool servers in a run. The servers agents use are resolved before anything runs (their
//! `${VAR}`s read from the environment, a missing one an error at its file position); each is
//! started, or connected to, at its first use and kept for the rest of the run (every trace,
//! every case of an evaluation), then shut down by [`Engine::shutdown`](super::Engine::shutdown).
//! A server that failed to start stays failed for the run rather than being started again by
//! every agent.
//!
//! Per agent run and server, an `mcp_tools` span records the tools offered; each call is a
//! `function` span with `mcp.server`, as the Agents SDK records them. A failed call goes back to
//! the model as an error result, as a workflow tool's does; a server that cannot be listed
//! fails the step.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{OnceCell, RwLock};

use super::Failure;
use super::executor::{Frame, TraceRun, error_at};
use crate::error::Error;
use crate::llm::mcp::{McpCallResult, McpClient, McpError, StdioServer};
use crate::llm::{Message, ToolCall, ToolSpec};
use crate::trace::context::TraceParent;
use crate::trace::{ErrorInfo, SpanHandle, SpanKind, Status, redact};
use crate::workflow::{AgentDef, AgentMcp, Located, McpServerDef, McpTransport, Workflow};
use indexmap::IndexMap;

/// How long a server may take to start, initialise and list its tools unless it says.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `tools/call` may take unless the server says.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a stdio server inherits from agentrace's environment besides its own `env:`: what
/// the MCP SDKs pass by default, so that API keys in the environment do not reach every
/// server.
const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ",
];

/// The span kind of a server's tool listing (`mcp_tools` once the trace model has it).
const LIST_KIND: SpanKind = SpanKind::McpTools;

/// The servers of a run, shared by every engine made from the same workflow.
#[derive(Default)]
pub(crate) struct McpServers {
    servers: HashMap<String, Server>,
}

struct Server {
    connect: Connect,
    def: McpServerDef,
    startup_timeout: Duration,
    call_timeout: Duration,
    /// Started at first use; an error is kept too, so a broken server is tried once.
    live: OnceCell<Result<Arc<Live>, McpError>>,
}

enum Connect {
    Stdio(StdioServer),
    Http {
        url: String,
        headers: Vec<(String, String)>,
    },
}

/// A started server. Calls share it; shutting down takes it.
struct Live {
    client: RwLock<Option<McpClient>>,
    protocol_version: Option<String>,
}

impl Connect {
    fn transport(&self) -> &'static str {
        match self {
            Connect::Stdio(_) => "stdio",
            Connect::Http { .. } => "streamable_http",
        }
    }
}

/// The tools an agent run is offered from its servers: the specs for the model and which
/// server answers each.
#[derive(Default)]
pub(crate) struct McpOffer {
    pub specs: Vec<ToolSpec>,
    by_tool: HashMap<String, String>,
}

impl McpOffer {
    /// The server that answers `tool`, if it is one of the offered MCP tools.
    pub fn server_of(&self, tool: &str) -> Option<&str> {
        self.by_tool.get(tool).map(String::as_str)
    }
}

/// An `env:` or `headers:` mapping filled from the environment; what came from a variable
/// (and a credential-named entry whole) is registered as a secret, a variable not set is an
/// error at the value's place in the file.
fn expand(
    wf: &Workflow,
    map: &IndexMap<String, Located<String>>,
) -> Result<IndexMap<String, String>, Error> {
    let expanded =
        crate::workflow::mcp::expand_map(map, |name| std::env::var(name).ok()).map_err(|e| {
            let loc = e.loc();
            Error::usage(format!(
                "{}:{}:{}: {e}",
                wf.path.display(),
                loc.line,
                loc.col
            ))
        })?;
    for secret in &expanded.secrets {
        redact::register(secret);
    }
    Ok(expanded.values)
}

fn resolve(wf: &Workflow, def: &McpServerDef, dir: &Path) -> Result<Connect, Error> {
    Ok(match &def.transport {
        McpTransport::Stdio { command, env, cwd } => {
            let mut argv: Vec<String> = command.iter().map(|a| a.value.clone()).collect();
            // A relative program path is relative to the workflow file, as a command step's.
            if let Some(first) = argv.first_mut()
                && first.contains('/')
                && Path::new(first.as_str()).is_relative()
            {
                *first = dir.join(first.as_str()).to_string_lossy().into_owned();
            }
            let mut vars: Vec<(String, String)> = INHERITED_ENV
                .iter()
                .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
                .collect();
            for (key, value) in expand(wf, env)? {
                vars.retain(|(k, _)| *k != key);
                vars.push((key, value));
            }
            Connect::Stdio(StdioServer {
                name: def.name.value.clone(),
                command: argv,
                env: vars,
                clear_env: true,
                cwd: Some(match cwd {
                    Some(c) => dir.join(&c.value),
                    None => dir.to_path_buf(),
                }),
            })
        }
        McpTransport::Http { url, headers } => {
            redact::register_url(&url.value);
            let pairs = expand(wf, headers)?.into_iter().collect();
            Connect::Http {
                url: url.value.clone(),
                headers: pairs,
            }
        }
    })
}

impl McpServers {
    /// The servers the agents of `used` name, resolved (nothing is started yet).
    pub fn resolve(wf: &Workflow, used: &[&str]) -> Result<McpServers, Error> {
        let dir = super::command::workflow_dir(&wf.path);
        let mut servers = HashMap::new();
        let wanted = used
            .iter()
            .filter_map(|a| wf.agents.get(*a))
            .flat_map(|a| a.mcp.iter());
        for entry in wanted {
            let name = &entry.server.value;
            if servers.contains_key(name) {
                continue;
            }
            let Some(def) = wf.mcp_servers.get(name) else {
                continue;
            };
            servers.insert(
                name.clone(),
                Server {
                    connect: resolve(wf, def, &dir)?,
                    startup_timeout: def
                        .startup_timeout
                        .as_ref()
                        .map_or(DEFAULT_STARTUP_TIMEOUT, |t| t.value),
                    call_timeout: def
                        .call_timeout
                        .as_ref()
                        .map_or(DEFAULT_CALL_TIMEOUT, |t| t.value),
                    def: def.clone(),
                    live: OnceCell::new(),
                },
            );
        }
        Ok(McpServers { servers })
    }

    /// Ends every started server's session and stops it (a stdio server's process group is
    /// killed if it does not exit when its input closes).
    pub async fn shutdown(&self) {
        let stops = self.servers.values().filter_map(|s| match s.live.get() {
            Some(Ok(live)) => Some(live.clone()),
            _ => None,
        });
        futures::future::join_all(stops.map(|live| async move {
            if let Some(client) = live.client.write().await.take() {
                client.shutdown().await;
            }
        }))
        .await;
    }
}

impl Server {
    async fn live(&self) -> Result<Arc<Live>, McpError> {
        self.live
            .get_or_init(|| async {
                let client = match &self.connect {
                    Connect::Stdio(server) => McpClient::start(server, self.startup_timeout).await,
                    Connect::Http { url, headers } => {
                        McpClient::connect(&self.def.name.value, url, headers, self.startup_timeout)
                            .await
                    }
                }?;
                Ok(Arc::new(Live {
                    protocol_version: client.protocol_version(),
                    client: RwLock::new(Some(client)),
                }))
            })
            .await
            .clone()
    }

    fn base_attributes(&self) -> Map<String, Value> {
        let mut attrs = Map::new();
        attrs.insert("mcp.server".into(), json!(self.def.name.value));
        attrs.insert("mcp.transport".into(), json!(self.connect.transport()));
        if let Connect::Http { url, .. } = &self.connect {
            attrs.insert("mcp.url".into(), json!(url));
        }
        attrs
    }
}

/// The error a failed server or call leaves on its span: the message, and the end of the
/// server's stderr.
fn mcp_error(e: &McpError) -> ErrorInfo {
    let mut data = Map::new();
    if let Some(tail) = &e.stderr_tail {
        data.insert("stderr_tail".into(), json!(tail));
    }
    error_at(e.to_string(), Value::Object(data))
}

impl TraceRun {
    /// Lists the tools of every server `def` names, under an `mcp_tools` span each, starting
    /// servers at their first use. `offered` are the agent's own tools: an MCP tool of the
    /// same name (or two servers' tools of one name) fails the step, since the model could
    /// not tell them apart.
    pub(crate) async fn mcp_offer(
        &self,
        frame: &Frame,
        agent_span: &SpanHandle,
        def: &AgentDef,
        offered: &[ToolSpec],
    ) -> Result<McpOffer, Failure> {
        let mut offer = McpOffer::default();
        for entry in &def.mcp {
            // Boxed: a server's listing (connecting, the MCP handshake) is a future of kilobytes,
            // which every agent run's future would otherwise carry and copy, with or without
            // MCP servers.
            let specs =
                Box::pin(self.list_server(frame, agent_span, def, entry, offered, &offer)).await?;
            for spec in specs {
                offer
                    .by_tool
                    .insert(spec.name.clone(), entry.server.value.clone());
                offer.specs.push(spec);
            }
        }
        if !offer.specs.is_empty() {
            let names: Vec<&str> = offered
                .iter()
                .chain(offer.specs.iter())
                .map(|s| s.name.as_str())
                .collect();
            agent_span.set_attribute("tools", json!(names));
        }
        Ok(offer)
    }

    async fn list_server(
        &self,
        frame: &Frame,
        agent_span: &SpanHandle,
        def: &AgentDef,
        entry: &AgentMcp,
        offered: &[ToolSpec],
        so_far: &McpOffer,
    ) -> Result<Vec<ToolSpec>, Failure> {
        let name = &entry.server.value;
        let Some(server) = self.engine.mcp.servers.get(name) else {
            return Err(Failure::error(error_at(
                format!("unknown MCP server `{name}`"),
                Value::Null,
            )));
        };
        let span = self.rec.span(
            Some(agent_span.id()),
            LIST_KIND,
            name.clone(),
            server.base_attributes(),
        );
        let cached = server.live.initialized();
        let started = tokio::select! {
            r = server.live() => r,
            () = frame.scope.cancelled() => {
                span.end(Status::Cancelled, None);
                return Err(frame.scope.failure());
            }
        };
        let fail = |span: SpanHandle, error: ErrorInfo| {
            span.end(Status::Error, Some(error.clone()));
            Err(Failure::error(error))
        };
        let live = match started {
            Ok(live) => live,
            Err(e) => {
                if let Some(tail) = &e.stderr_tail {
                    span.set_attribute("stderr_tail", json!(tail));
                }
                return fail(span, mcp_error(&e));
            }
        };
        span.set_attribute("cached", json!(cached));
        if let Some(v) = &live.protocol_version {
            span.set_attribute("mcp.protocol_version", json!(v));
        }
        let guard = live.client.read().await;
        let Some(client) = guard.as_ref() else {
            return fail(
                span,
                error_at(format!("MCP server `{name}` was shut down"), Value::Null),
            );
        };
        let mut specs = Vec::new();
        for tool in client.tools() {
            let keep = entry.offers(&server.def, &tool.name);
            if !keep {
                continue;
            }
            let clash = if offered.iter().any(|s| s.name == tool.name) {
                Some(format!("a tool agent `{}` already has", def.name.value))
            } else {
                so_far
                    .server_of(&tool.name)
                    .map(|other| format!("a tool of MCP server `{other}`"))
            };
            if let Some(other) = clash {
                return fail(
                    span,
                    error_at(
                        format!(
                            "MCP server `{name}` offers a tool `{}`, the name of {other}; \
                             leave one out with `allowed_tools:` or `blocked_tools:`",
                            tool.name
                        ),
                        json!({ "tool": tool.name }),
                    ),
                );
            }
            specs.push(ToolSpec {
                name: tool.name.clone(),
                description: tool.description.clone(),
                parameters: tool.input_schema.clone(),
            });
        }
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        span.set_attribute("tools", json!(names));
        span.end(Status::Ok, None);
        Ok(specs)
    }

    /// One call of an MCP tool as a `function` span under `agent_span`; the tool message to
    /// send back (an error result when the call failed in any way short of cancellation).
    pub(crate) async fn call_mcp_tool(
        &self,
        frame: &Frame,
        agent_span: &SpanHandle,
        server_name: &str,
        call: &ToolCall,
    ) -> Result<Message, Failure> {
        let no_content = self.engine.opts.no_content;
        let tool = &call.function.name;
        let server = self.engine.mcp.servers.get(server_name);
        let mut attrs = server.map(Server::base_attributes).unwrap_or_default();
        attrs.insert("tool".into(), json!(tool));
        attrs.insert("call_id".into(), json!(call.id));
        if !no_content {
            attrs.insert("input".into(), json!(call.function.arguments));
        }
        let span = self.rec.span(
            Some(agent_span.id()),
            SpanKind::Function,
            tool.clone(),
            attrs,
        );
        let reply = |content: String| Message::Tool {
            tool_call_id: call.id.clone(),
            content,
        };
        let outcome = tokio::select! {
            r = self.mcp_result(&span, server, call) => r,
            () = frame.scope.cancelled() => {
                span.end(Status::Cancelled, None);
                return Err(frame.scope.failure());
            }
        };
        match outcome {
            Ok(result) => {
                span.set_attribute("mcp.is_error", json!(result.is_error));
                let text = match (&result.structured, result.text.is_empty()) {
                    (Some(data), true) => data.to_string(),
                    _ => result.text.clone(),
                };
                if !no_content && let Some(data) = &result.structured {
                    span.set_attribute("structured_output", data.clone());
                }
                if result.is_error {
                    let content = format!("Error: {text}");
                    if !no_content {
                        span.set_attribute("output", json!(content));
                    }
                    let first = text.lines().next().unwrap_or_default();
                    span.end(
                        Status::Error,
                        Some(error_at(
                            format!("MCP tool `{tool}` of server `{server_name}` answered with an error: {first}"),
                            Value::Null,
                        )),
                    );
                    Ok(reply(content))
                } else {
                    if !no_content {
                        span.set_attribute("output", json!(text));
                    }
                    span.end(Status::Ok, None);
                    Ok(reply(text))
                }
            }
            Err(error) => {
                let content = format!("Error: {}", error.message);
                if !no_content {
                    span.set_attribute("output", json!(content));
                    if let Some(tail) = error.data.get("stderr_tail") {
                        span.set_attribute("stderr_tail", tail.clone());
                    }
                }
                span.end(Status::Error, Some(error));
                Ok(reply(content))
            }
        }
    }

    async fn mcp_result(
        &self,
        span: &SpanHandle,
        server: Option<&Server>,
        call: &ToolCall,
    ) -> Result<McpCallResult, ErrorInfo> {
        let tool = &call.function.name;
        let Some(server) = server else {
            return Err(error_at(format!("unknown tool `{tool}`"), Value::Null));
        };
        let raw = call.function.arguments.trim();
        let arguments = if raw.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => map,
                Ok(other) => {
                    return Err(error_at(
                        format!(
                            "invalid arguments for tool `{tool}`: a JSON object is needed, not {}",
                            crate::trace::json_kind(&other)
                        ),
                        Value::Null,
                    ));
                }
                Err(e) => {
                    return Err(error_at(
                        format!("invalid arguments for tool `{tool}`: not valid JSON: {e}"),
                        Value::Null,
                    ));
                }
            }
        };
        let live = server.live().await.map_err(|e| mcp_error(&e))?;
        if let Some(v) = &live.protocol_version {
            span.set_attribute("mcp.protocol_version", json!(v));
        }
        let guard = live.client.read().await;
        let Some(client) = guard.as_ref() else {
            return Err(error_at(
                format!("MCP server `{}` was shut down", server.def.name.value),
                Value::Null,
            ));
        };
        let traceparent = TraceParent::header(self.rec.trace().trace_id, span.id());
        client
            .call(tool, arguments, Some(&traceparent), server.call_timeout)
            .await
            .map_err(|e| mcp_error(&e))
    }
}
