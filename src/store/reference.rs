//! What the user types to name a trace or an experiment, read the same on every backend:
//! `last`, a full id, a unique prefix or suffix of at least [`MIN_PREFIX`] hex digits (a prefix
//! with or without its `trace_` / `exp_` prefix; `trace_` + digits is a prefix only), or an
//! experiment's name. Trace ids are uuid v7s, time-ordered: the ids of one day share their first
//! eight digits and their tails are random, so the short id `list` shows is a tail (as git's
//! abbreviated hashes are a head). The backends answer only the questions these rules ask (the
//! newest run, the ids at one end of an index range), each in its own SQL over an index; the
//! rules themselves, and the messages, live here once.

use super::experiment::EXPERIMENT_PREFIX;
use super::{Experiment, Store, StoreError};
use crate::trace::TraceId;

/// The shortest prefix or suffix accepted, in hex digits.
pub(crate) const MIN_PREFIX: usize = 4;
/// The shortest short id shown: 24 random bits, so that a store of thousands of traces rarely
/// needs a longer one.
pub const SHORT_MIN: usize = 6;
/// The most candidates an ambiguous reference lists.
pub(crate) const CANDIDATES: usize = 5;

/// The trace ids some digits match at one end: how many in all, and the newest few.
pub(crate) struct Matches {
    pub(crate) total: usize,
    pub(crate) newest: Vec<String>,
}

/// Which end of a trace id some digits are matched at. Each end has an index whose keys start
/// with those digits (the primary key for the head, the reversed id for the tail), so that
/// either is a range of an index, `key` to `key` + `g` (hex digits sort below `g`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Head,
    Tail,
}

impl End {
    /// Where the range of `digits` (lowercase hex: no pattern metacharacters in any dialect)
    /// starts in this end's index.
    pub(crate) fn key(self, digits: &str) -> String {
        match self {
            End::Head => format!("trace_{digits}"),
            End::Tail => digits.chars().rev().collect(),
        }
    }
}

impl Store {
    /// Resolves `last`, a full trace id, or a unique prefix or suffix of one (at least 4 hex
    /// digits; with `trace_` in front, a prefix only).
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
        let (digits, head_only) = match id.strip_prefix("trace_") {
            Some(digits) => (digits, true),
            None => (id, false),
        };
        let digits = digits.to_ascii_lowercase();
        if digits.len() < MIN_PREFIX
            || digits.len() > 32
            || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(StoreError::BadId { id: id.to_string() });
        }
        let mut found = self.matching(End::Head, &digits, CANDIDATES)?;
        if !head_only && digits.len() < 32 {
            let tail = self.matching(End::Tail, &digits, CANDIDATES)?;
            // An id can match at both ends: count it once.
            let both = tail
                .newest
                .iter()
                .filter(|t| found.newest.contains(t))
                .count();
            found.total = (found.total + tail.total).saturating_sub(both);
            for t in tail.newest {
                if !found.newest.contains(&t) {
                    found.newest.push(t);
                }
            }
            found.newest.truncate(CANDIDATES);
        }
        match (found.total, found.newest.first()) {
            (0, _) | (_, None) => Err(StoreError::NotFound {
                id: id.to_string(),
                path,
            }),
            (1, Some(only)) => parse(only),
            _ => Err(StoreError::Ambiguous {
                prefix: id.to_string(),
                candidates: found.newest,
                total: found.total,
            }),
        }
    }

    /// The trace ids whose `end` is `digits`: an index range on either backend.
    fn matching(&self, end: End, digits: &str, limit: usize) -> Result<Matches, StoreError> {
        backend!(self, s => s.traces_matching(end, &end.key(digits), limit))
    }

    /// The shortest tail of `id`'s digits (at least [`SHORT_MIN`]) that `resolve` maps to `id`
    /// alone in this store, at either end: the id `list` and `show` print for people to type.
    /// A later trace may make it ambiguous, as a later commit may a git abbreviation; `resolve`
    /// then lists the candidates.
    pub fn short_id(&self, id: TraceId) -> Result<String, StoreError> {
        let hex = id.hex();
        let full = id.to_string();
        for len in SHORT_MIN..32 {
            let tail = &hex[32 - len..];
            let alone = |m: Matches| m.total == 0 || (m.total == 1 && m.newest == [full.clone()]);
            if alone(self.matching(End::Tail, tail, 1)?)
                && alone(self.matching(End::Head, tail, 1)?)
            {
                return Ok(tail.to_string());
            }
        }
        Ok(full)
    }

    /// [`Store::short_id`] of each of `ids`, for a tree's header; an id the store cannot
    /// shorten is left out, and the header prints it whole.
    pub fn short_ids(
        &self,
        ids: impl IntoIterator<Item = TraceId>,
    ) -> std::collections::HashMap<TraceId, String> {
        ids.into_iter()
            .filter_map(|id| self.short_id(id).ok().map(|short| (id, short)))
            .collect()
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
