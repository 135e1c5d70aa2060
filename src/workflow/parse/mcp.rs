//! Reading the top-level `mcp_servers:` (a stdio server's argv, environment and directory, or a
//! streamable HTTP server's URL and headers; tool filters and timeouts) and an agent's `mcp:`
//! entries. Everything one value can get wrong is reported here, at the value: a server that
//! is neither or both kinds, keys of the other kind, a `command:` written as a shell string,
//! and malformed `${VAR}` references, which would otherwise only fail once the server starts.

use indexmap::IndexMap;

use super::super::diagnostic::Loc;
use super::super::mcp::{REF_HELP, pieces};
use super::super::node::{Node, NodeKind};
use super::super::schema::{AgentMcp, Located, McpServerDef, McpTransport, is_function_name};
use super::{Fields, Parser};

const SERVER_KEYS: &[&str] = &[
    "command",
    "env",
    "cwd",
    "url",
    "headers",
    "allowed_tools",
    "blocked_tools",
    "startup_timeout",
    "call_timeout",
];
const ENTRY_KEYS: &[&str] = &["server", "allowed_tools", "blocked_tools"];
/// The one-line form of a server, for help lines.
const NEEDS_TRANSPORT_HELP: &str =
    "stdio: `command: [prog, arg]`; streamable HTTP: `url: https://host/mcp`";

