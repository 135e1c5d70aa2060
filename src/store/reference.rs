//! What the user types to name a trace or an experiment, read the same on every backend:
//! `last`, a full id, a unique prefix of at least [`MIN_PREFIX`] hex digits (with or without
//! its `trace_` / `exp_` prefix), or an experiment's name. The backends answer only the
//! questions these rules ask (the newest run, the ids that start with some digits), each in its
//! own SQL; the rules themselves, and the messages, live here once.

use super::experiment::EXPERIMENT_PREFIX;
use super::{Experiment, Store, StoreError};
use crate::trace::TraceId;

/// The shortest prefix accepted, in hex digits.
pub(crate) const MIN_PREFIX: usize = 4;
/// The most candidates an ambiguous prefix lists.
pub(crate) const CANDIDATES: usize = 5;

/// The trace ids that start with a prefix: how many in all, and the newest few.
pub(crate) struct Matches {
    pub(crate) total: usize,
    pub(crate) newest: Vec<String>,
}

impl Store {
    /// Resolves `last`, a full trace id, or a unique prefix of one (with or without `trace_`,
    /// at least 4 hex digits).
    ///
    /// `last` is the newest trace by start time that a `run` recorded (it has a writer pid);
    /// traces sent to `serve` never are. Anyone who can reach an ingest route picks its trace's
    /// times, and `run --replay last` runs the tool calls of the model answers it holds.
    pub fn resolve(&self, id: &str) -> Result<TraceId, StoreError> {
        let id = id.trim();
        let path = self.label();
        let parse = |text: &str| {
            TraceId::parse(text).ok_or_else(|| StoreError::Malformed {
                path: path.clone(),
                what: "trace",
                detail: format!("bad trace id {text:?}"),
            })
        };
        if id == "last" {
            if let Some(text) = backend!(self, s => s.newest_run())? {
                return parse(&text);
            }
            return Err(if backend!(self, s => s.has_traces())? {
                StoreError::NoRuns { path }
            } else {
                StoreError::NoTraces { path }
            });
        }
        let digits = id.strip_prefix("trace_").unwrap_or(id).to_ascii_lowercase();
        if digits.len() < MIN_PREFIX
            || digits.len() > 32
            || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(StoreError::BadId { id: id.to_string() });
        }
        let not_found = || StoreError::NotFound {
            id: id.to_string(),
            path: path.clone(),
        };
        // The digits are hex only, so they carry no pattern metacharacters in any dialect.
        let found = backend!(self, s => s.traces_starting_with(&format!("trace_{digits}")))?;
        match (found.total, found.newest.first()) {
            (0, _) | (_, None) => Err(not_found()),
            (1, Some(only)) => parse(only),
            _ => Err(StoreError::Ambiguous {
                prefix: id.to_string(),
                candidates: found.newest,
                total: found.total,
            }),
        }
    }

    /// The shortest prefix of `id` (at least `min` hex digits, as `trace_<digits>`) that
    /// `resolve` maps to `id` alone in this store: what a narrow table shows.
    pub fn short_id(&self, id: TraceId, min: usize) -> Result<String, StoreError> {
        let full = id.to_string();
        for digits in min.clamp(MIN_PREFIX, 32)..32 {
            let prefix = &full[..6 + digits];
            if backend!(self, s => s.prefix_is_unique(prefix))? {
                return Ok(prefix.to_string());
            }
        }
        Ok(full)
    }

    /// The experiment `reference` names: its id, a unique prefix of its id (with or without
    /// `exp_`, at least 4 hex digits), or its name (the newest experiment of that name).
    pub fn find_experiment(&self, reference: &str) -> Result<Experiment, StoreError> {
        let reference = reference.trim();
        if let Some(e) = backend!(self, s => s.experiment_by_id(reference))? {
            return Ok(e);
        }
        if let Some(e) = backend!(self, s => s.newest_experiment_named(reference))? {
            return Ok(e);
        }
        let digits = reference
            .strip_prefix(EXPERIMENT_PREFIX)
            .unwrap_or(reference)
            .to_ascii_lowercase();
        if digits.len() >= MIN_PREFIX
            && digits.len() <= 32
            && digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let prefix = format!("{EXPERIMENT_PREFIX}{digits}");
            let found = backend!(self, s => s.experiments_starting_with(&prefix, CANDIDATES + 1))?;
            if let [one] = found.as_slice() {
                return Ok(one.clone());
            }
            if found.len() > 1 {
                return Err(StoreError::Ambiguous {
                    prefix: reference.to_string(),
                    total: found.len(),
                    candidates: found.into_iter().take(CANDIDATES).map(|e| e.id).collect(),
                });
            }
        }
        Err(StoreError::NoExperiment {
            reference: reference.to_string(),
            path: self.label(),
        })
    }
}
