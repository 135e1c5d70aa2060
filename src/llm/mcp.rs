//! MCP tool servers: a client for one server, over stdio or streamable HTTP, through the
//! official Rust SDK (`rmcp`), not hand-written JSON-RPC. It starts the server (or connects to
//! it), initialises, lists its tools once, calls them with a timeout and the caller's W3C trace
//! context in `params._meta`, and shuts the server down; what a model gets back from a call is
//! its text and structured content, other content types as a short placeholder. A stdio server
//! runs in its own process group, killed whole when the client goes (or at once, for a process
//! about to exit, by [`kill_all_now`]), and its stderr is kept as a tail for error messages.
//! The engine (`engine/mcp.rs`) decides when servers start and how calls are traced.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process_wrap::tokio::{CommandWrap, ProcessGroup};
use rmcp::model::{CallToolRequestParams, ContentBlock, MetaObject, RequestMetaObject};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// How to start a stdio server: its argv (no shell), extra environment, working directory.
#[derive(Clone, Debug, Default)]
pub struct StdioServer {
    pub name: String,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Start from an empty environment (then `env` is all the server gets) instead of
    /// agentrace's own.
    pub clear_env: bool,
    pub cwd: Option<PathBuf>,
}

/// The last lines a stdio server wrote to stderr (at most [`STDERR_TAIL_BYTES`]).
#[derive(Clone, Debug, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<String>>>);

/// How much of a server's stderr is kept for error messages.
pub const STDERR_TAIL_BYTES: usize = 2048;

impl StderrTail {
    async fn collect(self, stderr: tokio::process::ChildStderr) {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            kept.push_back(line);
            let mut size: usize = kept.iter().map(|l| l.len() + 1).sum();
            while size > STDERR_TAIL_BYTES && kept.len() > 1 {
                size -= kept.pop_front().map_or(0, |l| l.len() + 1);
            }
        }
    }

    /// The kept lines, joined (empty when the server wrote nothing).
    pub fn text(&self) -> String {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A tool a server offers, with its JSON Schema for the model.
#[derive(Clone, Debug, PartialEq)]
pub struct McpTool {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// What a call gave back: the text for the model, the structured content if any, and whether
/// the server marked it an error (a tool error goes back to the model as an error result).
#[derive(Clone, Debug, PartialEq)]
pub struct McpCallResult {
    pub text: String,
    pub structured: Option<Value>,
    pub is_error: bool,
}

/// Why a server could not be used: the server's name and what went wrong, one line, with the
/// end of a stdio server's stderr when it wrote any.
#[derive(Clone, Debug, thiserror::Error)]
#[error("MCP server `{server}`: {message}")]
pub struct McpError {
    pub server: String,
    pub message: String,
    pub stderr_tail: Option<String>,
}

/// A running server, initialised, with its tools listed.
pub struct McpClient {
    name: String,
    service: RunningService<RoleClient, ()>,
    tools: Vec<McpTool>,
    stderr: Option<StderrTail>,
    /// A stdio server's process group.
    group: Option<u32>,
}

impl McpClient {
    /// Starts `server`, initialises the session and lists its tools, within `timeout`. The
    /// server runs in its own process group (killed whole when the client goes, so a server
    /// started through `npx` or a shell script leaves nothing behind), with its stderr kept as
    /// a tail for error messages instead of reaching the terminal.
    pub async fn start(server: &StdioServer, timeout: Duration) -> Result<McpClient, McpError> {
        let fail = |message: String| McpError {
            server: server.name.clone(),
            message,
            stderr_tail: None,
        };
        let Some((program, args)) = server.command.split_first() else {
            return Err(fail("no command to start".into()));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).envs(server.env.iter().map(|(k, v)| (k, v)));
        if server.clear_env {
            cmd.env_clear();
            cmd.envs(server.env.iter().map(|(k, v)| (k, v)));
        }
        cmd.kill_on_drop(true);
        if let Some(dir) = &server.cwd {
            cmd.current_dir(dir);
        }
        let mut wrapped = CommandWrap::from(cmd);
        wrapped.wrap(ProcessGroup::leader());
        let (transport, stderr) = TokioChildProcess::builder(wrapped)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start `{program}`: {e}")))?;
        // Killed with everything it started if starting is given up half way (a run's
        // timeout, Ctrl-C), not only once it has become a client.
        let mut guard = GroupGuard(transport.id());
        if let Some(pid) = guard.0 {
            live_groups().push(pid);
        }
        let tail = StderrTail::default();
        if let Some(stderr) = stderr {
            tokio::spawn(tail.clone().collect(stderr));
        }
        let mut client = McpClient::initialise(&server.name, transport, timeout)
            .await
            .map_err(|mut e| {
                let lines = tail.text();
                if !lines.is_empty() {
                    e.stderr_tail = Some(lines);
                }
                e
            })?;
        client.stderr = Some(tail);
        client.group = guard.0.take();
        Ok(client)
    }

    /// Connects to a streamable HTTP server at `url` (sending `headers` with every request),
    /// initialises the session and lists its tools, within `timeout`.
    pub async fn connect(
        name: &str,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<McpClient, McpError> {
        let fail = |message: String| McpError {
            server: name.to_string(),
            message,
            stderr_tail: None,
        };
        let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
        for (key, value) in headers {
            let header = reqwest::header::HeaderName::try_from(key.as_str())
                .map_err(|e| fail(format!("header `{key}`: {e}")))?;
            let value = reqwest::header::HeaderValue::try_from(value.as_str())
                .map_err(|_| fail(format!("header `{key}`: not a valid header value")))?;
            config.custom_headers.insert(header, value);
        }
        // The SDK's HTTP client is reqwest's default one, which needs the process's TLS
        // crypto provider (the model client's) installed first.
        super::openai::install_crypto_provider();
        let transport = StreamableHttpClientTransport::from_config(config);
        McpClient::initialise(name, transport, timeout).await
    }

    /// Initialises a session over `transport` and lists the server's tools, within `timeout`.
    async fn initialise<T, E, A>(
        name: &str,
        transport: T,
        timeout: Duration,
    ) -> Result<McpClient, McpError>
    where
        T: IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let fail = |message: String| McpError {
            server: name.to_string(),
            message,
            stderr_tail: None,
        };
        let started = async {
            let service = ().serve(transport).await.map_err(|e| e.to_string())?;
            let tools = service
                .list_all_tools()
                .await
                .map_err(|e| format!("tools/list failed: {e}"))?;
            Ok::<_, String>((service, tools))
        };
        let (service, tools) = tokio::time::timeout(timeout, started)
            .await
            .map_err(|_| fail(format!("did not initialise within {timeout:?}")))?
            .map_err(fail)?;
        let tools = tools
            .into_iter()
            .map(|t| McpTool {
                name: t.name.to_string(),
                description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                input_schema: Value::Object((*t.input_schema).clone()),
            })
            .collect();
        Ok(McpClient {
            name: name.to_string(),
            service,
            tools,
            stderr: None,
            group: None,
        })
    }

    /// The tools the server listed when it started (the list is kept for the run).
    pub fn tools(&self) -> &[McpTool] {
        &self.tools
    }

    /// The protocol revision the server agreed to, e.g. `2025-06-18`.
    pub fn protocol_version(&self) -> Option<String> {
        self.service
            .peer_info()
            .map(|info| info.protocol_version.as_str().to_string())
    }

    /// What a stdio server has written to stderr lately (empty for HTTP servers).
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .as_ref()
            .map(StderrTail::text)
            .unwrap_or_default()
    }

    /// Calls `tool` with `arguments` (a JSON object) through `tools/call`, within `timeout`.
    /// `traceparent` (W3C trace context) travels in the request's `params._meta`, so that a
    /// server instrumented with OpenTelemetry records its work under the caller's span.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        traceparent: Option<&str>,
        timeout: Duration,
    ) -> Result<McpCallResult, McpError> {
        let fail = |message: String| {
            let tail = self.stderr_tail();
            McpError {
                server: self.name.clone(),
                message,
                stderr_tail: (!tail.is_empty()).then_some(tail),
            }
        };
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(arguments);
        if let Some(header) = traceparent {
            let mut meta = MetaObject::new();
            meta.set_traceparent(header);
            params.meta = Some(RequestMetaObject(meta));
        }
        let result = tokio::time::timeout(timeout, self.service.call_tool(params))
            .await
            .map_err(|_| fail(format!("`{tool}` did not answer within {timeout:?}")))?
            .map_err(|e| match e {
                rmcp::ServiceError::TransportClosed => fail(format!(
                    "`{tool}` failed: the server closed the connection (did it exit?)"
                )),
                e => fail(format!("`{tool}` failed: {e}")),
            })?;
        let text = result
            .content
            .iter()
            .map(content_text)
            .collect::<Vec<_>>()
            .join("\n");
        Ok(McpCallResult {
            text,
            structured: result.structured_content,
            is_error: result.is_error.unwrap_or(false),
        })
    }

    /// Ends the session and stops the server (the process is killed if it lingers).
    pub async fn shutdown(mut self) {
        let group = self.group.take();
        let _ = self.service.close().await;
        // Whatever the server started on its own goes with it.
        kill_group(group);
        forget_group(group);
    }
}

