//! Resolves, before anything runs, which model serves each agent: the offline model, or an
//! OpenAI-compatible server from the agent's or the workflow's `provider:` and the environment
//! (Chat Completions, or the Responses API for `api: responses`),
//! or, for `run --replay`, the recorded answers of an earlier trace.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Error;
use crate::llm::offline::OfflineModel;
use crate::llm::openai::{DEFAULT_BASE_URL, Endpoint, OpenAiModel};
use crate::llm::replay::{Recording, ReplayModel};
use crate::llm::responses::ResponsesModel;
use crate::llm::{Model, Reasoning};
use crate::trace::redact;
use crate::workflow::{AgentDef, Api, Provider, StepKind, Workflow};

/// The model client of every agent that a step uses. Cloning shares the clients.
#[derive(Clone)]
pub struct Models {
    by_agent: foldhash::HashMap<String, Arc<dyn Model>>,
}

/// Reads an environment variable, treating an empty value as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn endpoint(provider: Option<&Provider>) -> Result<Endpoint, Error> {
    let base_url = provider
        .and_then(|p| p.base_url.as_ref())
        .map(|u| u.value.clone())
        .or_else(|| env("OPENAI_BASE_URL"));
    let api_key = match provider.and_then(|p| p.api_key_env.as_ref()) {
        Some(var) => Some(env(&var.value).ok_or_else(|| Error::MissingKeyVar {
            var: var.value.clone(),
            what: "`provider.api_key_env`".into(),
        })?),
        None => env("OPENAI_API_KEY"),
    };
    if base_url.is_none() && api_key.is_none() {
        return Err(Error::NoModelAccess);
    }
    // Everything sent as a credential is a secret for whatever this process writes from now
    // on, should a server echo it back.
    if let Some(key) = &api_key {
        redact::register(key);
    }
    if let Some(url) = &base_url {
        redact::register_url(url);
    }
    for (name, value) in provider.iter().flat_map(|p| p.headers.iter()) {
        if redact::secret_name(name) {
            redact::register(value);
            if let Some((_, token)) = value.split_once(' ') {
                redact::register(token);
            }
        }
    }
    Ok(Endpoint {
        base_url: base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
        api_key,
        headers: provider
            .map(|p| {
                p.headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        stream: provider.and_then(|p| p.stream).unwrap_or(true),
        max_connections: max_connections(provider),
    })
}

/// The most connections the run's model servers may hold at once: every provider's
/// `max_connections` (the workflow's, or the default for the environment's server, and each
/// agent's own), added up.
pub fn most_connections(wf: &Workflow) -> usize {
    wf.agents
        .values()
        .filter_map(|a| a.provider.as_ref())
        .fold(max_connections(wf.provider.as_ref()), |sum, p| {
            sum.saturating_add(max_connections(Some(p)))
        })
}

/// A provider's `max_connections:`, or the default.
fn max_connections(provider: Option<&Provider>) -> usize {
    provider
        .and_then(|p| p.max_connections.as_ref())
        .map_or_else(crate::llm::openai::default_max_connections, |m| {
            m.value as usize
        })
}

/// An agent's `reasoning:` as the model clients send it.
pub(crate) fn reasoning_of(def: &AgentDef) -> Option<Reasoning> {
    let r = def.reasoning.as_ref()?;
    Some(Reasoning {
        effort: r.effort.as_ref().map(|e| e.value.clone()),
        summary: r.summary.as_ref().map(|s| s.value.clone()),
    })
}

/// The agents steps name, the judges of scores, and every agent they can hand off to.
pub(crate) fn used_agents(wf: &Workflow) -> Vec<&str> {
    let mut used: Vec<&str> = Vec::new();
    for step in wf.all_steps() {
        if let StepKind::Agent { agent, .. } = &step.kind
            && !used.contains(&agent.as_str())
        {
            used.push(agent.as_str());
        }
    }
    // Judges of `scores:` are asked too.
    let scores = wf.all_steps().into_iter().flat_map(|s| s.scores.iter());
    for score in scores.chain(wf.scores.iter()) {
        if let crate::workflow::scores::ScoreKind::Judge(judge) = &score.kind
            && !used.contains(&judge.agent.as_str())
        {
            used.push(judge.agent.as_str());
        }
    }
    let mut i = 0;
    while i < used.len() {
        if let Some(def) = wf.agents.get(used[i]) {
            for target in &def.handoffs {
                if !used.contains(&target.as_str()) {
                    used.push(target.as_str());
                }
            }
        }
        i += 1;
    }
    used
}

impl Models {
    /// Replay (`run --replay`): every agent is answered from the recorded trace; no server, no
    /// key, no `provider:` is consulted.
    pub fn replay(wf: &Workflow, recording: Arc<Recording>) -> Models {
        let by_agent = used_agents(wf)
            .into_iter()
            .map(|name| {
                let model: Arc<dyn Model> = Arc::new(ReplayModel::new(recording.clone(), name));
                (name.to_string(), model)
            })
            .collect();
        Models { by_agent }
    }

    pub fn resolve(wf: &Workflow, offline: bool) -> Result<Models, Error> {
        let used = used_agents(wf);
        let mut by_agent: foldhash::HashMap<String, Arc<dyn Model>> = foldhash::HashMap::default();
        if offline {
            let model: Arc<dyn Model> = Arc::new(OfflineModel);
            for name in used {
                by_agent.insert(name.to_string(), model.clone());
            }
            return Ok(Models { by_agent });
        }
        // Agents that share an endpoint share one client (and its connection pool).
        let mut clients: HashMap<String, Arc<dyn Model>> = HashMap::new();
        for name in used {
            let provider = wf.provider_of(name);
            let endpoint = endpoint(provider)?;
            let api = wf.api_of(name);
            let key = format!("{:?}|{:?}|{}", endpoint.base_url, provider, api.as_str());
            let model = match clients.get(&key) {
                Some(m) => m.clone(),
                None => {
                    let built: Result<Arc<dyn Model>, _> = match api {
                        Api::Chat => OpenAiModel::new(&endpoint).map(|m| Arc::new(m) as _),
                        Api::Responses => ResponsesModel::new(&endpoint).map(|m| Arc::new(m) as _),
                    };
                    let m = built.map_err(|e| Error::usage(e.message))?;
                    clients.insert(key, m.clone());
                    m
                }
            };
            by_agent.insert(name.to_string(), model);
        }
        Ok(Models { by_agent })
    }

    pub fn for_agent(&self, agent: &str) -> Option<Arc<dyn Model>> {
        self.by_agent.get(agent).cloned()
    }
}