impl Parser<'_> {
    /// Top-level `mcp_servers:` — name → server.
    pub(super) fn mcp_servers(&mut self, top: &Fields) -> IndexMap<String, McpServerDef> {
        let mut out = IndexMap::new();
        let entries = self.named_map(top, "mcp_servers", "a mapping of names to MCP servers");
        for (name, def) in entries {
            self.mcp_server_name(name);
            let server = match &def.kind {
                NodeKind::Null => {
                    self.needs_transport(name);
                    None
                }
                _ => {
                    let what = format!("MCP server `{}`", name.value);
                    let Some(f) = self.fields(def, SERVER_KEYS, &format!("in {what}"), &what)
                    else {
                        continue;
                    };
                    self.mcp_server(name, def.loc, &f)
                }
            };
            // A broken server keeps its name, so agents that use it get no follow-on error.
            let server = server.unwrap_or_else(|| McpServerDef {
                name: name.clone(),
                transport: McpTransport::Stdio {
                    command: Vec::new(),
                    env: IndexMap::new(),
                    cwd: None,
                },
                allowed_tools: None,
                blocked_tools: Vec::new(),
                startup_timeout: None,
                call_timeout: None,
                loc: name.loc,
            });
            out.insert(name.value.clone(), server);
        }
        out
    }

    fn mcp_server(&mut self, name: &Located<String>, loc: Loc, f: &Fields) -> Option<McpServerDef> {
        let command = f.get("command");
        let url = f.get("url");
        if command.is_some() == url.is_some() {
            // The kind is unknown, but the values' references can still be checked.
            self.env_map(f, "env");
            self.env_map(f, "headers");
        }
        let transport = match (command, url) {
            (None, None) => {
                self.needs_transport(name);
                None
            }
            (Some((ck, _)), Some((uk, _))) => {
                let second = if ck.loc > uk.loc { ck } else { uk };
                let d = self.error(
                    second.loc,
                    format!("MCP server `{}` has both `command:` and `url:`", name.value),
                );
                d.width = second.value.len();
                self.help("a server is either started (`command:`, stdio) or connected to (`url:`, streamable HTTP); keep one");
                None
            }
            (Some((_, node)), None) => {
                self.only_with(f, "headers", "url", "command", name);
                let command = self.mcp_command(node);
                let env = self.env_map(f, "env");
                let cwd = self.opt_text(f, "cwd").and_then(|cwd| {
                    if cwd.value.is_empty() {
                        self.error(cwd.loc, "`cwd:` is empty");
                        self.help(
                            "leave it out to start the server in the workflow file's directory",
                        );
                        None
                    } else {
                        Some(cwd)
                    }
                });
                Some(McpTransport::Stdio { command, env, cwd })
            }
            (None, Some((_, node))) => {
                self.only_with(f, "env", "command", "url", name);
                self.only_with(f, "cwd", "command", "url", name);
                let url = self.mcp_url(node);
                let headers = self.env_map(f, "headers");
                url.map(|url| McpTransport::Http { url, headers })
            }
        };
        let allowed_tools = self.tool_filter(f, "allowed_tools");
        let blocked_tools = self.names(f, "blocked_tools", "tool");
        let startup_timeout = f
            .value("startup_timeout")
            .and_then(|n| self.located_duration("startup_timeout", n));
        let call_timeout = f
            .value("call_timeout")
            .and_then(|n| self.located_duration("call_timeout", n));
        Some(McpServerDef {
            name: name.clone(),
            transport: transport?,
            allowed_tools,
            blocked_tools,
            startup_timeout,
            call_timeout,
            loc,
        })
    }

    fn mcp_server_name(&mut self, name: &Located<String>) {
        if !is_function_name(&name.value) {
            let d = self.error(
                name.loc,
                format!(
                    "MCP server name `{}` must be 1 to 64 letters, digits, `_` or `-`",
                    name.value
                ),
            );
            d.width = name.value.chars().count().max(1);
            self.help("agents name the server in `mcp:`, and spans and errors show it");
        }
    }

    fn needs_transport(&mut self, name: &Located<String>) {
        let d = self.error(
            name.loc,
            format!(
                "MCP server `{}` needs `command:` (a stdio server) or `url:` (a streamable HTTP server)",
                name.value
            ),
        );
        d.width = name.value.chars().count().max(1);
        self.help(NEEDS_TRANSPORT_HELP);
    }

    /// `key:` belongs to servers with `needs:`; this one has `has:`.
    fn only_with(&mut self, f: &Fields, key: &str, needs: &str, has: &str, name: &Located<String>) {
        let Some((k, _)) = f.get(key) else {
            return;
        };
        let kind = if needs == "command" {
            "stdio servers"
        } else {
            "HTTP servers"
        };
        let d = self.error(
            k.loc,
            format!(
                "`{key}:` is only for {kind} (with `{needs}:`), and MCP server `{}` has `{has}:`",
                name.value
            ),
        );
        d.width = key.len();
        self.help(if key == "headers" {
            "a stdio server gets values through `env:`"
        } else {
            "an HTTP server gets values through `headers:`"
        });
    }

    /// A server's `command:` — a non-empty argv list (no shell form).
    fn mcp_command(&mut self, node: &Node) -> Vec<Located<String>> {
        match &node.kind {
            NodeKind::Seq(items) => self.argv("command", node, items),
            NodeKind::Str(text) => {
                self.error(
                    node.loc,
                    "`command` must be a list (the program and its arguments), found a string",
                );
                self.help(format!(
                    "MCP servers start without a shell; write `command: {}`",
                    argv_form(text)
                ));
                Vec::new()
            }
            _ => {
                self.wrong_type("command", "a command list `[prog, arg]`", node);
                Vec::new()
            }
        }
    }

    /// A server's `url:` — an absolute `http://` or `https://` URL with a host.
    fn mcp_url(&mut self, node: &Node) -> Option<Located<String>> {
        let url = self.text("url", node)?;
        let parsed = reqwest::Url::parse(&url.value).ok();
        let fine = parsed.as_ref().is_some_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !fine {
            self.error(
                url.loc,
                format!(
                    "`url` must be an http:// or https:// URL, found `{}`",
                    url.value
                ),
            );
            self.help(
                "the server's streamable HTTP endpoint, as in `url: http://127.0.0.1:3001/mcp`",
            );
            return None;
        }
        Some(url)
    }

    /// `env:` or `headers:` — a mapping of strings whose names fit and whose `${VAR}`
    /// references are well formed.
    fn env_map(&mut self, f: &Fields, key: &str) -> IndexMap<String, Located<String>> {
        if let Some(NodeKind::Map(entries)) = f.value(key).map(|n| &n.kind) {
            for (k, _) in entries {
                let fits = if key == "env" {
                    !k.value.is_empty() && !k.value.contains(['=', '\0'])
                } else {
                    // Header names are HTTP tokens; anything else would only fail at the
                    // first request.
                    !k.value.is_empty()
                        && k.value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
                };
                if !fits {
                    let what = if key == "env" {
                        "an environment variable"
                    } else {
                        "an HTTP header"
                    };
                    let d = self.error(
                        k.loc,
                        format!("`{}` in `{key}:` is not a valid name of {what}", k.value),
                    );
                    d.width = k.value.chars().count().max(1);
                }
            }
        }
        let map = self.text_map(f, key);
        for (name, value) in &map {
            if let Err(err) = pieces(&value.value) {
                self.error(value.loc, format!("`{key}.{name}` {err}"));
                self.help(REF_HELP);
            }
        }
        map
    }

    /// `allowed_tools:` — absent (every tool) or a non-empty list of tool names.
    fn tool_filter(&mut self, f: &Fields, key: &str) -> Option<Vec<Located<String>>> {
        let node = f.value(key)?;
        if matches!(node.kind, NodeKind::Null) {
            return None;
        }
        let names = self.names(f, key, "tool");
        if matches!(&node.kind, NodeKind::Seq(items) if items.is_empty()) {
            self.error(
                node.loc,
                format!("`{key}:` is empty, so no tool would be offered"),
            );
            self.help("leave `allowed_tools:` out to offer every tool of the server");
            return None;
        }
        matches!(node.kind, NodeKind::Seq(_)).then_some(names)
    }

    /// An agent's `mcp:` — a list of server names or `{ server, allowed_tools, blocked_tools }`.
    pub(super) fn agent_mcp(&mut self, f: &Fields) -> Vec<AgentMcp> {
        let mut out = Vec::new();
        let Some(node) = f.value("mcp") else {
            return out;
        };
        let items = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => return out,
            _ => {
                self.wrong_type("mcp", "a list of MCP server names", node);
                if let Some(text) = node.scalar_text(self.source) {
                    self.help(format!("write `mcp: [{text}]`"));
                }
                return out;
            }
        };
        for item in items {
            if let NodeKind::Map(_) = item.kind {
                let Some(f) =
                    self.fields(item, ENTRY_KEYS, "in an `mcp:` entry", "an `mcp:` entry")
                else {
                    continue;
                };
                let server = match f.value("server") {
                    Some(n) => self.text("server", n),
                    None => {
                        self.error(item.loc, "an `mcp:` entry needs `server:`");
                        self.help("name one of the top-level `mcp_servers:`");
                        None
                    }
                };
                let allowed_tools = self.tool_filter(&f, "allowed_tools");
                let blocked_tools = self.names(&f, "blocked_tools", "tool");
                if let Some(server) = server.filter(|s| !s.value.is_empty()) {
                    out.push(AgentMcp {
                        server,
                        allowed_tools,
                        blocked_tools,
                    });
                }
                continue;
            }
            match self.name_item(item) {
                Ok(server) => out.push(AgentMcp {
                    server,
                    allowed_tools: None,
                    blocked_tools: Vec::new(),
                }),
                Err(found) => {
                    self.error(
                        item.loc,
                        format!(
                            "each `mcp:` item must be an MCP server name or `{{ server, allowed_tools, blocked_tools }}`, found {found}"
                        ),
                    );
                }
            }
        }
        out
    }
}