/// The process groups of the stdio servers running now, for [`kill_all_now`].
fn live_groups() -> std::sync::MutexGuard<'static, Vec<u32>> {
    static GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    GROUPS.lock().unwrap_or_else(|p| p.into_inner())
}

fn forget_group(group: Option<u32>) {
    if let Some(pid) = group {
        live_groups().retain(|g| *g != pid);
    }
}

fn kill_group(group: Option<u32>) {
    if let Some(pid) = group.and_then(|g| i32::try_from(g).ok()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Kills every stdio server still running, at once: for a process about to exit without
/// unwinding (a second Ctrl-C), where no destructor will run.
pub fn kill_all_now() {
    let groups: Vec<u32> = std::mem::take(&mut *live_groups());
    for pid in groups {
        kill_group(Some(pid));
    }
}

/// A stdio server's process group, killed when the guard goes unless taken.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
        forget_group(self.0);
    }
}

impl Drop for McpClient {
    fn drop(&mut self) {
        // The SDK kills the server's process from a task, which a runtime shutting down never
        // runs; the group is killed here, now.
        kill_group(self.group);
        forget_group(self.group);
    }
}

/// A content block as the model reads it: text as it is, anything else as a placeholder.
fn content_text(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::Image(i) => format!("[image: {}]", i.mime_type),
        ContentBlock::Audio(a) => format!("[audio: {}]", a.mime_type),
        ContentBlock::Resource(_) => "[embedded resource]".to_string(),
        ContentBlock::ResourceLink(r) => format!("[resource link: {}]", r.uri),
        _ => "[content]".to_string(),
    }
}
