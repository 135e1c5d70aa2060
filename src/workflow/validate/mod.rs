//! Checks the relations inside a parsed workflow: unique step ids, known agents with a model,
//! tools, handoffs and scripted (`mock:`) turns that name what exists, JSON Schemas that compile,
//! events inside spans, no templates in shell scripts, `if:` conditions, `foreach:` lists, and
//! every template's syntax and references, each against the point of execution where it is
//! rendered: a step inside a `foreach:` sees the loop's variable and the earlier steps of the
//! same item, but the steps after the loop only see the loop's output; a parallel branch cannot
//! see the branches beside it.
//!
//! Every problem is reported in one pass, each at the location of the value that holds it.
//!
//! The checks are methods of one `Validator` spread over this folder by concern: this file
//! holds the entry point and the walk's state (what a point of execution can see); `flow` walks
//! the steps in execution order (ids, spans, `parallel:`, `foreach:`, `if:`); `agents` checks
//! agents, tools, handoffs and scripted turns; `mcp` the MCP servers agents use and their tool
//! filters; `templates` checks each template's syntax and every reference it makes; `scores`
//! checks `scores:` and the path checks of `expect:`.

use std::collections::{HashMap, HashSet};

use indexmap::IndexSet;

use super::diagnostic::Loc;
use super::template::Templates;
use super::{Diagnostic, Workflow};

mod agents;
mod flow;
mod mcp;
mod scores;
mod templates;
#[cfg(test)]
mod tests;

pub fn validate(wf: &Workflow) -> Vec<Diagnostic> {
    let mut v = Validator {
        wf,
        file: wf.path.display().to_string(),
        templates: Templates::new(),
        all_ids: wf
            .all_steps()
            .into_iter()
            .filter_map(|s| s.id.as_ref().map(|id| id.value.clone()))
            .collect(),
        seen: HashSet::new(),
        diagnostics: Vec::new(),
    };
    v.duplicate_ids();
    v.tools();
    v.agent_defs();
    v.mcp();
    v.reasoning();
    v.agents();
    let before_any = Scope {
        done: &HashSet::new(),
        hidden: None,
        locals: &[],
        current: None,
        checks: Checks::All,
        note: Some("the top-level `group_id` and `metadata` are rendered before any step runs"),
        only: None,
    };
    if let Some(group_id) = &wf.group_id {
        v.template(group_id, &before_any);
    }
    for value in wf.metadata.values() {
        v.value(value, &before_any);
    }
    let mut reach = Reach::default();
    for trace in &wf.traces {
        let scope = Scope {
            done: &reach.done,
            hidden: Some(&reach.hidden),
            locals: &[],
            current: None,
            checks: Checks::All,
            note: Some("a trace's name and metadata are rendered when the trace starts"),
            only: None,
        };
        v.template(&trace.name, &scope);
        for value in trace.metadata.values() {
            v.value(value, &scope);
        }
        v.steps(&trace.steps, &mut reach, false);
    }
    let after_all = Scope {
        done: &reach.done,
        hidden: Some(&reach.hidden),
        locals: &[],
        current: None,
        checks: Checks::All,
        note: None,
        only: None,
    };
    v.scores(&wf.scores, None, &after_all);
    v.diagnostics.sort_by_key(|d| d.loc);
    v.diagnostics
}

/// Which references a template check looks at.
#[derive(Clone, Copy, PartialEq)]
enum Checks {
    All,
    /// Syntax, roots, `vars` and `trace`, but not `steps` (checked per use).
    NotSteps,
    /// Only `steps` references (the rest was checked once).
    OnlySteps,
}

/// Why a step that has finished by some point still cannot be referenced there.
#[derive(Clone, Debug)]
enum Hidden {
    /// It is inside a `foreach:` (the id of the loop step, if it has one): it ran once per item.
    InLoop(Option<String>),
    /// It is in a parallel branch beside the one being checked: it runs at the same time.
    Beside,
}

/// What the steps at one point of the walk through the file can see.
#[derive(Clone, Debug, Default)]
struct Reach {
    /// Ids of the steps that have finished, and whose outputs can be used.
    done: HashSet<String>,
    hidden: HashMap<String, Hidden>,
    /// The `as:` names of the loops around, outermost first.
    locals: Vec<String>,
}

/// The point of execution at which a template is rendered.
struct Scope<'s> {
    /// Ids of the steps that have finished by then.
    done: &'s HashSet<String>,
    /// Steps that have run but cannot be referenced from here, and why.
    hidden: Option<&'s HashMap<String, Hidden>>,
    /// Loop variables (`item`) defined here.
    locals: &'s [String],
    /// The step being rendered, which cannot use its own output.
    current: Option<&'s str>,
    checks: Checks,
    /// Why a step has not run yet, for the help line.
    note: Option<&'s str>,
    /// The only variables this template may use, when narrower than usual.
    only: Option<&'s Only>,
}

/// A narrower set of template roots, and what to say about a reference outside it.
struct Only {
    roots: &'static [&'static str],
    message: &'static str,
    help: &'static str,
}

struct Validator<'w> {
    wf: &'w Workflow,
    file: String,
    templates: Templates,
    /// Every step id of the file, in file order.
    all_ids: IndexSet<String>,
    /// (location, message) pairs already reported, so a shared template reports once.
    seen: HashSet<(Loc, String)>,
    diagnostics: Vec<Diagnostic>,
}

impl<'w> Validator<'w> {
    fn report(&mut self, loc: Loc, message: String, help: Option<String>, width: usize) {
        if !self.seen.insert((loc, message.clone())) {
            return;
        }
        let mut d = Diagnostic::new(&self.file, loc, message).width(width);
        d.help = help;
        self.diagnostics.push(d);
    }
}
