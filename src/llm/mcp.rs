//! MCP tool servers (issue 18, first part): a client for one server, over stdio or streamable
//! HTTP, through the official Rust SDK (`rmcp`), not hand-written JSON-RPC. It starts the
//! server (or connects to it), initialises,
//! lists its tools once, calls them with a timeout and shuts the server down; what a model
//! gets back from a call is its text and structured content, other content types as a short
//! placeholder. The workflow keys (`mcp_servers:`, an agent's `mcp:`) and the tracing are to
//! come on top of it.

use std::path::PathBuf;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ContentBlock};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Map, Value};

/// How to start a stdio server: its argv (no shell), extra environment, working directory.
#[derive(Clone, Debug, Default)]
pub struct StdioServer {
    pub name: String,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
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

/// Why a server could not be used: the server's name and what went wrong, one line.
#[derive(Debug, thiserror::Error)]
#[error("MCP server `{server}`: {message}")]
pub struct McpError {
    pub server: String,
    pub message: String,
}

/// A running server, initialised, with its tools listed.
pub struct McpClient {
    name: String,
    service: RunningService<RoleClient, ()>,
    tools: Vec<McpTool>,
}

impl McpClient {
    /// Starts `server`, initialises the session and lists its tools, within `timeout`.
    pub async fn start(server: &StdioServer, timeout: Duration) -> Result<McpClient, McpError> {
        let fail = |message: String| McpError {
            server: server.name.clone(),
            message,
        };
        let Some((program, args)) = server.command.split_first() else {
            return Err(fail("no command to start".into()));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args).envs(server.env.iter().map(|(k, v)| (k, v)));
        cmd.kill_on_drop(true);
        if let Some(dir) = &server.cwd {
            cmd.current_dir(dir);
        }
        let transport = TokioChildProcess::new(cmd)
            .map_err(|e| fail(format!("cannot start `{program}`: {e}")))?;
        McpClient::initialise(&server.name, transport, timeout).await
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
        })
    }

    /// The tools the server listed when it started (the list is kept for the run).
    pub fn tools(&self) -> &[McpTool] {
        &self.tools
    }

    /// Calls `tool` with `arguments` (a JSON object) through `tools/call`, within `timeout`.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<McpCallResult, McpError> {
        let fail = |message: String| McpError {
            server: self.name.clone(),
            message,
        };
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(arguments);
        let result = tokio::time::timeout(timeout, self.service.call_tool(params))
            .await
            .map_err(|_| fail(format!("`{tool}` did not answer within {timeout:?}")))?
            .map_err(|e| fail(format!("`{tool}` failed: {e}")))?;
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
    pub async fn shutdown(self) {
        let _ = self.service.cancel().await;
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
