//! MCP servers and the agents that use them: the servers an agent's `mcp:` names exist, each
//! once; no tool is both allowed and blocked; an agent only allows what its server offers; and
//! no tool named in `allowed_tools` takes the name of a workflow tool, a handoff or another
//! server's tool the same agent is offered, since the model calls tools by name alone. The
//! tools a server really lists are only known once it runs, so the engine repeats the clash
//! check then; this is the part a file shows by itself.

use std::collections::HashMap;

use super::super::diagnostic::{did_you_mean, list, suggest};
use super::super::schema::{AgentDef, AgentMcp, HANDOFF_PREFIX, Located, McpServerDef};
use super::Validator;

impl<'w> Validator<'w> {
    pub(super) fn mcp(&mut self) {
        let wf: &'w super::super::Workflow = self.wf;
        for server in wf.mcp_servers.values() {
            if let Some(allowed) = &server.allowed_tools {
                self.allowed_and_blocked(
                    allowed,
                    &server.blocked_tools,
                    &format!("MCP server `{}`", server.name.value),
                );
            }
        }
        for agent in wf.agents.values() {
            self.agent_mcp(agent);
        }
    }

    fn allowed_and_blocked(
        &mut self,
        allowed: &[Located<String>],
        blocked: &[Located<String>],
        who: &str,
    ) {
        for tool in blocked {
            if allowed.iter().any(|a| a.value == tool.value) {
                self.report(
                    tool.loc,
                    format!("{who} both allows and blocks tool `{}`", tool.value),
                    Some("keep it in one of `allowed_tools:` and `blocked_tools:`".into()),
                    tool.value.chars().count(),
                );
            }
        }
    }

    fn agent_mcp(&mut self, agent: &'w AgentDef) {
        let wf: &'w super::super::Workflow = self.wf;
        let mut seen: Vec<&str> = Vec::new();
        // Tool name → the server that offers it, among the names this agent's entries allow.
        let mut offered: HashMap<&str, &str> = HashMap::new();
        for entry in &agent.mcp {
            let Some(server) = wf.mcp_servers.get(&entry.server.value) else {
                self.unknown_mcp_server(&entry.server);
                continue;
            };
            if seen.contains(&entry.server.as_str()) {
                self.report(
                    entry.server.loc,
                    format!(
                        "agent `{}` lists MCP server `{}` twice",
                        agent.name.value, entry.server.value
                    ),
                    Some("give each server one entry, with its `allowed_tools:` and `blocked_tools:`".into()),
                    entry.server.value.chars().count(),
                );
                continue;
            }
            seen.push(entry.server.as_str());
            if let Some(allowed) = &entry.allowed_tools {
                let who = format!(
                    "agent `{}`, for MCP server `{}`,",
                    agent.name.value, server.name.value
                );
                self.allowed_and_blocked(allowed, &entry.blocked_tools, &who);
                for tool in allowed {
                    self.offered_by_server(agent, server, tool);
                }
            }
            for tool in named_offers(server, entry) {
                self.clash(agent, server, tool, &mut offered);
            }
        }
    }

    /// An agent's `allowed_tools` entry that its server's own filters take away.
    fn offered_by_server(
        &mut self,
        agent: &AgentDef,
        server: &McpServerDef,
        tool: &Located<String>,
    ) {
        let width = tool.value.chars().count();
        if let Some(allowed) = &server.allowed_tools
            && !allowed.iter().any(|a| a.value == tool.value)
        {
            let line = allowed.first().map_or(server.loc.line, |a| a.loc.line);
            let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            let suggestion = suggest(&tool.value, names.iter().copied());
            self.report(
                tool.loc,
                format!(
                    "agent `{}` allows tool `{}`, which MCP server `{}` does not offer{}",
                    agent.name.value,
                    tool.value,
                    server.name.value,
                    did_you_mean(suggestion)
                ),
                Some(format!(
                    "the server's `allowed_tools:` (line {line}) offers only {}",
                    list(&names)
                )),
                width,
            );
        } else if let Some(block) = server.blocked_tools.iter().find(|b| b.value == tool.value) {
            self.report(
                tool.loc,
                format!(
                    "agent `{}` allows tool `{}`, which MCP server `{}` blocks",
                    agent.name.value, tool.value, server.name.value
                ),
                Some(format!(
                    "the server's `blocked_tools:` (line {}) blocks it for every agent",
                    block.loc.line
                )),
                width,
            );
        }
    }

