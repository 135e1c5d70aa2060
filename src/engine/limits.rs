//! Limits on a run: retry policies for model calls, the cap on model calls in flight, budgets
//! (tokens, cost, duration), prices, and the watchdogs that stop a run on time limits.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, json};
use tokio::task::JoinHandle;

use super::scope::{Scope, Stop, human};
use crate::trace::{Alarm, ErrorInfo, Recorder, Usage};
use crate::workflow::{PriceDef, RetryDef, Workflow};

/// Attempts of a model call when nothing says otherwise (the first included).
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// The first wait between attempts when nothing says otherwise.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// No single wait is longer, whatever the backoff or `Retry-After` says.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How a model call is retried.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
    /// The limit of each attempt.
    pub timeout: Option<Duration>,
}

impl RetryPolicy {
    /// The first of `defs` to set each field wins (step, then agent, then workflow).
    pub fn resolve(defs: &[Option<&RetryDef>]) -> RetryPolicy {
        let defs: Vec<&RetryDef> = defs.iter().flatten().copied().collect();
        RetryPolicy {
            attempts: defs
                .iter()
                .find_map(|d| d.attempts)
                .unwrap_or(DEFAULT_ATTEMPTS)
                .max(1),
            backoff: defs
                .iter()
                .find_map(|d| d.backoff)
                .unwrap_or(DEFAULT_BACKOFF),
            timeout: defs.iter().find_map(|d| d.timeout),
        }
    }

    /// The wait after failed attempt `attempt` (1-based): exponential with up to 25% jitter,
    /// or what the server asked for with `Retry-After`.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(MAX_WAIT);
        }
        let exp = self
            .backoff
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
        let jitter = exp.mul_f64(rand::random::<f64>() * 0.25);
        (exp + jitter).min(MAX_WAIT)
    }
}

/// USD per million tokens (input, output) of common OpenAI models.
const PRICES: &[(&str, f64, f64)] = &[
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4-turbo", 10.00, 30.00),
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("o4-mini", 1.10, 4.40),
    ("o3-mini", 1.10, 4.40),
    ("o3", 2.00, 8.00),
    ("o1-mini", 1.10, 4.40),
    ("o1", 15.00, 60.00),
];

/// Prices by model: the workflow's `prices:` over the built-in table.
pub struct Prices {
    custom: Vec<(String, f64, f64)>,
}

impl Prices {
    pub fn new(custom: &indexmap::IndexMap<String, PriceDef>) -> Prices {
        Prices {
            custom: custom
                .iter()
                .map(|(m, p)| (m.clone(), p.input, p.output))
                .collect(),
        }
    }

    /// The price of `model`: an exact match first, then the longest known prefix (so that
    /// dated snapshots like `gpt-4o-mini-2024-07-18` find their model).
    pub fn of(&self, model: &str) -> Option<(f64, f64)> {
        let custom = self.custom.iter().map(|(m, i, o)| (m.as_str(), *i, *o));
        let builtin = PRICES.iter().copied();
        let all: Vec<(&str, f64, f64)> = custom.chain(builtin).collect();
        if let Some((_, i, o)) = all.iter().find(|(m, _, _)| *m == model) {
            return Some((*i, *o));
        }
        all.iter()
            .filter(|(m, _, _)| model.starts_with(m) && model[m.len()..].starts_with('-'))
            .max_by_key(|(m, _, _)| m.len())
            .map(|(_, i, o)| (*i, *o))
    }

    pub fn cost(&self, model: &str, usage: Usage) -> Option<f64> {
        let (input, output) = self.of(model)?;
        let cost =
            usage.input_tokens as f64 * input / 1e6 + usage.output_tokens as f64 * output / 1e6;
        Some((cost * 1e9).round() / 1e9)
    }
}

/// The run's budgets and what has been spent.
pub struct Budget {
    pub max_tokens: Option<u64>,
    pub max_cost_usd: Option<f64>,
    pub max_duration: Option<Duration>,
    tokens: AtomicU64,
    cost: Mutex<f64>,
}

/// A crossed budget: the error for the step and trace, and the event's attributes.
pub struct Exceeded {
    pub error: ErrorInfo,
    pub attributes: Map<String, serde_json::Value>,
}

fn exceeded(
    limit: &str,
    value: serde_json::Value,
    used: serde_json::Value,
    shown: String,
) -> Exceeded {
    let mut attributes = Map::new();
    attributes.insert("limit".into(), json!(limit));
    attributes.insert("value".into(), value.clone());
    attributes.insert("used".into(), used.clone());
    Exceeded {
        error: ErrorInfo::with_data(
            format!("budget exceeded: {limit} {shown}"),
            json!({ "limit": limit, "value": value, "used": used }),
        ),
        attributes,
    }
}

impl Budget {
    pub fn new(wf: &Workflow, max_tokens: Option<u64>, max_cost_usd: Option<f64>) -> Budget {
        let file = wf.budget.as_ref();
        Budget {
            max_tokens: max_tokens.or(file.and_then(|b| b.max_tokens)),
            max_cost_usd: max_cost_usd.or(file.and_then(|b| b.max_cost_usd)),
            max_duration: file.and_then(|b| b.max_duration),
            tokens: AtomicU64::new(0),
            cost: Mutex::new(0.0),
        }
    }

