//! Reading the top-level `tools:`: each tool's name (the function name a model sees, not one
//! that looks like a handoff), its description, its parameters' schema and the argv it runs.

use indexmap::IndexMap;

use super::super::node::{Node, NodeKind};
use super::super::schema::{HANDOFF_PREFIX, Located, ToolDef, is_function_name};
use super::{Fields, Parser};

const TOOL_KEYS: &[&str] = &["description", "parameters", "command"];

impl Parser<'_> {
    /// Top-level `tools:` — name → `{ description, parameters, command }`.
    pub(super) fn tools(&mut self, top: &Fields) -> IndexMap<String, ToolDef> {
        let mut out = IndexMap::new();
        let entries = self.named_map(top, "tools", "a mapping of tool names to tools");
        for (name, def) in entries {
            self.tool_name(name);
            let (description, parameters, command) = match &def.kind {
                NodeKind::Null => {
                    self.tool_needs_command(name);
                    (None, None, Vec::new())
                }
                _ => {
                    let place = format!("in tool `{}`", name.value);
                    let Some(f) =
                        self.fields(def, TOOL_KEYS, &place, &format!("tool `{}`", name.value))
                    else {
                        continue;
                    };
                    let description = self.opt_text(&f, "description").map(|d| d.value);
                    let parameters = self.schema(&f, "parameters");
                    let command = match f.value("command") {
                        Some(n) => self.tool_command(n),
                        None => {
                            self.tool_needs_command(name);
                            Vec::new()
                        }
                    };
                    (description, parameters, command)
                }
            };
            out.insert(
                name.value.clone(),
                ToolDef {
                    name: name.clone(),
                    description,
                    parameters,
                    command,
                    loc: name.loc,
                },
            );
        }
        out
    }

    fn tool_name(&mut self, name: &Located<String>) {
        let width = name.value.chars().count();
        if !is_function_name(&name.value) {
            let d = self.error(
                name.loc,
                format!(
                    "tool name `{}` must be 1 to 64 letters, digits, `_` or `-`",
                    name.value
                ),
            );
            d.width = width.max(1);
            self.help("the name is the function name the model sees");
        } else if name.value.starts_with(HANDOFF_PREFIX) {
            let d = self.error(
                name.loc,
                format!(
                    "tool name `{}` starts with `{HANDOFF_PREFIX}`, which is reserved for handoffs",
                    name.value
                ),
            );
            d.width = width.max(1);
            self.help("handoffs to an agent are offered as `transfer_to_<agent>`; rename the tool");
        }
    }

    fn tool_needs_command(&mut self, name: &Located<String>) {
        let d = self.error(name.loc, format!("tool `{}` needs `command:`", name.value));
        d.width = name.value.chars().count().max(1);
        self.help(
            "add `command: [prog, arg]`; the call's arguments arrive as JSON on stdin and stdout is the result",
        );
    }

    /// A tool's `command:` — a non-empty argv list (no shell form).
    fn tool_command(&mut self, node: &Node) -> Vec<Located<String>> {
        let NodeKind::Seq(items) = &node.kind else {
            self.wrong_type("command", "a command list `[prog, arg]`", node);
            if matches!(node.kind, NodeKind::Str(_)) {
                self.help("tools run without a shell; write `command: [prog, arg]`");
            }
            return Vec::new();
        };
        self.argv("command", node, items)
    }
}