    /// A tool the agent is offered by name that another of its tools already has.
    fn clash<'a>(
        &mut self,
        agent: &'a AgentDef,
        server: &'a McpServerDef,
        tool: &'a Located<String>,
        offered: &mut HashMap<&'a str, &'a str>,
    ) {
        let width = tool.value.chars().count();
        let name = tool.as_str();
        let handoff = name
            .strip_prefix(HANDOFF_PREFIX)
            .filter(|target| agent.handoffs.iter().any(|h| h.value == *target));
        let (message, help) = if agent.tools.iter().any(|t| t.value == name) {
            (
                format!(
                    "MCP tool `{name}` of server `{}` has the name of workflow tool `{name}`, which agent `{}` also lists in `tools:`",
                    server.name.value, agent.name.value
                ),
                "the model calls tools by name, so one would hide the other; leave one out",
            )
        } else if let Some(target) = handoff {
            (
                format!(
                    "MCP tool `{name}` of server `{}` has the name of the handoff of agent `{}` to `{target}`",
                    server.name.value, agent.name.value
                ),
                "handoffs are offered to the model as `transfer_to_<agent>` tools; leave the MCP tool out",
            )
        } else if let Some(other) = offered.get(name).filter(|o| **o != server.name.value) {
            (
                format!(
                    "MCP servers `{other}` and `{}` both offer tool `{name}` to agent `{}`",
                    server.name.value, agent.name.value
                ),
                "the model calls tools by name, so one would hide the other; narrow one server's `allowed_tools:`",
            )
        } else {
            offered.insert(name, server.name.as_str());
            return;
        };
        self.report(tool.loc, message, Some(help.into()), width);
    }

    fn unknown_mcp_server(&mut self, server: &Located<String>) {
        let names: Vec<&str> = self.wf.mcp_servers.keys().map(String::as_str).collect();
        let suggestion = suggest(&server.value, names.iter().copied());
        let help = if names.is_empty() {
            "define it under the top-level `mcp_servers:`".to_string()
        } else {
            format!("MCP servers defined: {}", list(&names))
        };
        self.report(
            server.loc,
            format!(
                "unknown MCP server `{}`{}",
                server.value,
                did_you_mean(suggestion)
            ),
            Some(help),
            server.value.chars().count(),
        );
    }

    /// Whether `agent` may be offered a tool called `tool` by one of its MCP servers (a
    /// scripted turn may call it: the server's list is only known at run time).
    pub(super) fn mcp_may_offer(&self, agent: &AgentDef, tool: &str) -> bool {
        agent.mcp.iter().any(|entry| {
            self.wf
                .mcp_servers
                .get(&entry.server.value)
                .is_some_and(|server| entry.offers(server, tool))
        })
    }
}

