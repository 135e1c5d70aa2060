//! Parsing `expect:` blocks (on a step, and on the workflow) into [`Expect`], with the same
//! one-pass, located reporting as the rest of the parser: unknown checks with a did-you-mean,
//! wrong types, bad regular expressions and JSON Schemas that do not compile, each at its value.

use super::super::diagnostic::{did_you_mean, list, suggest};
use super::super::expect::{Check, CheckKind, Expect, STEP_CHECKS, WORKFLOW_CHECKS};
use super::super::node::{Node, NodeKind};
use super::Parser;
use crate::workflow::scores::PATH_CHECKS;

/// Which `expect:` is being read.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Level {
    Step,
    Workflow,
}

impl Parser<'_> {
    pub(super) fn expect(&mut self, node: &Node, level: Level) -> Option<Expect> {
        let allowed = match level {
            Level::Step => STEP_CHECKS,
            Level::Workflow => WORKFLOW_CHECKS,
        };
        let NodeKind::Map(entries) = &node.kind else {
            self.wrong_type("expect", "a mapping of checks", node);
            self.help(format!(
                "for example `expect: {{ contains: refund, max_tokens: 500 }}`; checks: {}",
                list(allowed)
            ));
            return None;
        };
        if entries.is_empty() {
            self.error(node.loc, "`expect:` has no checks");
            self.help(format!("checks: {}", list(allowed)));
        }
        let mut checks = Vec::new();
        for (key, value) in entries {
            let width = key.value.chars().count().max(1);
            if !allowed.contains(&key.as_str()) {
                if level == Level::Step && WORKFLOW_CHECKS.contains(&key.as_str()) {
                    let d = self.error(
                        key.loc,
                        format!(
                            "`{}` only applies to the workflow's `expect:`, not a step's",
                            key.value
                        ),
                    );
                    d.width = width;
                    self.help("a step's cost is not known on its own; put `max_cost_usd` in a top-level `expect:`");
                    continue;
                }
                let suggestion = suggest(&key.value, allowed.iter().copied());
                let d = self.error(
                    key.loc,
                    format!(
                        "unknown check `{}` in expect{}",
                        key.value,
                        did_you_mean(suggestion)
                    ),
                );
                d.width = width;
                if suggestion.is_none() {
                    self.help(format!("checks: {}", list(allowed)));
                }
                continue;
            }
            self.check(&key.value, value, &mut checks);
        }
        Some(Expect {
            checks,
            loc: node.loc,
        })
    }

    /// One `key: value` of an `expect:`; text checks may hold a list (one check per item).
    fn check(&mut self, key: &str, node: &Node, out: &mut Vec<Check>) {
        let located = |kind: CheckKind, written: String, node: &Node| Check {
            kind,
            written,
            loc: node.loc,
        };
        match key {
            "contains" | "not_contains" | "matches" => {
                let (items, in_list): (Vec<&Node>, bool) = match &node.kind {
                    NodeKind::Seq(items) => {
                        if items.is_empty() {
                            self.error(node.loc, format!("`{key}:` list is empty"));
                        }
                        (items.iter().collect(), true)
                    }
                    _ => (vec![node], false),
                };
                for item in items {
                    let Some(text) = self.check_text(key, item, in_list) else {
                        continue;
                    };
                    let kind = match key {
                        "contains" => CheckKind::Contains(text.clone()),
                        "not_contains" => CheckKind::NotContains(text.clone()),
                        _ => match regex::Regex::new(&text) {
                            Ok(re) => CheckKind::Matches(re),
                            Err(e) => {
                                self.error(
                                    item.loc,
                                    format!(
                                        "`matches` is not a valid regular expression: {}",
                                        regex_error(&e)
                                    ),
                                );
                                self.help("the syntax is that of Rust's `regex` crate: no look-around, no backreferences");
                                continue;
                            }
                        },
                    };
                    out.push(located(kind, text, item));
                }
            }
            "equals" => {
                if let Some(text) = self.check_text(key, node, false) {
                    out.push(located(CheckKind::Equals(text.clone()), text, node));
                }
            }
            "json_schema" => match &node.kind {
                NodeKind::Map(_) => {
                    let schema = node.to_json();
                    match jsonschema::validator_for(&schema) {
                        Ok(_) => out.push(located(
                            CheckKind::JsonSchema(schema.clone()),
                            schema.to_string(),
                            node,
                        )),
                        Err(e) => {
                            self.error(
                                node.loc,
                                format!("`json_schema` is not a valid JSON Schema: {e}"),
                            );
                        }
                    }
                }
                _ => self.wrong_type(key, "a mapping (a JSON Schema)", node),
            },
            "max_tokens" => {
                if let Some(n) = self.whole(key, node, 1, i64::MAX.unsigned_abs()) {
                    out.push(located(CheckKind::MaxTokens(n), n.to_string(), node));
                }
            }
            key if PATH_CHECKS.contains(&key) => {
                if let Some(path) = self.path_check(key, node) {
                    let written = node
                        .scalar_text(self.source)
                        .unwrap_or_else(|| node.to_json().to_string());
                    out.push(located(CheckKind::Path(path), written, node));
                }
            }
            "max_duration" => {
                if let Some(d) = self.duration(key, node) {
                    let written = node
                        .scalar_text(self.source)
                        .unwrap_or_else(|| format!("{}s", d.as_secs_f64()));
                    out.push(located(CheckKind::MaxDuration(d), written, node));
                }
            }
            _ => {
                let Some(usd) = self.number(key, node) else {
                    return;
                };
                if usd > 0.0 {
                    let written = node.scalar_text(self.source).unwrap_or_default();
                    out.push(located(CheckKind::MaxCostUsd(usd), written, node));
                } else {
                    self.error(node.loc, format!("`{key}` must be more than zero"));
                }
            }
        }
    }

    /// The text of a text check: a string, or a number or boolean as written. `in_list` when
    /// the node is one item of a list.
    fn check_text(&mut self, key: &str, node: &Node, in_list: bool) -> Option<String> {
        if let Some(text) = node.scalar_text(self.source) {
            return Some(text);
        }
        if in_list {
            self.error(
                node.loc,
                format!(
                    "each `{key}:` item must be a string, found {}",
                    node.describe()
                ),
            );
        } else if key == "equals" {
            self.wrong_type(key, "a string", node);
        } else {
            self.wrong_type(key, "a string or a list of strings", node);
        }
        None
    }
}

/// The one line of a regex error that says what is wrong (its Display adds the pattern and a
/// caret on lines of their own).
pub(super) fn regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or_default())
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::parse_str;
    use crate::workflow::expect::CheckKind;

    #[test]
    fn lists_give_one_located_check_per_item() {
        let src = "name: t\nexpect: { max_cost_usd: 0.5 }\nsteps:\n  - run: [echo, x]\n    expect:\n      contains: [a, b]\n      max_duration: 2s\n";
        let (wf, diags) = parse_str("w.yaml", PathBuf::from("w.yaml"), src);
        assert_eq!(diags, []);
        let wf = wf.unwrap();
        let step = wf.traces[0].steps[0].expect.as_ref().unwrap();
        let seen: Vec<(&str, &str, u32, u32)> = step
            .checks
            .iter()
            .map(|c| (c.name(), c.written.as_str(), c.loc.line, c.loc.col))
            .collect();
        assert_eq!(
            seen,
            [
                ("contains", "a", 6, 18),
                ("contains", "b", 6, 21),
                ("max_duration", "2s", 7, 21)
            ]
        );
        let top = wf.expect.unwrap();
        assert!(matches!(top.checks[0].kind, CheckKind::MaxCostUsd(c) if c == 0.5));
    }
}
