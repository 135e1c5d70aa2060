//! The template context of a run: `vars`, `steps.<id>.{output,status}`, `trace.{id,group_id}`,
//! `case` (the evaluated case, for scores above all) and, inside a `foreach:`, the loop variable.
//!
//! Step results live behind one shared object so that adding a step's output is O(1) and a
//! template render does not rebuild the context. A loop iteration gets its own results layered
//! over the enclosing ones, so that iterations running at once do not see each other's steps.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use crate::workflow::template::Output;

/// The results of the steps that have run so far, visible as `steps` in templates.
#[derive(Debug, Default)]
pub struct StepResults {
    entries: RwLock<HashMap<String, Value>>,
    /// Shared so that a reader copies it without allocating under the lock: a template thread
    /// that spends its memory budget stops for good (see `workflow::budget`), and must not
    /// stop holding a lock the engine needs.
    order: RwLock<Arc<Vec<String>>>,
    /// The output of the step that finished last (a loop iteration's result).
    last: RwLock<Option<Output>>,
    parent: Option<Arc<StepResults>>,
}

impl StepResults {
    /// Results that fall back to `parent` for steps they do not hold.
    pub fn layered(parent: Arc<StepResults>) -> Self {
        StepResults {
            parent: Some(parent),
            ..StepResults::default()
        }
    }

    pub fn insert(&self, id: &str, output: &Output, status: &str) {
        let value = minijinja::context! { output => output.to_value(), status => status };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.insert(id.to_string(), value).is_none() {
            Arc::make_mut(&mut self.order.write().unwrap_or_else(|p| p.into_inner()))
                .push(id.to_string());
        }
    }

    pub fn set_last(&self, output: &Output) {
        *self.last.write().unwrap_or_else(|p| p.into_inner()) = Some(output.clone());
    }

    pub fn last(&self) -> Option<Output> {
        self.last.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lookup(&self, key: &str) -> Option<Value> {
        let own = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned();
        own.or_else(|| self.parent.as_ref().and_then(|p| p.lookup(key)))
    }

    fn keys(&self) -> Vec<String> {
        let mut keys = self.parent.as_ref().map(|p| p.keys()).unwrap_or_default();
        let own = self.order.read().unwrap_or_else(|p| p.into_inner()).clone();
        for k in own.iter() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }
}

impl Object for StepResults {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key.as_str()?)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.keys().into_iter().map(Value::from).collect())
    }
}

/// Everything a template of one trace can see.
#[derive(Clone)]
pub struct Context {
    pub vars: Value,
    pub steps: Arc<StepResults>,
    pub trace_id: String,
    pub group_id: Option<String>,
    /// Loop variables (`item`, or a foreach's `as:` name), innermost last.
    pub locals: Vec<(String, Value)>,
    /// The evaluated case (`case.id` and its reference fields); an empty mapping outside
    /// `agentrace eval`.
    pub case: Value,
}

impl Context {
    /// The context of one loop iteration: its own step results and its loop variable.
    pub fn iteration(&self, name: &str, item: Value) -> Context {
        let mut locals = self.locals.clone();
        locals.retain(|(n, _)| n != name);
        locals.push((name.to_string(), item));
        Context {
            vars: self.vars.clone(),
            steps: Arc::new(StepResults::layered(self.steps.clone())),
            trace_id: self.trace_id.clone(),
            group_id: self.group_id.clone(),
            locals,
            case: self.case.clone(),
        }
    }

    /// Whether this is inside a loop (its step results are per iteration).
    pub fn in_loop(&self) -> bool {
        !self.locals.is_empty()
    }

    pub fn value(&self) -> Value {
        let mut map: BTreeMap<String, Value> = BTreeMap::new();
        map.insert("vars".into(), self.vars.clone());
        map.insert("steps".into(), Value::from_dyn_object(self.steps.clone()));
        map.insert(
            "trace".into(),
            minijinja::context! {
                id => self.trace_id.clone(),
                group_id => self.group_id.clone(),
            },
        );
        map.insert("case".into(), self.case.clone());
        for (name, value) in &self.locals {
            map.insert(name.clone(), value.clone());
        }
        Value::from(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_see_outer_steps_but_not_each_other() {
        let ctx = Context {
            vars: Value::from(()),
            steps: Arc::new(StepResults::default()),
            trace_id: "t".into(),
            group_id: None,
            locals: Vec::new(),
            case: Value::from(()),
        };
        ctx.steps.insert("before", &Output::Text("b".into()), "ok");
        let one = ctx.iteration("item", Value::from("x"));
        let two = ctx.iteration("item", Value::from("y"));
        one.steps.insert("inner", &Output::Text("1".into()), "ok");
        let t = crate::workflow::template::Templates::new();
        assert_eq!(
            t.render(
                "{{ item }} {{ steps.before.output }} {{ steps.inner.output }}",
                &one.value()
            )
            .unwrap(),
            "x b 1"
        );
        assert!(t.render("{{ steps.inner.output }}", &two.value()).is_err());
        assert!(!ctx.in_loop() && one.in_loop());
    }
}
