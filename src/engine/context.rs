//! The template context of a run: `vars`, `steps.<id>.{output,status}` and `trace.{id,group_id}`.
//!
//! Step results live behind one shared object so that adding a step's output is O(1) and a
//! template render does not rebuild the context.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr};

use crate::workflow::template::Output;

/// The results of the steps that have run so far, visible as `steps` in templates.
#[derive(Debug, Default)]
pub struct StepResults {
    entries: RwLock<HashMap<String, Value>>,
    order: RwLock<Vec<String>>,
}

impl StepResults {
    pub fn insert(&self, id: &str, output: &Output, status: &str) {
        let value = minijinja::context! { output => output.to_value(), status => status };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if entries.insert(id.to_string(), value).is_none() {
            self.order
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(id.to_string());
        }
    }
}

impl Object for StepResults {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self
            .order
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|k| Value::from(k.as_str()))
            .collect();
        Enumerator::Values(keys)
    }
}

/// Everything a template of one trace can see.
#[derive(Clone)]
pub struct Context {
    pub vars: Value,
    pub steps: Arc<StepResults>,
    pub trace_id: String,
    pub group_id: Option<String>,
}

impl Context {
    pub fn value(&self) -> Value {
        minijinja::context! {
            vars => self.vars.clone(),
            steps => Value::from_dyn_object(self.steps.clone()),
            trace => minijinja::context! {
                id => self.trace_id.clone(),
                group_id => self.group_id.clone(),
            },
        }
    }
}
