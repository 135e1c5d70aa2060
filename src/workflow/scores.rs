//! `scores:` — how good a run (or one step of it) was, as opposed to `expect:`, which decides
//! whether it worked. A failing score never fails the step or the run: it is a measurement,
//! recorded as an evaluation event on a `score` span, that `agentrace eval` aggregates.
//!
//! The types here are what the parser (`parse/scores.rs`) builds and the engine
//! (`engine/scores.rs`) runs. Also here: the checks on the agent's path ([`PathCheck`]), which
//! `expect:` accepts too, and the small JSON path syntax (`$.a.b[0]`) the checks read.

use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;

use super::diagnostic::{Loc, Located, LocatedValue};

/// The keys of one `scores:` item.
pub const SCORE_KEYS: &[&str] = &[
    "name",
    "threshold",
    "timeout",
    "equals",
    "contains",
    "not_contains",
    "matches",
    "json_schema",
    "json_path",
    "within",
    "tools_called",
    "tools_not_called",
    "tool_order",
    "tool_args",
    "handed_off_to",
    "max_turns",
    "command",
    "judge",
];

/// The keys that choose a score's kind (`json_path` goes with `equals` or `within`).
pub const SCORE_KINDS: &[&str] = &[
    "equals",
    "contains",
    "not_contains",
    "matches",
    "json_schema",
    "within",
    "tools_called",
    "tools_not_called",
    "tool_order",
    "tool_args",
    "handed_off_to",
    "max_turns",
    "command",
    "judge",
];

/// The checks on the agent's path, as keys of `scores:` items and of `expect:`.
pub const PATH_CHECKS: &[&str] = &[
    "tools_called",
    "tools_not_called",
    "tool_order",
    "tool_args",
    "handed_off_to",
    "max_turns",
];

/// How long a `command:` scorer may run unless it says otherwise.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// One `scores:` item.
#[derive(Clone, Debug)]
pub struct ScoreDef {
    /// Unique in its list; the name of its span and of its evaluation event.
    pub name: Located<String>,
    /// A numeric score passes at or above it.
    pub threshold: Option<f64>,
    pub kind: ScoreKind,
    /// Where the item starts.
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum ScoreKind {
    /// The output (or the value at `path` of the JSON output) equals this value. A string is a
    /// template; compared with the output trimmed.
    Equals {
        path: Option<JsonPath>,
        value: LocatedValue,
    },
    /// The output contains this text (a template).
    Contains(Located<String>),
    NotContains(Located<String>),
    /// The output matches this regular expression (a template, compiled once rendered).
    Matches(Located<String>),
    /// The output is JSON valid against this schema.
    JsonSchema(LocatedValue),
    /// The number (the output, or the value at `path`) is within `tolerance` of `of`.
    Within {
        path: Option<JsonPath>,
        /// A number, or a template that gives one.
        of: LocatedValue,
        tolerance: f64,
    },
    /// A check on the tool calls, handoffs and model calls of the agent step (or the trace).
    Path(PathCheck),
    /// A process: the case, the outputs and the reference as JSON on stdin, the score on stdout.
    Command {
        /// argv; each element a template that becomes exactly one argument.
        argv: Vec<Located<String>>,
        timeout: Duration,
    },
    /// A judge agent asked for a structured verdict.
    Judge(JudgeDef),
}

impl ScoreKind {
    /// The key that chose the kind, for messages.
    pub fn key(&self) -> &'static str {
        match self {
            ScoreKind::Equals { path: Some(_), .. } => "json_path",
            ScoreKind::Equals { .. } => "equals",
            ScoreKind::Contains(_) => "contains",
            ScoreKind::NotContains(_) => "not_contains",
            ScoreKind::Matches(_) => "matches",
            ScoreKind::JsonSchema(_) => "json_schema",
            ScoreKind::Within { .. } => "within",
            ScoreKind::Path(check) => check.key(),
            ScoreKind::Command { .. } => "command",
            ScoreKind::Judge(_) => "judge",
        }
    }
}

#[derive(Clone, Debug)]
pub struct JudgeDef {
    /// An agent of `agents:` with a model.
    pub agent: Located<String>,
    /// A template: what the judge is asked to grade.
    pub rubric: Located<String>,
    pub scale: JudgeScale,
    /// The offline model's reply (a template, so that it can follow the case); ignored by real
    /// models, like a step's `mock:`.
    pub mock: Option<Located<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum JudgeScale {
    /// The judge picks one label; the score is its value.
    Choices(IndexMap<String, f64>),
    /// The judge gives a number in `[min, max]`.
    Range(f64, f64),
}

/// A check on the agent's path: which tools it called, in which order and with what, whom it
/// handed off to, how many model calls it made.
#[derive(Clone, Debug, PartialEq)]
pub enum PathCheck {
    ToolsCalled(Vec<Located<String>>),
    ToolsNotCalled(Vec<Located<String>>),
    /// These tools were called in this relative order (other calls may come between).
    ToolOrder(Vec<Located<String>>),
    /// Some call of `tool` had arguments containing `subset` (recursively).
    ToolArgs {
        tool: Located<String>,
        subset: Value,
    },
    HandedOffTo(Located<String>),
    /// Model calls of the agent (across handoffs) at most this many.
    MaxTurns(u32),
}

impl PathCheck {
    pub fn key(&self) -> &'static str {
        match self {
            PathCheck::ToolsCalled(_) => "tools_called",
            PathCheck::ToolsNotCalled(_) => "tools_not_called",
            PathCheck::ToolOrder(_) => "tool_order",
            PathCheck::ToolArgs { .. } => "tool_args",
            PathCheck::HandedOffTo(_) => "handed_off_to",
            PathCheck::MaxTurns(_) => "max_turns",
        }
    }