/// The tools an entry offers by name: its own `allowed_tools` if it has them, else its server's,
/// less what either blocks (none when neither names any: the list is known at run time).
fn named_offers<'a>(server: &'a McpServerDef, entry: &'a AgentMcp) -> Vec<&'a Located<String>> {
    entry
        .allowed_tools
        .as_ref()
        .or(server.allowed_tools.as_ref())
        .into_iter()
        .flatten()
        .filter(|tool| entry.offers(server, &tool.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::workflow::check_str;

    /// Every problem in the file, parse and validation together, as `FILE:LINE:COL: message`
    /// and the help line.
    fn problems(src: &str) -> Vec<(String, Option<String>)> {
        let (_, diags) = check_str("w.yaml", PathBuf::from("w.yaml"), src);
        diags
            .iter()
            .map(|d| (d.headline(), d.help.clone()))
            .collect()
    }

    fn headlines(src: &str) -> Vec<String> {
        problems(src).into_iter().map(|(h, _)| h).collect()
    }

    const SERVERS: &str = "name: t\nmodel: m\nmcp_servers:\n  time: { command: [uvx, mcp-server-time] }\n  web: { url: http://h/mcp }\n";
    const STEPS: &str = "steps:\n  - { agent: a, input: hi }\n";

    #[test]
    fn a_valid_file_with_servers_and_entries_has_no_problem() {
        let src = format!(
            "{SERVERS}tools: {{ calc: {{ command: [calc] }} }}\nagents:\n  a:\n    tools: [calc]\n    mcp: [time, {{ server: web, allowed_tools: [search] }}]\n    handoffs: [b]\n  b: {{}}\n{STEPS}"
        );
        assert_eq!(problems(&src), []);
        // A server no agent uses is fine, as an unused tool or agent is.
        let src = format!("{SERVERS}agents: {{ a: {{}} }}\n{STEPS}");
        assert_eq!(problems(&src), []);
    }

    #[test]
    fn an_unknown_server_gets_a_suggestion_and_the_defined_servers() {
        let src = format!("{SERVERS}agents:\n  a: {{ mcp: [tmie, {{ server: nope }}] }}\n{STEPS}");
        assert_eq!(
            problems(&src),
            [
                (
                    "w.yaml:7:14: unknown MCP server `tmie`; did you mean `time`?".into(),
                    Some("MCP servers defined: `time`, `web`".into())
                ),
                (
                    "w.yaml:7:30: unknown MCP server `nope`".into(),
                    Some("MCP servers defined: `time`, `web`".into())
                ),
            ]
        );
        let src = format!("name: t\nmodel: m\nagents:\n  a: {{ mcp: [time] }}\n{STEPS}");
        assert_eq!(
            problems(&src),
            [(
                "w.yaml:4:14: unknown MCP server `time`".into(),
                Some("define it under the top-level `mcp_servers:`".into())
            )]
        );
    }

    #[test]
    fn a_server_listed_twice_by_one_agent_is_an_error() {
        let src = format!(
            "{SERVERS}agents:\n  a: {{ mcp: [time, web, {{ server: time, blocked_tools: [x] }}] }}\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [(
                "w.yaml:7:35: agent `a` lists MCP server `time` twice".into(),
                Some(
                    "give each server one entry, with its `allowed_tools:` and `blocked_tools:`"
                        .into()
                )
            )]
        );
    }

    #[test]
    fn a_tool_both_allowed_and_blocked_is_an_error_on_a_server_and_an_entry() {
        let src = format!(
            "name: t\nmodel: m\nmcp_servers:\n  s: {{ command: [x], allowed_tools: [a, b], blocked_tools: [b] }}\nagents:\n  a:\n    mcp: [{{ server: s, allowed_tools: [a], blocked_tools: [a] }}]\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [
                (
                    "w.yaml:4:61: MCP server `s` both allows and blocks tool `b`".into(),
                    Some("keep it in one of `allowed_tools:` and `blocked_tools:`".into())
                ),
                (
                    "w.yaml:7:60: agent `a`, for MCP server `s`, both allows and blocks tool `a`"
                        .into(),
                    Some("keep it in one of `allowed_tools:` and `blocked_tools:`".into())
                ),
            ]
        );
    }

    #[test]
    fn an_agent_cannot_allow_what_its_server_takes_away() {
        let src = format!(
            "name: t\nmodel: m\nmcp_servers:\n  s:\n    command: [x]\n    allowed_tools: [get_time, convert_time]\n  u: {{ url: http://h/mcp, blocked_tools: [delete] }}\nagents:\n  a:\n    mcp:\n      - {{ server: s, allowed_tools: [get_tim] }}\n      - {{ server: u, allowed_tools: [delete] }}\n{STEPS}"
        );
        assert_eq!(
            problems(&src),
            [
                (
                    "w.yaml:11:38: agent `a` allows tool `get_tim`, which MCP server `s` does not offer; did you mean `get_time`?".into(),
                    Some("the server's `allowed_tools:` (line 6) offers only `get_time`, `convert_time`".into())
                ),
                (
                    "w.yaml:12:38: agent `a` allows tool `delete`, which MCP server `u` blocks".into(),
                    Some("the server's `blocked_tools:` (line 7) blocks it for every agent".into())
                ),
            ]
        );
    }

    #[test]
    fn allowed_mcp_tools_may_not_take_the_name_of_another_tool_of_the_agent() {
        let src = "name: t\nmodel: m\ntools: { calc: { command: [calc] } }\nmcp_servers:\n  s: { command: [x], allowed_tools: [calc, transfer_to_b, now] }\n  u: { url: http://h/mcp }\nagents:\n  a:\n    tools: [calc]\n    handoffs: [b]\n    mcp: [s, { server: u, allowed_tools: [now] }]\n  b:\n    mcp: [s]\nsteps:\n  - { agent: a, input: hi }\n";
        assert_eq!(
            problems(src),
            [
                (
                    "w.yaml:5:38: MCP tool `calc` of server `s` has the name of workflow tool `calc`, which agent `a` also lists in `tools:`".into(),
                    Some("the model calls tools by name, so one would hide the other; leave one out".into())
                ),
                (
                    "w.yaml:5:44: MCP tool `transfer_to_b` of server `s` has the name of the handoff of agent `a` to `b`".into(),
                    Some("handoffs are offered to the model as `transfer_to_<agent>` tools; leave the MCP tool out".into())
                ),
                (
                    "w.yaml:11:43: MCP servers `s` and `u` both offer tool `now` to agent `a`".into(),
                    Some("the model calls tools by name, so one would hide the other; narrow one server's `allowed_tools:`".into())
                ),
            ]
        );
        // Narrowed or blocked away, the name no longer clashes.
        let src = src.replace(
            "mcp: [s, {",
            "mcp: [{ server: s, blocked_tools: [calc, transfer_to_b, now] }, {",
        );
        assert_eq!(headlines(&src), Vec::<String>::new());
    }

    #[test]
    fn a_scripted_turn_may_call_a_tool_an_mcp_server_of_the_agent_may_offer() {
        let head = "name: t\nmodel: m\nmcp_servers:\n  s: { command: [x], blocked_tools: [rm] }\nagents:\n  a: { mcp: [s] }\n  b: {}\n";
        let step = |agent: &str, tool: &str| {
            format!(
                "{head}steps:\n  - agent: {agent}\n    input: hi\n    mock: [{{ tool_calls: [{{ name: {tool} }}] }}, done]\n"
            )
        };
        assert_eq!(headlines(&step("a", "get_time")), Vec::<String>::new());
        assert_eq!(
            headlines(&step("a", "rm")),
            ["w.yaml:11:35: unknown tool `rm`"]
        );
        assert_eq!(
            headlines(&step("b", "get_time")),
            ["w.yaml:11:35: unknown tool `get_time`"]
        );
    }

    #[test]
    fn a_path_check_may_name_a_tool_an_mcp_server_may_offer() {
        let file = |allowed: &str| {
            format!(
                "name: t\nmodel: m\nmcp_servers:\n  s: {{ command: [x]{allowed} }}\nagents:\n  a: {{ mcp: [s] }}\nsteps:\n  - agent: a\n    input: hi\n    scores: [{{ name: p, tools_called: [get_time] }}]\n"
            )
        };
        assert_eq!(headlines(&file("")), Vec::<String>::new());
        assert_eq!(
            headlines(&file(", allowed_tools: [get_time]")),
            Vec::<String>::new()
        );
        let wrong = headlines(&file(", allowed_tools: [convert]"));
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(
            wrong[0].contains("no agent has the tool `get_time`"),
            "{wrong:?}"
        );
    }
}
