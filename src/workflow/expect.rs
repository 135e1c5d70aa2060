//! `expect:` — assertions on what a step (or the whole run) produced: its output text, its
//! tokens and its time, and (agent steps) the path its agent took. Parsed with locations (`parse/expect.rs`); checked by the engine
//! (`engine/expect.rs`), which records each result as an `expectation` event.

use std::time::Duration;

use serde_json::Value;

use super::diagnostic::Loc;
use super::scores::PathCheck;

/// The keys of a step's `expect:`.
pub const STEP_CHECKS: &[&str] = &[
    "contains",
    "not_contains",
    "matches",
    "equals",
    "json_schema",
    "max_tokens",
    "max_duration",
    "tools_called",
    "tools_not_called",
    "tool_order",
    "tool_args",
    "handed_off_to",
    "max_turns",
];

/// The keys of the workflow's `expect:` (the run as a whole).
pub const WORKFLOW_CHECKS: &[&str] = &[
    "contains",
    "not_contains",
    "matches",
    "equals",
    "json_schema",
    "max_tokens",
    "max_duration",
    "max_cost_usd",
];

/// Every check of one `expect:` block, in file order (a list value gives one check per item).
#[derive(Clone, Debug)]
pub struct Expect {
    pub checks: Vec<Check>,
    /// Where the `expect:` mapping starts.
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub struct Check {
    pub kind: CheckKind,
    /// The value as written (`"2s"`, `refund`), for events and messages.
    pub written: String,
    /// Where the value (or the list item) is written.
    pub loc: Loc,
}

#[derive(Clone, Debug)]
pub enum CheckKind {
    /// The output contains this text.
    Contains(String),
    /// The output does not contain this text.
    NotContains(String),
    /// The output matches this regular expression (anywhere; anchor it with `^…$`).
    Matches(regex::Regex),
    /// The output, without leading and trailing whitespace, is this text.
    Equals(String),
    /// The output parses as JSON and the value validates against this schema.
    JsonSchema(Value),
    /// The step's (or the run's) model calls used at most this many tokens in all.
    MaxTokens(u64),
    /// The step (or the run) took at most this long.
    MaxDuration(Duration),
    /// The run's model calls cost at most this much (workflow level only).
    MaxCostUsd(f64),
    /// A check on the agent's path (agent steps only): see [`PathCheck`].
    Path(PathCheck),
}

impl Check {
    /// The check's key (`contains`, `max_tokens`, …): the `check` attribute of its event.
    pub fn name(&self) -> &'static str {
        match &self.kind {
            CheckKind::Contains(_) => "contains",
            CheckKind::NotContains(_) => "not_contains",
            CheckKind::Matches(_) => "matches",
            CheckKind::Equals(_) => "equals",
            CheckKind::JsonSchema(_) => "json_schema",
            CheckKind::MaxTokens(_) => "max_tokens",
            CheckKind::MaxDuration(_) => "max_duration",
            CheckKind::MaxCostUsd(_) => "max_cost_usd",
            CheckKind::Path(p) => p.key(),
        }
    }

    /// Whether the check reads the output text (its `actual` is content).
    pub fn is_text(&self) -> bool {
        matches!(
            self.kind,
            CheckKind::Contains(_)
                | CheckKind::NotContains(_)
                | CheckKind::Matches(_)
                | CheckKind::Equals(_)
                | CheckKind::JsonSchema(_)
                | CheckKind::Path(PathCheck::ToolArgs { .. })
        )
    }
}
