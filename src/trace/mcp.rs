//! The attributes of MCP spans, named once: the engine records them (see docs/contract.md), and
//! the tree, the serve UI and every export and ingest read them, so a key spelled here is the
//! key all of them agree on.
//!
//! An `mcp_tools` span is one server's tool list for one agent run; a tool call that went to an
//! MCP server is an ordinary `function` span that also carries [`SERVER`] (the attribute that
//! tells it from a workflow tool).

use serde_json::Value;

use super::model::{Span, SpanKind};

/// The server's name in the workflow (`mcp_servers:` key), on both kinds of MCP span.
pub const SERVER: &str = "mcp.server";
/// How agentrace reached the server: [`STDIO`] or [`STREAMABLE_HTTP`].
pub const TRANSPORT: &str = "mcp.transport";
/// An HTTP server's endpoint, credentials stripped.
pub const URL: &str = "mcp.url";
/// The protocol revision the server and agentrace agreed on (`2025-06-18`), when known.
pub const PROTOCOL_VERSION: &str = "mcp.protocol_version";
/// The session id an HTTP server gave (`Mcp-Session-Id`), when it gave one.
pub const SESSION_ID: &str = "mcp.session_id";
/// A call's result said `isError: true`.
pub const IS_ERROR: &str = "mcp.is_error";
/// A call result's `structuredContent`, as JSON.
pub const STRUCTURED_OUTPUT: &str = "structured_output";
/// An `mcp_tools` span whose list came from the run's cache, not its own `tools/list`.
pub const CACHED: &str = "cached";
/// The tool names an `mcp_tools` span offered (a JSON array of strings).
pub const TOOLS: &str = "tools";

/// The keys of a call's `mcp_data` in the Agents SDK's format besides the SDK's own `server`,
/// and the attributes they carry: the SDK's dict is free-form, so the export writes agentrace's
/// facts about the call there and the ingest reads them back.
pub const SDK_MCP_DATA: [(&str, &str); 5] = [
    ("transport", TRANSPORT),
    ("protocol_version", PROTOCOL_VERSION),
    ("session_id", SESSION_ID),
    ("is_error", IS_ERROR),
    ("structured_output", STRUCTURED_OUTPUT),
];

/// [`TRANSPORT`] of a server started as a child process.
pub const STDIO: &str = "stdio";
/// [`TRANSPORT`] of a server reached over streamable HTTP.
pub const STREAMABLE_HTTP: &str = "streamable_http";

impl Span {
    /// The MCP server of an `mcp_tools` span (its name when the attribute is missing) or of a
    /// tool call that went to one; `None` for everything else.
    pub fn mcp_server(&self) -> Option<&str> {
        let server = self.attributes.get(SERVER).and_then(Value::as_str);
        match self.kind {
            SpanKind::McpTools => Some(server.unwrap_or(&self.name)),
            SpanKind::Function => server,
            _ => None,
        }
    }

    /// The tool names an `mcp_tools` span recorded.
    pub fn mcp_tool_names(&self) -> Vec<&str> {
        self.attributes
            .get(TOOLS)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }

    /// Whether an `mcp_tools` span's list came from the run's cache.
    pub fn mcp_cached(&self) -> bool {
        self.attributes.get(CACHED) == Some(&Value::Bool(true))
    }
}
