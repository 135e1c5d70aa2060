//! The walk through the steps in execution order, which is what decides what each template can
//! see: unique ids, events inside spans, a `parallel:` step's branches blind to each other, a
//! `foreach:` whose inner steps are hidden after the loop, and `if:` conditions.

use std::collections::HashSet;

use serde_json::Value;

use super::super::diagnostic::Loc;
use super::super::schema::{Command, Located, LocatedValue, Step, StepKind};
use super::super::template::{is_template, single_expression};
use super::templates::error_text;
use super::{Checks, Hidden, Only, Reach, Scope, Validator};

/// What a step's `session:` may reference: it is rendered when the trace starts (the trace's
/// group id defaults to it).
const SESSION: Only = Only {
    roots: &["vars"],
    message: "a `session:` can only use `vars`",
    help: "the session key is rendered when the trace starts, because the trace's group id defaults to it",
};

impl<'w> Validator<'w> {
    pub(super) fn duplicate_ids(&mut self) {
        let mut first: Vec<(&str, Loc)> = Vec::new();
        for step in self.wf.all_steps() {
            let Some(id) = &step.id else { continue };
            match first.iter().find(|(name, _)| *name == id.value) {
                Some((_, loc)) => {
                    let message = format!(
                        "duplicate step id `{}` (first used on line {})",
                        id.value, loc.line
                    );
                    let help = "step ids are unique across the file; rename one of them";
                    self.report(id.loc, message, Some(help.into()), id.value.chars().count());
                }
                None => first.push((&id.value, id.loc)),
            }
        }
    }

    /// Checks `steps` in execution order; `in_span` tells whether a span encloses them (a
    /// `span:`, a `parallel:` step, or the item span of a `foreach:`).
    pub(super) fn steps(&mut self, steps: &[Step], reach: &mut Reach, in_span: bool) {
        for step in steps {
            let current = step.id.as_ref().map(|id| id.as_str());
            let scope = Scope {
                done: &reach.done,
                hidden: Some(&reach.hidden),
                locals: &reach.locals,
                current,
                checks: Checks::All,
                note: None,
                only: None,
            };
            if let Some(name) = &step.name {
                self.template(name, &scope);
            }
            if let Some(condition) = &step.condition {
                self.condition(condition, &scope);
            }
            match &step.kind {
                StepKind::Agent {
                    agent,
                    input,
                    mock,
                    session,
                } => {
                    self.agent_use(agent, step, &scope);
                    self.template(input, &scope);
                    if let Some(session) = session {
                        let scope = Scope {
                            done: &HashSet::new(),
                            hidden: None,
                            locals: &[],
                            current,
                            checks: Checks::All,
                            note: None,
                            only: Some(&SESSION),
                        };
                        self.template(session, &scope);
                    }
                    if let Some(turns) = mock {
                        self.mock(agent, turns);
                    }
                }
                StepKind::Run { command, env } => {
                    match command {
                        Command::Script(script) => self.script(script),
                        Command::Argv(argv) => {
                            for arg in argv {
                                self.template(arg, &scope);
                            }
                        }
                    }
                    for value in env.values() {
                        self.template(value, &scope);
                    }
                }
                StepKind::Span {
                    name,
                    events,
                    steps: children,
                } => {
                    let scope = Scope {
                        note: Some("a span's name and events are rendered when the span starts"),
                        ..scope
                    };
                    self.template(name, &scope);
                    for event in events {
                        self.event(event, &scope);
                    }
                    self.steps(children, reach, true);
                }
                StepKind::Event(event) => {
                    if !in_span {
                        self.report(
                            step.loc,
                            "an `event:` step must be inside a `span:` block; events belong to the enclosing span".into(),
                            Some("move it into the `steps:` of a `span:` (or of a `foreach:`), or list it under that span's `events:`".into()),
                            1,
                        );
                    }
                    self.event(event, &scope);
                }
                StepKind::Parallel { branches, .. } => self.parallel(branches, reach),
                StepKind::Foreach {
                    items,
                    as_name,
                    steps: children,
                    ..
                } => {
                    let scope = Scope {
                        note: Some("a `foreach:` list is rendered before the loop starts"),
                        ..scope
                    };
                    self.foreach_items(items, &scope);
                    let mut inner = reach.clone();
                    inner.locals.push(as_name.clone());
                    self.steps(children, &mut inner, true);
                    // Each item runs the steps again: after the loop only its output is known.
                    let loop_id = current.map(str::to_string);
                    for id in ids_within(children) {
                        reach.hidden.insert(id, Hidden::InLoop(loop_id.clone()));
                    }
                }
            }
            if !step.scores.is_empty() || step.expect.is_some() {
                let scope = Scope {
                    done: &reach.done,
                    hidden: Some(&reach.hidden),
                    locals: &reach.locals,
                    current,
                    checks: Checks::All,
                    note: Some("a step's scores run right after it"),
                    only: None,
                };
                self.scores(&step.scores, Some(step), &scope);
            }
            if let Some(id) = current {
                reach.done.insert(id.to_string());
            }
        }
    }