    /// The tool names the check refers to, with where they are written.
    pub fn tools(&self) -> Vec<&Located<String>> {
        match self {
            PathCheck::ToolsCalled(t) | PathCheck::ToolsNotCalled(t) | PathCheck::ToolOrder(t) => {
                t.iter().collect()
            }
            PathCheck::ToolArgs { tool, .. } => vec![tool],
            PathCheck::HandedOffTo(_) | PathCheck::MaxTurns(_) => Vec::new(),
        }
    }
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq)]
pub enum PathPart {
    Key(String),
    Index(usize),
}

/// A JSON path: `$`, then `.key`, `["key"]` or `[N]` steps.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    pub written: String,
    pub parts: Vec<PathPart>,
}

impl JsonPath {
    /// Parses `$.a.b[0]`, `$["a b"][2]`; the reason when it is not of that form.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let rest = text
            .trim()
            .strip_prefix('$')
            .ok_or("a JSON path starts with `$`")?;
        let chars: Vec<char> = rest.chars().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    if end == start {
                        return Err(format!("an empty key after `.` at character {}", i + 2));
                    }
                    parts.push(PathPart::Key(chars[start..end].iter().collect()));
                    i = end;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i)
                        .ok_or("a `[` without its `]`")?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    let quoted = inner
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')));
                    match (quoted, inner.parse::<usize>()) {
                        (Some(key), _) => parts.push(PathPart::Key(key.to_string())),
                        (None, Ok(n)) => parts.push(PathPart::Index(n)),
                        (None, Err(_)) => {
                            return Err(format!(
                                "`[{inner}]` is neither an index nor a quoted key"
                            ));
                        }
                    }
                    i = close + 1;
                }
                c => {
                    return Err(format!(
                        "unexpected `{c}`: steps are `.key`, `[\"key\"]` or `[N]`"
                    ));
                }
            }
        }
        Ok(JsonPath {
            written: text.trim().to_string(),
            parts,
        })
    }

    /// The value at this path, if there is one.
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.parts.iter().try_fold(value, |v, part| match part {
            PathPart::Key(k) => v.get(k),
            PathPart::Index(n) => v.get(n),
        })
    }
}

/// Whether `value` contains `subset`: every key of an object subset is in the value with a
/// value containing the subset's, every item of an array subset is contained by some item of
/// the array, and anything else is equal (numbers by value, `1` and `1.0` alike).
pub fn json_contains(value: &Value, subset: &Value) -> bool {
    match (value, subset) {
        (Value::Object(v), Value::Object(s)) => s
            .iter()
            .all(|(k, sv)| v.get(k).is_some_and(|vv| json_contains(vv, sv))),
        (Value::Array(v), Value::Array(s)) => {
            s.iter().all(|sv| v.iter().any(|vv| json_contains(vv, sv)))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_paths_read_keys_quoted_keys_and_indexes() {
        let doc = json!({"a": {"b": [10, {"c d": true}]}});
        let p = JsonPath::parse("$.a.b[0]").unwrap();
        assert_eq!(p.get(&doc), Some(&json!(10)));
        let p = JsonPath::parse("$.a.b[1][\"c d\"]").unwrap();
        assert_eq!(p.get(&doc), Some(&json!(true)));
        assert_eq!(JsonPath::parse("$").unwrap().get(&doc), Some(&doc));
        assert_eq!(JsonPath::parse("$.a.x").unwrap().get(&doc), None);
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse("$.a..b").is_err());
        assert!(JsonPath::parse("$.a[x]").is_err());
        assert!(JsonPath::parse("$.a[0").is_err());
    }

    #[test]
    fn json_subsets_are_recursive() {
        let args = json!({"city": "Paris", "opts": {"unit": "C", "days": 3}, "tags": ["a", "b"]});
        assert!(json_contains(&args, &json!({"city": "Paris"})));
        assert!(json_contains(&args, &json!({"opts": {"unit": "C"}})));
        assert!(json_contains(&args, &json!({"opts": {"days": 3.0}})));
        assert!(json_contains(&args, &json!({"tags": ["b"]})));
        assert!(!json_contains(&args, &json!({"city": "Rome"})));
        assert!(!json_contains(&args, &json!({"opts": {"unit": "F"}})));
        assert!(!json_contains(&args, &json!({"missing": 1})));
    }
}
