//! The agent's path: which tools an agent step called (with what arguments), whom it handed off
//! to and how many model calls it made, kept by the agent loop as it makes the calls, so that
//! the path checks of `expect:` and `scores:` never read spans back. A trace's summary (for
//! the workflow's own path scores) is the steps' summaries merged, kept only when a trace score
//! needs it: a wide run does not hold every tool call's arguments otherwise.

use serde_json::{Value, json};

use crate::workflow::scores::{PathCheck, json_contains};

/// What an agent step (or a whole trace) did, in the order it happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AgentPath {
    /// Tool calls (handoffs excluded): the tool's name and its arguments (`null` when they
    /// were not JSON).
    pub calls: Vec<(String, Value)>,
    /// The agents handed off to.
    pub handoffs: Vec<String>,
    /// Model calls.
    pub turns: u32,
}

impl AgentPath {
    pub fn merge(&mut self, other: &AgentPath) {
        self.calls.extend(other.calls.iter().cloned());
        self.handoffs.extend(other.handoffs.iter().cloned());
        self.turns += other.turns;
    }

    fn called(&self) -> Vec<&str> {
        self.calls.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// One path check's result: whether it held, what was seen, and (when it failed) why.
pub(crate) struct PathVerdict {
    pub passed: bool,
    pub actual: Value,
    pub phrase: String,
}

pub(crate) fn check(check: &PathCheck, path: &AgentPath) -> PathVerdict {
    let called = path.called();
    let names = |list: &[crate::workflow::Located<String>]| -> Vec<String> {
        list.iter().map(|l| l.value.clone()).collect()
    };
    match check {
        PathCheck::ToolsCalled(want) => {
            let missing: Vec<String> = names(want)
                .into_iter()
                .filter(|w| !called.contains(&w.as_str()))
                .collect();
            PathVerdict {
                passed: missing.is_empty(),
                actual: json!(called),
                phrase: format!(
                    "expected tools {} to be called, but {} never was; called: {}",
                    names(want).join(", "),
                    missing.join(", "),
                    shown(&called)
                ),
            }
        }
        PathCheck::ToolsNotCalled(banned) => {
            let hit: Vec<String> = names(banned)
                .into_iter()
                .filter(|b| called.contains(&b.as_str()))
                .collect();
            PathVerdict {
                passed: hit.is_empty(),
                actual: json!(called),
                phrase: format!("expected tool {} not to be called", hit.join(", ")),
            }
        }
        PathCheck::ToolOrder(order) => {
            // A subsequence: each wanted tool called after the one before it.
            let mut at = 0;
            let mut matched = 0;
            for want in order {
                match called[at..].iter().position(|c| *c == want.value) {
                    Some(i) => {
                        at += i + 1;
                        matched += 1;
                    }
                    None => break,
                }
            }
            PathVerdict {
                passed: matched == order.len(),
                actual: json!(called),
                phrase: format!(
                    "expected tools to be called in the order {}, called: {}",
                    names(order).join(" → "),
                    shown(&called)
                ),
            }
        }
        PathCheck::ToolArgs { tool, subset } => {
            let calls: Vec<&Value> = path
                .calls
                .iter()
                .filter(|(n, _)| *n == tool.value)
                .map(|(_, a)| a)
                .collect();
            let passed = calls.iter().any(|a| json_contains(a, subset));
            let phrase = if calls.is_empty() {
                format!(
                    "expected a call of `{}` with arguments {subset}, but it was never called",
                    tool.value
                )
            } else {
                format!(
                    "expected a call of `{}` with arguments containing {subset}; its {} call(s) had other arguments",
                    tool.value,
                    calls.len()
                )
            };
            PathVerdict {
                passed,
                actual: json!(calls),
                phrase,
            }
        }
        PathCheck::HandedOffTo(agent) => PathVerdict {
            passed: path.handoffs.contains(&agent.value),
            actual: json!(path.handoffs),
            phrase: format!(
                "expected a handoff to `{}`, handed off to: {}",
                agent.value,
                shown(&path.handoffs.iter().map(String::as_str).collect::<Vec<_>>())
            ),
        },
        PathCheck::MaxTurns(max) => PathVerdict {
            passed: path.turns <= *max,
            actual: json!(path.turns),
            phrase: format!("expected at most {max} model calls, made {}", path.turns),
        },
    }
}

fn shown(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{Loc, Located};

    fn names(list: &[&str]) -> Vec<Located<String>> {
        list.iter()
            .map(|n| Located::new(n.to_string(), Loc { line: 1, col: 1 }))
            .collect()
    }

    fn path() -> AgentPath {
        AgentPath {
            calls: vec![
                ("lookup".into(), json!({"id": 7, "opts": {"deep": true}})),
                ("weather".into(), json!({"city": "Paris"})),
                ("lookup".into(), json!({"id": 8})),
            ],
            handoffs: vec!["expert".into()],
            turns: 3,
        }
    }

    #[test]
    fn tools_called_and_not_called() {
        let p = path();
        assert!(check(&PathCheck::ToolsCalled(names(&["weather", "lookup"])), &p).passed);
        let v = check(&PathCheck::ToolsCalled(names(&["weather", "refund"])), &p);
        assert!(!v.passed);
        assert!(v.phrase.contains("refund never was"), "{}", v.phrase);
        assert_eq!(v.actual, json!(["lookup", "weather", "lookup"]));
        assert!(check(&PathCheck::ToolsNotCalled(names(&["refund"])), &p).passed);
        assert!(
            !check(
                &PathCheck::ToolsNotCalled(names(&["refund", "weather"])),
                &p
            )
            .passed
        );
        let empty = AgentPath::default();
        let v = check(&PathCheck::ToolsCalled(names(&["lookup"])), &empty);
        assert!(
            !v.passed && v.phrase.ends_with("called: none"),
            "{}",
            v.phrase
        );
    }

    #[test]
    fn tool_order_is_a_relative_order() {
        let p = path();
        assert!(check(&PathCheck::ToolOrder(names(&["lookup", "weather"])), &p).passed);
        assert!(check(&PathCheck::ToolOrder(names(&["weather", "lookup"])), &p).passed);
        assert!(check(&PathCheck::ToolOrder(names(&["lookup", "lookup"])), &p).passed);
        assert!(!check(&PathCheck::ToolOrder(names(&["weather", "weather"])), &p).passed);
        assert!(!check(&PathCheck::ToolOrder(names(&["refund", "lookup"])), &p).passed);
    }

    #[test]
    fn tool_args_match_a_subset_of_some_call() {
        let p = path();
        let args = |tool: &str, subset: Value| PathCheck::ToolArgs {
            tool: names(&[tool]).remove(0),
            subset,
        };
        assert!(check(&args("lookup", json!({"id": 8})), &p).passed);
        assert!(check(&args("lookup", json!({"opts": {"deep": true}})), &p).passed);
        let v = check(&args("lookup", json!({"id": 9})), &p);
        assert!(!v.passed && v.phrase.contains("2 call(s)"), "{}", v.phrase);
        let v = check(&args("refund", json!({})), &p);
        assert!(
            !v.passed && v.phrase.contains("never called"),
            "{}",
            v.phrase
        );
    }

    #[test]
    fn handoffs_and_turns() {
        let p = path();
        assert!(check(&PathCheck::HandedOffTo(names(&["expert"]).remove(0)), &p).passed);
        assert!(!check(&PathCheck::HandedOffTo(names(&["billing"]).remove(0)), &p).passed);
        assert!(check(&PathCheck::MaxTurns(3), &p).passed);
        let v = check(&PathCheck::MaxTurns(2), &p);
        assert_eq!(
            (v.passed, v.phrase.as_str()),
            (false, "expected at most 2 model calls, made 3")
        );
        let mut merged = AgentPath::default();
        merged.merge(&p);
        merged.merge(&p);
        assert_eq!((merged.turns, merged.calls.len()), (6, 6));
    }
}