    /// Branches run at the same time: each sees what ran before the `parallel:` step but none
    /// of the others; the steps after it see every branch.
    fn parallel(&mut self, branches: &[Step], reach: &mut Reach) {
        let mut done = reach.done.clone();
        let mut in_loops = Vec::new();
        // Each branch's ids, found once: walking every other branch again for each branch made
        // a wide `parallel:` quadratic in its size.
        // Flat, with the branch each comes from: a wide fan-out of steps without ids (the usual
        // kind) costs nothing here, where a loop over every other branch cost n² steps.
        let ids: Vec<(usize, String)> = branches
            .iter()
            .enumerate()
            .flat_map(|(j, b)| {
                ids_within(std::slice::from_ref(b))
                    .into_iter()
                    .map(move |id| (j, id))
            })
            .collect();
        for (i, branch) in branches.iter().enumerate() {
            let mut inner = reach.clone();
            for (j, id) in &ids {
                if *j != i {
                    inner.hidden.insert(id.clone(), Hidden::Beside);
                }
            }
            self.steps(std::slice::from_ref(branch), &mut inner, true);
            done.extend(inner.done);
            in_loops.extend(
                inner
                    .hidden
                    .into_iter()
                    .filter(|(_, why)| matches!(why, Hidden::InLoop(_))),
            );
        }
        reach.done = done;
        reach.hidden.extend(in_loops);
    }

    /// `foreach:` items: a list (whose strings are templates), or one expression giving a list.
    fn foreach_items(&mut self, items: &LocatedValue, scope: &Scope) {
        match &items.value {
            Value::String(text) => {
                if single_expression(text).is_none() {
                    let help = if is_template(text) {
                        "the expression must give a list; text around `{{ }}` would make a string"
                    } else {
                        "write the items as a YAML list (`foreach: [a, b]`) or name one with `{{ vars.topics }}`"
                    };
                    self.report(
                        items.loc,
                        "`foreach:` must be a list or a single expression like `{{ vars.topics }}`"
                            .into(),
                        Some(help.into()),
                        1,
                    );
                }
                self.check(text, items.loc, scope);
            }
            Value::Array(_) => self.value(items, scope),
            // Anything else was reported by the parser.
            _ => {}
        }
    }

    /// `if:` — one expression, bare (`steps.check.status == 'ok'`) or in `{{ }}`.
    fn condition(&mut self, condition: &Located<String>, scope: &Scope) {
        let text = condition.value.trim();
        if text.is_empty() {
            return; // reported by the parser
        }
        let expr = single_expression(text).unwrap_or(text);
        match self.templates.expression_uses(expr) {
            Ok(uses) => {
                self.paths(&uses.variables, condition.loc, scope);
                self.unknown(&uses.unknown, condition.loc, scope);
                self.statuses(expr, condition.loc);
            }
            Err(err) => {
                let help = is_template(text).then(|| {
                    "write the condition bare (`steps.check.status == 'ok'`) or as one `{{ ... }}`"
                        .to_string()
                });
                self.report(
                    condition.loc,
                    format!("`if:` is not a valid expression: {}", error_text(&err)),
                    help,
                    1,
                );
            }
        }
    }
}

/// The ids of `steps` and of every step nested in them.
fn ids_within(steps: &[Step]) -> Vec<String> {
    let mut out = Vec::new();
    for step in steps {
        if let Some(id) = &step.id {
            out.push(id.value.clone());
        }
        match &step.kind {
            StepKind::Span { steps, .. } | StepKind::Foreach { steps, .. } => {
                out.extend(ids_within(steps))
            }
            StepKind::Parallel { branches, .. } => out.extend(ids_within(branches)),
            StepKind::Agent { .. } | StepKind::Run { .. } | StepKind::Event(_) => {}
        }
    }
    out
}