/// A shell-like command string as the list `command:` takes, for a help line: split at
/// whitespace, each word quoted unless it is plain.
fn argv_form(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            let plain = w
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=+".contains(c))
                && w.chars().next().is_some_and(|c| c != '-' || w.len() > 1);
            if plain {
                w.to_string()
            } else {
                format!("{:?}", w)
            }
        })
        .collect();
    if words.is_empty() {
        "[prog, arg]".to_string()
    } else {
        format!("[{}]", words.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::parse_str;
    use crate::workflow::{Diagnostic, McpTransport, Workflow};

    /// Every problem the parser finds, as `FILE:LINE:COL: message` and the help line.
    fn problems(src: &str) -> Vec<(String, Option<String>)> {
        let (_, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        diags
            .iter()
            .map(|d| (d.headline(), d.help.clone()))
            .collect()
    }

    fn headlines(src: &str) -> Vec<String> {
        problems(src).into_iter().map(|(h, _)| h).collect()
    }

    fn parsed(src: &str) -> Workflow {
        let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        assert_eq!(diags, Vec::<Diagnostic>::new(), "unexpected problems");
        wf.expect("a workflow")
    }

    const STEPS: &str = "steps:\n  - run: [echo]\n";

    #[test]
    fn servers_of_both_kinds_and_agent_entries_parse_into_the_model() {
        let wf = parsed(&format!(
            r#"name: t
mcp_servers:
  time:
    command: [uvx, mcp-server-time, "--local-timezone=UTC"]
    env: {{ TZ: UTC, TOKEN: "${{TIME_TOKEN}}" }}
    cwd: tools
    allowed_tools: [get_current_time]
    startup_timeout: 10s
  web:
    url: https://mcp.example.com/mcp
    headers: {{ Authorization: "Bearer ${{WEB_TOKEN}}" }}
    blocked_tools: [delete]
    call_timeout: 2m
agents:
  a:
    mcp: [time, {{ server: web, allowed_tools: [search], blocked_tools: [fetch] }}]
{STEPS}"#
        ));
        let time = &wf.mcp_servers["time"];
        let McpTransport::Stdio { command, env, cwd } = &time.transport else {
            panic!("stdio expected")
        };
        let argv: Vec<&str> = command.iter().map(|a| a.as_str()).collect();
        assert_eq!(argv, ["uvx", "mcp-server-time", "--local-timezone=UTC"]);
        assert_eq!(env["TOKEN"].value, "${TIME_TOKEN}");
        assert_eq!((env["TOKEN"].loc.line, env["TOKEN"].loc.col), (5, 28));
        assert_eq!(cwd.as_ref().map(|c| c.as_str()), Some("tools"));
        assert_eq!(time.allowed_tools.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            time.startup_timeout.as_ref().map(|t| t.value),
            Some(Duration::from_secs(10))
        );
        assert_eq!(time.call_timeout, None);
        assert_eq!(time.name.loc.line, 3);
        let web = &wf.mcp_servers["web"];
        let McpTransport::Http { url, headers } = &web.transport else {
            panic!("http expected")
        };
        assert_eq!(url.value, "https://mcp.example.com/mcp");
        assert_eq!(headers["Authorization"].value, "Bearer ${WEB_TOKEN}");
        assert_eq!(web.blocked_tools[0].value, "delete");
        assert_eq!(
            web.call_timeout.as_ref().map(|t| t.value),
            Some(Duration::from_secs(120))
        );
        let mcp = &wf.agents["a"].mcp;
        assert_eq!(mcp.len(), 2);
        assert_eq!(
            (mcp[0].server.as_str(), mcp[0].allowed_tools.is_none()),
            ("time", true)
        );
        assert_eq!(mcp[1].server.as_str(), "web");
        assert_eq!(
            mcp[1].allowed_tools.as_ref().map(|t| t[0].as_str()),
            Some("search")
        );
        assert_eq!(mcp[1].blocked_tools[0].as_str(), "fetch");
    }

    #[test]
    fn a_server_needs_exactly_one_of_command_and_url() {
        let src = format!(
            "name: t\nmcp_servers:\n  none: {{ env: {{ A: b }} }}\n  empty:\n  both:\n    command: [x]\n    url: http://h/mcp\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [
                (
                    "w.yaml:3:3: MCP server `none` needs `command:` (a stdio server) or `url:` (a streamable HTTP server)".into(),
                    Some(super::NEEDS_TRANSPORT_HELP.into())
                ),
                (
                    "w.yaml:4:3: MCP server `empty` needs `command:` (a stdio server) or `url:` (a streamable HTTP server)".into(),
                    Some(super::NEEDS_TRANSPORT_HELP.into())
                ),
                (
                    "w.yaml:7:5: MCP server `both` has both `command:` and `url:`".into(),
                    Some("a server is either started (`command:`, stdio) or connected to (`url:`, streamable HTTP); keep one".into())
                ),
            ]
        );
    }

    #[test]
    fn keys_of_the_other_kind_of_server_are_errors() {
        let src = format!(
            "name: t\nmcp_servers:\n  s:\n    command: [x]\n    headers: {{ A: b }}\n  h:\n    url: http://h/mcp\n    env: {{ A: b }}\n    cwd: d\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [
                (
                    "w.yaml:5:5: `headers:` is only for HTTP servers (with `url:`), and MCP server `s` has `command:`".into(),
                    Some("a stdio server gets values through `env:`".into())
                ),
                (
                    "w.yaml:8:5: `env:` is only for stdio servers (with `command:`), and MCP server `h` has `url:`".into(),
                    Some("an HTTP server gets values through `headers:`".into())
                ),
                (
                    "w.yaml:9:5: `cwd:` is only for stdio servers (with `command:`), and MCP server `h` has `url:`".into(),
                    Some("an HTTP server gets values through `headers:`".into())
                ),
            ]
        );
    }

    #[test]
    fn a_command_string_is_refused_with_the_list_form_in_the_help() {
        let src = format!(
            "name: t\nmcp_servers:\n  e:\n    command: npx -y @modelcontextprotocol/server-everything stdio\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [(
                "w.yaml:4:14: `command` must be a list (the program and its arguments), found a string".into(),
                Some("MCP servers start without a shell; write `command: [npx, -y, \"@modelcontextprotocol/server-everything\", stdio]`".into())
            )]
        );
        assert_eq!(
            headlines(&format!(
                "name: t\nmcp_servers:\n  e: {{ command: [] }}\n{STEPS}"
            )),
            ["w.yaml:3:17: `command:` list is empty"]
        );
        assert_eq!(
            headlines(&format!(
                "name: t\nmcp_servers:\n  e: {{ command: {{ a: 1 }} }}\n{STEPS}"
            )),
            ["w.yaml:3:17: `command` must be a command list `[prog, arg]`, found a mapping"]
        );
    }

    #[test]
    fn urls_names_values_and_durations_are_checked_where_they_are_written() {
        let src = format!(
            r#"name: t
mcp_servers:
  "bad name":
    url: ftp://h/x
  s:
    command: [x]
    env: {{ "A=B": x, C: "${{}}", D: "${{1X}}", E: "a ${{OPEN" }}
    startup_timeout: soon
    call_timeout: 0s
    allowed_tools: []
    blockd_tools: [x]
  h:
    url: http://h/mcp
    headers: {{ "Bad Name": x, X-Key: {{ a: 1 }} }}
{STEPS}"#
        );
        assert_eq!(
            headlines(&src),
            [
                "w.yaml:3:3: MCP server name `bad name` must be 1 to 64 letters, digits, `_` or `-`",
                "w.yaml:4:10: `url` must be an http:// or https:// URL, found `ftp://h/x`",
                "w.yaml:7:12: `A=B` in `env:` is not a valid name of an environment variable",
                "w.yaml:7:25: `env.C` has `${}`, which names no variable",
                "w.yaml:7:35: `env.D` has `${1X}`, which is not a variable name (letters, digits and `_`, not starting with a digit)",
                "w.yaml:7:47: `env.E` has `${` without a closing `}`",
                "w.yaml:8:22: `startup_timeout` must be a duration like 30s, 2m or 1h",
                "w.yaml:9:19: `call_timeout` must be longer than zero",
                "w.yaml:10:20: `allowed_tools:` is empty, so no tool would be offered",
                "w.yaml:11:5: unknown key `blockd_tools` in MCP server `s`; did you mean `blocked_tools`?",
                "w.yaml:14:16: `Bad Name` in `headers:` is not a valid name of an HTTP header",
                "w.yaml:14:38: `headers.X-Key` must be a string, found a mapping",
            ]
        );
        assert_eq!(
            problems(&src)[3].1.as_deref(),
            Some(crate::workflow::mcp::REF_HELP)
        );
    }

    #[test]
    fn an_agents_mcp_is_a_list_of_names_or_entries() {
        let src = format!(
            "name: t\nmcp_servers: {{ s: {{ command: [x] }} }}\nagents:\n  a: {{ mcp: s }}\n  b:\n    mcp: [[s], {{ allowed_tools: [t] }}, {{ server: s, tools: [t] }}, \"\"]\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [
                (
                    "w.yaml:4:13: `mcp` must be a list of MCP server names, found a string".into(),
                    Some("write `mcp: [s]`".into())
                ),
                (
                    "w.yaml:6:11: each `mcp:` item must be an MCP server name or `{ server, allowed_tools, blocked_tools }`, found a list".into(),
                    None
                ),
                (
                    "w.yaml:6:16: an `mcp:` entry needs `server:`".into(),
                    Some("name one of the top-level `mcp_servers:`".into())
                ),
                (
                    "w.yaml:6:53: unknown key `tools` in an `mcp:` entry".into(),
                    Some("allowed keys: `server`, `allowed_tools`, `blocked_tools`".into())
                ),
                (
                    "w.yaml:6:67: each `mcp:` item must be an MCP server name or `{ server, allowed_tools, blocked_tools }`, found an empty string".into(),
                    None
                ),
            ]
        );
    }
}
