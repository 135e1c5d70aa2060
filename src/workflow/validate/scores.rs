//! `scores:` and path checks: a judge names an agent that exists and has a model, a path check
//! names tools some agent has and agents that exist, and sits on an agent step (or the whole
//! trace, for scores); every template of a score is checked where it is rendered (a step's
//! scores right after the step, the trace's after the last step).

use super::super::diagnostic::{did_you_mean, list, suggest};
use super::super::expect::CheckKind;
use super::super::schema::{Located, Step, StepKind};
use super::super::scores::{PathCheck, ScoreDef, ScoreKind};
use super::{Scope, Validator};

impl<'w> Validator<'w> {
    /// The scores of a step (`Some(step)`) or of the trace (`None`), and the path checks in a
    /// step's `expect:`.
    pub(super) fn scores(&mut self, scores: &[ScoreDef], step: Option<&Step>, scope: &Scope) {
        let on_agent = step.is_none_or(|s| matches!(s.kind, StepKind::Agent { .. }));
        if let Some(step) = step
            && let Some(expect) = &step.expect
        {
            for check in &expect.checks {
                if let CheckKind::Path(path) = &check.kind {
                    self.path_check(path, (check.loc, 1), on_agent, step);
                }
            }
        }
        for score in scores {
            match &score.kind {
                ScoreKind::Equals { value, .. } => self.value(value, scope),
                ScoreKind::Within { of, .. } => self.value(of, scope),
                ScoreKind::Contains(t) | ScoreKind::NotContains(t) | ScoreKind::Matches(t) => {
                    self.template(t, scope)
                }
                ScoreKind::JsonSchema(_) => {}
                ScoreKind::Path(path) => match step {
                    Some(step) => {
                        let width = score.name.value.chars().count().max(1);
                        self.path_check(path, (score.name.loc, width), on_agent, step)
                    }
                    None => self.path_names(path),
                },
                ScoreKind::Command { argv, .. } => {
                    for arg in argv {
                        self.template(arg, scope);
                    }
                }
                ScoreKind::Judge(judge) => {
                    self.template(&judge.rubric, scope);
                    if let Some(mock) = &judge.mock {
                        self.template(mock, scope);
                    }
                    self.judge_agent(&judge.agent);
                }
            }
        }
    }

    fn path_check(
        &mut self,
        path: &PathCheck,
        (loc, width): (super::super::diagnostic::Loc, usize),
        on_agent: bool,
        step: &Step,
    ) {
        if !on_agent {
            self.report(
                loc,
                format!(
                    "`{}` checks the agent's path: it applies to `agent:` steps, not `{}:` steps",
                    path.key(),
                    step.form()
                ),
                Some(
                    "put it on the agent step, or in the workflow's top-level `scores:` for the whole trace"
                        .into(),
                ),
                width,
            );
            return;
        }
        self.path_names(path);
    }

    /// The tools a path check names belong to some agent; the agent it names exists.
    fn path_names(&mut self, path: &PathCheck) {
        let wf = self.wf;
        let offered: Vec<&str> = wf
            .agents
            .values()
            .flat_map(|a| a.tools.iter().map(|t| t.as_str()))
            .collect();
        for tool in path.tools() {
            // A tool of an agent's MCP server is known by name only at run time.
            if offered.contains(&tool.as_str())
                || wf
                    .agents
                    .values()
                    .any(|a| self.mcp_may_offer(a, &tool.value))
            {
                continue;
            }
            let suggestion = suggest(&tool.value, offered.iter().copied());
            let help = match suggestion {
                Some(_) => None,
                None if offered.is_empty() => {
                    Some("no agent lists any `tools:`, so no tool can be called".to_string())
                }
                None => Some(format!("tools the agents have: {}", list(&offered))),
            };
            self.report(
                tool.loc,
                format!(
                    "no agent has the tool `{}`{}",
                    tool.value,
                    did_you_mean(suggestion)
                ),
                help,
                tool.value.chars().count().max(1),
            );
        }
        if let PathCheck::HandedOffTo(agent) = path
            && !wf.agents.contains_key(&agent.value)
        {
            self.unknown_agent(agent);
        }
    }

    fn judge_agent(&mut self, agent: &Located<String>) {
        let Some(def) = self.wf.agents.get(&agent.value) else {
            self.unknown_agent(agent);
            return;
        };
        if def.model.is_none() && self.wf.model.is_none() {
            self.report(
                agent.loc,
                format!(
                    "the judge `{}` has no model: set `model:` on the agent or at the top level",
                    agent.value
                ),
                None,
                agent.value.chars().count().max(1),
            );
        }
    }
}
