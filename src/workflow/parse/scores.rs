//! Parsing `scores:` lists (on the workflow and on steps) and the path checks that `expect:`
//! shares with them, with the parser's usual located reporting: unknown keys with a
//! did-you-mean, an item with no kind or two, duplicate names, bad regular expressions, JSON
//! paths and schemas, each at its value. Relations (the judge's agent, the tools a path check
//! names, the step a path check sits on) are validation's.

use std::collections::HashMap;

use indexmap::IndexMap;

use super::super::diagnostic::list;
use super::super::is_function_name;
use super::super::node::{Node, NodeKind};
use super::super::schema::Located;
use super::super::scores::{
    DEFAULT_COMMAND_TIMEOUT, JsonPath, JudgeDef, JudgeScale, PathCheck, SCORE_KEYS, SCORE_KINDS,
    ScoreDef, ScoreKind,
};
use super::super::template::is_template;
use super::{Fields, Parser};

const WITHIN_KEYS: &[&str] = &["of", "tolerance"];
const JUDGE_KEYS: &[&str] = &["agent", "rubric", "choices", "range", "mock"];
const TOOL_ARGS_KEYS: &[&str] = &["tool", "match"];

impl Parser<'_> {
    /// The `scores:` of a mapping (the workflow's top level or a step), if it has one.
    pub(super) fn scores(&mut self, f: &Fields) -> Vec<ScoreDef> {
        let Some(node) = f.value("scores") else {
            return Vec::new();
        };
        let items = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => return Vec::new(),
            _ => {
                self.wrong_type("scores", "a list of scorers", node);
                self.help(
                    "for example `scores: [{ name: correct, equals: \"{{ case.expected }}\" }]`",
                );
                return Vec::new();
            }
        };
        let mut out: Vec<ScoreDef> = Vec::new();
        let mut first: HashMap<String, u32> = HashMap::new();
        for item in items {
            let Some(def) = self.score(item) else {
                continue;
            };
            if let Some(line) = first.get(&def.name.value) {
                let d = self.error(
                    def.name.loc,
                    format!(
                        "duplicate score name `{}` (first used on line {line})",
                        def.name.value
                    ),
                );
                d.width = def.name.value.chars().count().max(1);
                self.help("the names of one `scores:` list are unique; rename one of them");
                continue;
            }
            first.insert(def.name.value.clone(), def.name.loc.line);
            out.push(def);
        }
        out
    }

    fn score(&mut self, node: &Node) -> Option<ScoreDef> {
        let f = self.fields(node, SCORE_KEYS, "in a score", "a `scores:` item")?;
        let name = match f.value("name") {
            Some(n) => self.text("name", n),
            None => {
                self.error(node.loc, "a score needs `name:`");
                self.help("name it after what it measures: `name: correct`");
                None
            }
        };
        if let Some(name) = &name
            && !is_function_name(&name.value)
        {
            let d = self.error(
                name.loc,
                format!(
                    "score name `{}` must be letters, digits, `_` and `-` (at most 64)",
                    name.value
                ),
            );
            d.width = name.value.chars().count().max(1);
        }
        let threshold = f
            .value("threshold")
            .and_then(|n| self.number("threshold", n));
        let kinds: Vec<&Located<String>> = f
            .entries
            .iter()
            .map(|(k, _)| k)
            .filter(|k| SCORE_KINDS.contains(&k.as_str()))
            .collect();
        let json_path = f.get("json_path");
        let Some(kind_key) = kinds.first().copied() else {
            if f.entries
                .iter()
                .any(|(k, _)| !SCORE_KEYS.contains(&k.as_str()))
            {
                // A misspelt kind: its unknown key (with a did-you-mean) says it all.
                return None;
            }
            let at = json_path.map_or(node.loc, |(k, _)| k.loc);
            let message = if json_path.is_some() {
                "`json_path:` needs `equals:` or `within:` beside it".to_string()
            } else {
                "a score needs exactly one kind".to_string()
            };
            self.error(at, message);
            self.help(format!("kinds: {}", list(SCORE_KINDS)));
            return None;
        };
        if let Some(second) = kinds.get(1) {
            let d = self.error(
                second.loc,
                format!(
                    "a score cannot be both `{}:` and `{}:`",
                    kind_key.value, second.value
                ),
            );
            d.width = second.value.chars().count();
            self.help("split it into two scores, each with its own name");
        }
        if let Some((key, _)) = json_path
            && !matches!(kind_key.as_str(), "equals" | "within")
        {
            let d = self.error(
                key.loc,
                format!(
                    "`json_path:` goes with `equals:` or `within:`, not `{}:`",
                    kind_key.value
                ),
            );
            d.width = "json_path".len();
        }
        if let Some((key, _)) = f.get("timeout")
            && kind_key.as_str() != "command"
        {
            let d = self.error(key.loc, "`timeout:` only applies to `command:` scores");
            d.width = "timeout".len();
        }
        let path = json_path.and_then(|(_, n)| {
            let text = self.text("json_path", n)?;
            match JsonPath::parse(&text.value) {
                Ok(p) => Some(p),
                Err(why) => {
                    self.error(n.loc, format!("`json_path` is not a JSON path: {why}"));
                    self.help("write it as `$.answer`, `$.items[0].id` or `$[\"a key\"]`");
                    None
                }
            }
        });
        let value = f.value(kind_key.as_str())?;
        let kind = self.score_kind(kind_key.as_str(), value, path, &f)?;
        Some(ScoreDef {
            name: name?,
            threshold,
            kind,
            loc: node.loc,
        })
    }

    fn score_kind(
        &mut self,
        key: &str,
        node: &Node,
        path: Option<JsonPath>,
        f: &Fields,
    ) -> Option<ScoreKind> {
        Some(match key {
            "equals" => match (&node.kind, &path) {
                (NodeKind::Null, _) => {
                    self.wrong_type(key, "a value", node);
                    return None;
                }
                (NodeKind::Map(_) | NodeKind::Seq(_), None) => {
                    self.wrong_type(key, "a string (or, with `json_path:`, any value)", node);
                    return None;
                }
                (NodeKind::Map(_) | NodeKind::Seq(_), Some(_)) => ScoreKind::Equals {
                    path,
                    value: Located::new(node.to_json(), node.loc),
                },
                _ => {
                    // As written: `equals: 1.0` compares with the text `1.0` on plain output.
                    let value = if path.is_some() {
                        node.to_json()
                    } else {
                        serde_json::Value::String(node.scalar_text(self.source)?)
                    };
                    ScoreKind::Equals {
                        path,
                        value: Located::new(value, node.loc),
                    }
                }
            },
            "contains" => ScoreKind::Contains(self.text(key, node)?),
            "not_contains" => ScoreKind::NotContains(self.text(key, node)?),
            "matches" => {
                let text = self.text(key, node)?;
                if !is_template(&text.value)
                    && let Err(e) = regex::Regex::new(&text.value)
                {
                    let why = super::expect::regex_error(&e);
                    self.error(
                        node.loc,
                        format!("`matches` is not a valid regular expression: {why}"),
                    );
                    return None;
                }
                ScoreKind::Matches(text)
            }
            "json_schema" => match &node.kind {
                NodeKind::Map(_) => {
                    let schema = node.to_json();
                    if let Err(e) = jsonschema::validator_for(&schema) {
                        self.error(
                            node.loc,
                            format!("`json_schema` is not a valid JSON Schema: {e}"),
                        );
                        return None;
                    }
                    ScoreKind::JsonSchema(Located::new(schema, node.loc))
                }
                _ => {
                    self.wrong_type(key, "a mapping (a JSON Schema)", node);
                    return None;
                }
            },
            "within" => {
                let w = self.fields(node, WITHIN_KEYS, "in within", "`within`")?;
                let of = match w.value("of") {
                    Some(n) => match &n.kind {
                        NodeKind::Map(_) | NodeKind::Seq(_) | NodeKind::Null => {
                            self.wrong_type("of", "a number or a template", n);
                            None
                        }
                        _ => Some(Located::new(n.to_json(), n.loc)),
                    },
                    None => {
                        self.error(node.loc, "`within:` needs `of:` (the expected number)");
                        None
                    }
                };
                let tolerance = match w.value("tolerance") {
                    Some(n) => match self.number("tolerance", n) {
                        Some(t) if t >= 0.0 => Some(t),
                        Some(_) => {
                            self.error(n.loc, "`tolerance` must not be negative");
                            None
                        }
                        None => None,
                    },
                    None => {
                        self.error(node.loc, "`within:` needs `tolerance:`");
                        None
                    }
                };
                ScoreKind::Within {
                    path,
                    of: of?,
                    tolerance: tolerance?,
                }
            }
            "command" => {
                let NodeKind::Seq(items) = &node.kind else {
                    self.wrong_type(key, "a list (argv)", node);
                    self.help(
                        "write `command: [python3, score.py]`: a scorer never goes through a shell",
                    );
                    return None;
                };
                let argv = self.argv(key, node, items);
                let timeout = f
                    .value("timeout")
                    .and_then(|n| self.duration("timeout", n))
                    .unwrap_or(DEFAULT_COMMAND_TIMEOUT);
                if argv.is_empty() {
                    return None;
                }
                ScoreKind::Command { argv, timeout }
            }
            "judge" => ScoreKind::Judge(self.judge(node)?),
            _ => ScoreKind::Path(self.path_check(key, node)?),
        })
    }

    fn judge(&mut self, node: &Node) -> Option<JudgeDef> {
        let f = self.fields(node, JUDGE_KEYS, "in judge", "`judge`")?;
        let agent = match f.value("agent") {
            Some(n) => self.text("agent", n),
            None => {
                self.error(node.loc, "a judge needs `agent:` (an agent of `agents:`)");
                None
            }
        };
        let rubric = match f.value("rubric") {
            Some(n) => self.text("rubric", n),
            None => {
                self.error(node.loc, "a judge needs `rubric:`, what it grades");
                None
            }
        };
        let scale = match (f.get("choices"), f.get("range")) {
            (Some(_), Some((range, _))) => {
                let d = self.error(range.loc, "a judge has `choices:` or `range:`, not both");
                d.width = "range".len();
                None
            }
            (None, None) => {
                self.error(node.loc, "a judge needs `choices:` or `range:`");
                self.help("`choices: { correct: 1, wrong: 0 }` or `range: [1, 5]`");
                None
            }
            (Some((_, n)), None) => self.choices(n),
            (None, Some((_, n))) => self.range(n),
        };
        let mock = f.value("mock").and_then(|n| self.text("mock", n));
        Some(JudgeDef {
            agent: agent?,
            rubric: rubric?,
            scale: scale?,
            mock,
        })
    }

    fn choices(&mut self, node: &Node) -> Option<JudgeScale> {
        let NodeKind::Map(entries) = &node.kind else {
            self.wrong_type("choices", "a mapping of labels to numbers", node);
            return None;
        };
        if entries.is_empty() {
            self.error(node.loc, "`choices:` has no labels");
            return None;
        }
        let mut out = IndexMap::new();
        for (label, value) in entries {
            if let Some(n) = self.number(&label.value, value) {
                out.insert(label.value.clone(), n);
            }
        }
        (out.len() == entries.len()).then_some(JudgeScale::Choices(out))
    }

    fn range(&mut self, node: &Node) -> Option<JudgeScale> {
        let bounds = match &node.kind {
            NodeKind::Seq(items) if items.len() == 2 => {
                let lo = self.number("range", &items[0]);
                let hi = self.number("range", &items[1]);
                (lo?, hi?)
            }
            _ => {
                self.wrong_type("range", "a list `[min, max]`", node);
                return None;
            }
        };
        if bounds.0 >= bounds.1 {
            self.error(node.loc, "`range:` must be `[min, max]` with min below max");
            return None;
        }
        Some(JudgeScale::Range(bounds.0, bounds.1))
    }

    /// A check on the agent's path, in `scores:` or `expect:`.
    pub(super) fn path_check(&mut self, key: &str, node: &Node) -> Option<PathCheck> {
        let names = |p: &mut Self| -> Option<Vec<Located<String>>> {
            let items = match &node.kind {
                NodeKind::Seq(items) if !items.is_empty() => items,
                NodeKind::Seq(_) => {
                    p.error(node.loc, format!("`{key}:` list is empty"));
                    return None;
                }
                _ => {
                    p.wrong_type(key, "a list of tool names", node);
                    return None;
                }
            };
            let mut out = Vec::new();
            for item in items {
                out.push(p.text(key, item).filter(|t| !t.value.is_empty())?);
            }
            Some(out)
        };
        Some(match key {
            "tools_called" => PathCheck::ToolsCalled(names(self)?),
            "tools_not_called" => PathCheck::ToolsNotCalled(names(self)?),
            "tool_order" => PathCheck::ToolOrder(names(self)?),
            "tool_args" => {
                let f = self.fields(node, TOOL_ARGS_KEYS, "in tool_args", "`tool_args`")?;
                let tool = match f.value("tool") {
                    Some(n) => self.text("tool", n),
                    None => {
                        self.error(node.loc, "`tool_args:` needs `tool:`");
                        None
                    }
                };
                let subset = match f.value("match") {
                    Some(n) if matches!(n.kind, NodeKind::Map(_)) => Some(n.to_json()),
                    Some(n) => {
                        self.wrong_type("match", "a mapping (a subset of the arguments)", n);
                        None
                    }
                    None => {
                        self.error(node.loc, "`tool_args:` needs `match:`");
                        None
                    }
                };
                PathCheck::ToolArgs {
                    tool: tool?,
                    subset: subset?,
                }
            }
            "handed_off_to" => PathCheck::HandedOffTo(self.text(key, node)?),
            _ => {
                let n = self.whole(key, node, 1, u64::from(u32::MAX))?;
                PathCheck::MaxTurns(u32::try_from(n).ok()?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::workflow::check_str;
    use crate::workflow::scores::{JudgeScale, PathCheck, ScoreKind};

    fn problems(src: &str) -> Vec<String> {
        let (_, diags) = check_str("w.yaml", PathBuf::from("w.yaml"), src);
        diags.iter().map(|d| d.headline()).collect()
    }

    const HEAD: &str = "name: t\nmodel: m\ntools:\n  lookup: { command: [cat] }\nagents:\n  helper: { tools: [lookup] }\n  grader: {}\n";

    #[test]
    fn every_kind_parses_on_steps_and_on_the_trace() {
        let src = format!(
            "{HEAD}steps:\n  - id: a\n    agent: helper\n    input: hi\n    scores:\n      - {{ name: exact, equals: \"{{{{ case.expected }}}}\", threshold: 1 }}\n      - {{ name: has, contains: refund }}\n      - {{ name: hasnt, not_contains: sorry }}\n      - {{ name: re, matches: \"^Y\" }}\n      - {{ name: shape, json_schema: {{ type: object }} }}\n      - {{ name: field, json_path: \"$.a[0]\", equals: {{ k: 1 }} }}\n      - {{ name: near, within: {{ of: 3, tolerance: 0.5 }}, json_path: $.n }}\n      - {{ name: used, tools_called: [lookup] }}\n      - {{ name: args, tool_args: {{ tool: lookup, match: {{ id: 7 }} }} }}\n      - {{ name: turns, max_turns: 3 }}\n      - {{ name: cmd, command: [python3, s.py], timeout: 5s }}\n    expect: {{ tool_order: [lookup], handed_off_to: grader }}\nscores:\n  - name: judged\n    judge: {{ agent: grader, rubric: \"Is it right?\", choices: {{ yes: 1, no: 0 }} }}\n  - {{ name: ranged, judge: {{ agent: grader, rubric: r, range: [1, 5] }} }}\n"
        );
        let (wf, diags) = check_str("w.yaml", PathBuf::from("w.yaml"), &src);
        assert_eq!(diags, []);
        let wf = wf.unwrap();
        let step = &wf.traces[0].steps[0];
        let keys: Vec<&str> = step.scores.iter().map(|s| s.kind.key()).collect();
        assert_eq!(
            keys,
            [
                "equals",
                "contains",
                "not_contains",
                "matches",
                "json_schema",
                "json_path",
                "within",
                "tools_called",
                "tool_args",
                "max_turns",
                "command"
            ]
        );
        assert_eq!(step.scores[0].threshold, Some(1.0));
        assert!(matches!(
            &step.scores[10].kind,
            ScoreKind::Command { timeout, .. } if timeout.as_secs() == 5
        ));
        let checks: Vec<&str> = step
            .expect
            .as_ref()
            .unwrap()
            .checks
            .iter()
            .map(|c| c.name())
            .collect();
        assert_eq!(checks, ["tool_order", "handed_off_to"]);
        assert!(matches!(
            &wf.scores[0].kind,
            ScoreKind::Judge(j) if matches!(&j.scale, JudgeScale::Choices(c) if c["yes"] == 1.0)
        ));
        assert!(matches!(
            &wf.scores[1].kind,
            ScoreKind::Judge(j) if j.scale == JudgeScale::Range(1.0, 5.0)
        ));
        assert!(matches!(
            &step.scores[7].kind,
            ScoreKind::Path(PathCheck::ToolsCalled(t)) if t[0].value == "lookup"
        ));
    }

    #[test]
    fn bad_items_are_reported_at_their_place() {
        let src = format!(
            "{HEAD}  nomodel: {{ model: \"\" }}\nsteps:\n  - id: a\n    run: [echo]\n    scores:\n      - {{ name: x, equls: 1 }}\n      - {{ name: y, equals: a, contains: b }}\n      - {{ name: y, contains: c }}\n      - {{ name: z, tools_called: [lookup] }}\n      - {{ name: c, command: \"python3 s.py\" }}\n    expect: {{ max_turns: 2 }}\n  - id: b\n    agent: helper\n    input: hi\n    scores:\n      - {{ name: o, tool_order: [lookup, lokup] }}\n      - {{ name: \"bad name\", matches: \"(\" }}\n      - {{ name: j, judge: {{ agent: ghost, rubric: r, choices: {{ a: 1 }} }} }}\n      - {{ name: p, json_path: \"a.b\", equals: 1 }}\n      - {{ name: q, json_path: $.a }}\n"
        );
        assert_eq!(
            problems(&src),
            [
                "w.yaml:13:20: unknown key `equls` in a score; did you mean `equals`?",
                "w.yaml:14:31: a score cannot be both `equals:` and `contains:`",
                "w.yaml:15:17: duplicate score name `y` (first used on line 14)",
                "w.yaml:16:17: `tools_called` checks the agent's path: it applies to `agent:` steps, not `run:` steps",
                "w.yaml:17:29: `command` must be a list (argv), found a string",
                "w.yaml:18:26: `max_turns` checks the agent's path: it applies to `agent:` steps, not `run:` steps",
                "w.yaml:23:41: no agent has the tool `lokup`; did you mean `lookup`?",
                "w.yaml:24:17: score name `bad name` must be letters, digits, `_` and `-` (at most 64)",
                "w.yaml:24:38: `matches` is not a valid regular expression: unclosed group",
                "w.yaml:25:36: unknown agent `ghost`",
                "w.yaml:26:31: `json_path` is not a JSON path: a JSON path starts with `$`",
                "w.yaml:27:20: `json_path:` needs `equals:` or `within:` beside it",
            ]
        );
        // A judge needs a model.
        let src = "name: t\nagents:\n  grader: {}\nsteps:\n  - run: [echo]\nscores:\n  - { name: j, judge: { agent: grader, rubric: r, range: [0, 1] } }\n";
        assert_eq!(
            problems(src),
            [
                "w.yaml:7:32: the judge `grader` has no model: set `model:` on the agent or at the top level"
            ]
        );
    }
}
