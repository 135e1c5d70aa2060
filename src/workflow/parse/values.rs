//! Reading one value of a kind — text, a mapping of text or JSON, a number, a whole number in a
//! range, a duration, a boolean, a JSON Schema, a list of names — each reporting a wrong type at
//! the value, so the readers of steps, agents and tools never repeat those checks.

use std::time::Duration;

use indexmap::IndexMap;

use super::super::diagnostic::{did_you_mean, list, suggest};
use super::super::node::{Node, NodeKind};
use super::super::schema::{Api, Located, LocatedValue};
use super::{Fields, Parser};

/// What a duration looks like, for messages.
const DURATION: &str = "a duration like 30s, 2m or 1h";

/// A duration's text in milliseconds (negative when the text says so); `None` when it is not a
/// duration. A bare whole number is seconds.
fn parse_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds as f64 * 1000.0);
    }
    let span = text.parse::<jiff::Span>().ok()?;
    span.total((
        jiff::Unit::Millisecond,
        jiff::SpanRelativeTo::days_are_24_hours(),
    ))
    .ok()
    .filter(|ms| ms.is_finite())
}

impl Parser<'_> {
    /// One of a fixed set of words (`api: chat`), naming the allowed ones when it is not.
    pub(super) fn keyword(
        &mut self,
        key: &str,
        node: &Node,
        allowed: &[&str],
    ) -> Option<Located<String>> {
        let text = self.text(key, node)?;
        if allowed.contains(&text.as_str()) {
            return Some(text);
        }
        let suggestion = suggest(&text.value, allowed.iter().copied());
        let d = self.error(
            node.loc,
            format!(
                "`{key}` must be one of {}, found `{}`{}",
                list(allowed),
                text.value,
                did_you_mean(suggestion)
            ),
        );
        d.width = text.value.chars().count().max(1);
        None
    }

    /// A provider's `api:`.
    pub(super) fn api(&mut self, node: &Node) -> Option<Located<Api>> {
        let name = self.keyword("api", node, Api::NAMES)?;
        Api::from_name(&name.value).map(|api| Located::new(api, name.loc))
    }

    /// Text: a string, or a number or boolean as written.
    pub(super) fn text(&mut self, key: &str, node: &Node) -> Option<Located<String>> {
        match node.scalar_text(self.source) {
            Some(text) => Some(Located::new(text, node.loc)),
            None => {
                self.wrong_type(key, "a string", node);
                None
            }
        }
    }

    pub(super) fn opt_text(&mut self, fields: &Fields, key: &str) -> Option<Located<String>> {
        let node = fields.value(key)?;
        self.text(key, node)
    }

    pub(super) fn json_map(
        &mut self,
        fields: &Fields,
        key: &str,
    ) -> IndexMap<String, LocatedValue> {
        let mut out = IndexMap::new();
        match fields.value(key).map(|n| (n, &n.kind)) {
            None | Some((_, NodeKind::Null)) => {}
            Some((_, NodeKind::Map(entries))) => {
                for (k, v) in entries {
                    out.insert(k.value.clone(), Located::new(v.to_json(), v.loc));
                }
            }
            Some((node, _)) => self.wrong_type(key, "a mapping", node),
        }
        out
    }

    pub(super) fn text_map(
        &mut self,
        fields: &Fields,
        key: &str,
    ) -> IndexMap<String, Located<String>> {
        let mut out = IndexMap::new();
        match fields.value(key).map(|n| (n, &n.kind)) {
            None | Some((_, NodeKind::Null)) => {}
            Some((_, NodeKind::Map(entries))) => {
                for (k, v) in entries {
                    match v.scalar_text(self.source) {
                        Some(text) => {
                            out.insert(k.value.clone(), Located::new(text, v.loc));
                        }
                        None => {
                            self.error(
                                v.loc,
                                format!(
                                    "`{key}.{}` must be a string, found {}",
                                    k.value,
                                    v.describe()
                                ),
                            );
                        }
                    }
                }
            }
            Some((node, _)) => self.wrong_type(key, "a mapping", node),
        }
        out
    }

    /// A number, integer or not (the YAML parser rejects `.inf` and `.nan`).
    pub(super) fn number(&mut self, key: &str, node: &Node) -> Option<f64> {
        match node.kind {
            NodeKind::Int(i) => Some(i as f64),
            NodeKind::UInt(u) => Some(u as f64),
            NodeKind::Float(f) => Some(f),
            _ => {
                self.wrong_type(key, "a number", node);
                None
            }
        }
    }

    /// A whole number in `min..=max`; a `max` at a type's limit reads as "too large".
    pub(super) fn whole(&mut self, key: &str, node: &Node, min: u64, max: u64) -> Option<u64> {
        let n = match node.kind {
            NodeKind::Int(i) => i128::from(i),
            NodeKind::UInt(u) => i128::from(u),
            _ => {
                self.wrong_type(key, "a whole number", node);
                return None;
            }
        };
        if n < i128::from(min) {
            self.error(node.loc, format!("`{key}` must be at least {min}"));
            None
        } else if n > i128::from(max) {
            let message = if max >= u64::from(u32::MAX) {
                format!("`{key}` is too large")
            } else {
                format!("`{key}` must be at most {max}")
            };
            self.error(node.loc, message);
            None
        } else {
            u64::try_from(n).ok()
        }
    }

    pub(super) fn located_duration(&mut self, key: &str, node: &Node) -> Option<Located<Duration>> {
        self.duration(key, node).map(|d| Located::new(d, node.loc))
    }

    /// A duration: `500ms`, `30s`, `2m`, `1h30m`, or a whole number of seconds; more than zero.
    pub(super) fn duration(&mut self, key: &str, node: &Node) -> Option<Duration> {
        let parsed = match &node.kind {
            NodeKind::Int(i) => Some(*i as f64 * 1000.0),
            NodeKind::UInt(u) => Some(*u as f64 * 1000.0),
            NodeKind::Str(text) => parse_duration_ms(text),
            NodeKind::Float(_) => None,
            _ => {
                self.wrong_type(key, DURATION, node);
                return None;
            }
        };
        let Some(ms) = parsed else {
            self.error(node.loc, format!("`{key}` must be {DURATION}"));
            self.help("units: ms, s, m, h, d; they combine, as in 1h30m; a bare number is seconds");
            return None;
        };
        if ms <= 0.0 {
            self.error(node.loc, format!("`{key}` must be longer than zero"));
            return None;
        }
        match Duration::try_from_secs_f64(ms / 1000.0) {
            Ok(d) => Some(d),
            Err(_) => {
                self.error(node.loc, format!("`{key}` is too long"));
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, node: &Node) -> Option<bool> {
        match node.kind {
            NodeKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(key, "`true` or `false`", node);
                None
            }
        }
    }

    /// A JSON Schema written as a mapping (compiled by `validate`).
    pub(super) fn schema(&mut self, f: &Fields, key: &str) -> Option<LocatedValue> {
        let node = f.value(key)?;
        match &node.kind {
            NodeKind::Null => None,
            NodeKind::Map(_) => Some(Located::new(node.to_json(), node.loc)),
            _ => {
                self.wrong_type(key, "a mapping (a JSON Schema)", node);
                None
            }
        }
    }

    /// A list of names (`tools: [a, b]`, `handoffs: [x]`); `what` names one item.
    pub(super) fn names(&mut self, f: &Fields, key: &str, what: &str) -> Vec<Located<String>> {
        let mut out = Vec::new();
        let Some(node) = f.value(key) else {
            return out;
        };
        let items = match &node.kind {
            NodeKind::Seq(items) => items,
            NodeKind::Null => return out,
            _ => {
                self.wrong_type(key, &format!("a list of {what} names"), node);
                return out;
            }
        };
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        for item in items {
            match self.name_item(item) {
                Ok(name) => out.push(name),
                Err(found) => {
                    self.error(
                        item.loc,
                        format!("each `{key}:` item must be {article} {what} name, found {found}"),
                    );
                }
            }
        }
        out
    }

    /// One item of a list of names: a non-empty string (a number or boolean as written), or
    /// what was found instead, for the message.
    pub(super) fn name_item(&self, item: &Node) -> Result<Located<String>, &'static str> {
        match item.scalar_text(self.source) {
            Some(name) if !name.is_empty() => Ok(Located::new(name, item.loc)),
            Some(_) => Err("an empty string"),
            None => Err(item.describe()),
        }
    }

    /// An argv list (`run: [prog, arg]`, a tool's `command:`): not empty, and each argument a
    /// string (a number or boolean as written).
    pub(super) fn argv(&mut self, key: &str, node: &Node, items: &[Node]) -> Vec<Located<String>> {
        if items.is_empty() {
            self.error(node.loc, format!("`{key}:` list is empty"));
            self.help(format!(
                "give the program and its arguments: `{key}: [prog, arg]`"
            ));
        }
        let mut argv = Vec::new();
        for item in items {
            match item.scalar_text(self.source) {
                Some(text) => argv.push(Located::new(text, item.loc)),
                None => {
                    self.error(
                        item.loc,
                        format!(
                            "each `{key}:` argument must be a string, found {}",
                            item.describe()
                        ),
                    );
                }
            }
        }
        argv
    }
}