    /// Adds a model call's usage and cost; says which budget it crossed, if any.
    pub fn charge(&self, usage: Usage, cost: Option<f64>) -> Option<Exceeded> {
        let tokens =
            self.tokens.fetch_add(usage.total_tokens, Ordering::SeqCst) + usage.total_tokens;
        let spent = {
            let mut c = self.cost.lock().unwrap_or_else(|p| p.into_inner());
            *c += cost.unwrap_or(0.0);
            *c
        };
        if let Some(max) = self.max_tokens
            && tokens > max
        {
            return Some(exceeded(
                "max_tokens",
                json!(max),
                json!(tokens),
                format!("{max} (used {tokens})"),
            ));
        }
        if let Some(max) = self.max_cost_usd
            && spent > max
        {
            return Some(exceeded(
                "max_cost_usd",
                json!(max),
                json!((spent * 1e6).round() / 1e6),
                format!("${max} (used ${spent:.6})"),
            ));
        }
        None
    }

    pub fn duration_exceeded(&self) -> Option<Exceeded> {
        let max = self.max_duration?;
        Some(exceeded(
            "max_duration",
            json!(human(max)),
            json!(human(max)),
            human(max),
        ))
    }
}

/// Timers that stop the run; aborted when dropped.
pub struct Watchdogs(Vec<JoinHandle<()>>);

impl Drop for Watchdogs {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// Starts the workflow `timeout:`, the `max_duration` budget and the sinks' `alarm` against
/// `root`. A budget crossing also leaves an event on the span that was running.
pub fn watchdogs(
    timeout: Option<Duration>,
    budget: &Budget,
    root: &Scope,
    current: std::sync::Arc<Mutex<Option<Recorder>>>,
    alarm: &Alarm,
) -> Watchdogs {
    let mut handles = Vec::new();
    {
        let root = root.clone();
        let alarm = alarm.clone();
        handles.push(tokio::spawn(async move {
            alarm.raised().await;
            let reason = alarm.reason().unwrap_or("a sink failed");
            root.stop(Stop::SinkFailed(ErrorInfo::new(reason)));
        }));
    }
    if let Some(after) = timeout {
        let root = root.clone();
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(after).await;
            root.stop(Stop::TimedOut {
                what: "workflow".into(),
                after,
            });
        }));
    }
    if let (Some(after), Some(exceeded)) = (budget.max_duration, budget.duration_exceeded()) {
        let root = root.clone();
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(rec) = current.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                rec.add_event_to_latest("budget exceeded", exceeded.attributes.clone());
            }
            root.stop(Stop::Budget(exceeded.error));
        }));
    }
    Watchdogs(handles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_policies_take_the_nearest_setting() {
        let step = RetryDef {
            attempts: Some(5),
            ..RetryDef::default()
        };
        let workflow = RetryDef {
            attempts: Some(2),
            backoff: Some(Duration::from_millis(10)),
            ..RetryDef::default()
        };
        let p = RetryPolicy::resolve(&[Some(&step), None, Some(&workflow)]);
        assert_eq!(p.attempts, 5);
        assert_eq!(p.backoff, Duration::from_millis(10));
        assert_eq!(p.timeout, None);
        assert_eq!(RetryPolicy::resolve(&[]).attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn waits_grow_exponentially_with_bounded_jitter_and_honour_retry_after() {
        let p = RetryPolicy {
            attempts: 5,
            backoff: Duration::from_millis(100),
            timeout: None,
        };
        for (attempt, base) in [(1, 100), (2, 200), (3, 400)] {
            let w = p.wait(attempt, None).as_millis();
            assert!(w >= base && w <= base * 5 / 4, "attempt {attempt}: {w}ms");
        }
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(p.wait(1, Some(Duration::from_secs(3600))), MAX_WAIT);
    }

    #[test]
    fn prices_match_models_and_snapshots() {
        let mut custom = indexmap::IndexMap::new();
        custom.insert(
            "smollm2".to_string(),
            PriceDef {
                input: 1.0,
                output: 2.0,
                loc: Default::default(),
            },
        );
        let prices = Prices::new(&custom);
        assert_eq!(prices.of("gpt-4o-mini"), Some((0.15, 0.60)));
        assert_eq!(prices.of("gpt-4o-mini-2024-07-18"), Some((0.15, 0.60)));
        assert_eq!(prices.of("gpt-4o-2024-08-06"), Some((2.50, 10.00)));
        assert_eq!(prices.of("smollm2"), Some((1.0, 2.0)));
        assert_eq!(prices.of("llama3"), None);
        let cost = prices
            .cost("gpt-4o-mini", Usage::new(1_000_000, 1_000_000))
            .unwrap();
        assert!((cost - 0.75).abs() < 1e-9);
    }

    #[test]
    fn budgets_say_which_limit_was_crossed() {
        let b = Budget {
            max_tokens: Some(100),
            max_cost_usd: Some(0.01),
            max_duration: None,
            tokens: AtomicU64::new(0),
            cost: Mutex::new(0.0),
        };
        assert!(b.charge(Usage::new(40, 40), Some(0.001)).is_none());
        let e = b.charge(Usage::new(20, 10), Some(0.001)).unwrap();
        assert_eq!(
            e.error.message,
            "budget exceeded: max_tokens 100 (used 110)"
        );
        assert_eq!(e.attributes["limit"], "max_tokens");
    }
}
