//! What `serve` receives, written through either backend: one request ([`Store::ingest`]) or
//! several at once ([`Store::ingest_many`], `serve`'s group commit). The backends write a batch
//! in one transaction (`ingest_batch`, each in its own SQL, with the same rules of how an
//! ingested trace is settled); the rules of answering each request live here once.

use std::collections::BTreeSet;

use super::{IngestSummary, Store, StoreError};
use crate::trace::TraceId;
use crate::trace::ingest::Ingest;

impl Store {
    /// Writes `ingest` in one transaction: all of it or, on error, nothing.
    pub fn ingest(&self, ingest: &Ingest) -> Result<IngestSummary, StoreError> {
        self.ingest_batch(&[ingest])?;
        Ok(summary(ingest))
    }

    /// Writes several requests' ingests in ONE transaction (a group commit: `serve`'s writer
    /// gathers what arrives while it writes), with one result per ingest, in order. The store
    /// ends exactly as if each had gone through [`Store::ingest`] in turn: the traces are
    /// settled once, after all their spans are in, from the same spans. When the transaction
    /// fails, each ingest is written again alone, so that one bad ingest fails only itself —
    /// except when the store as a whole refuses (locked too long, disk full, the database out
    /// of reach): then every ingest gets that answer at once rather than waiting for it again
    /// one by one.
    pub fn ingest_many(&self, batch: &[&Ingest]) -> Vec<Result<IngestSummary, StoreError>> {
        if batch.len() <= 1 {
            return batch.iter().map(|ingest| self.ingest(ingest)).collect();
        }
        let path = self.label();
        match self.ingest_batch(batch) {
            Ok(()) => batch.iter().map(|ingest| Ok(summary(ingest))).collect(),
            Err(
                e @ (StoreError::Busy { .. }
                | StoreError::DiskFull { .. }
                | StoreError::Unreachable { .. }),
            ) => batch.iter().map(|_| Err(same_error(&e, &path))).collect(),
            Err(_) => batch.iter().map(|ingest| self.ingest(ingest)).collect(),
        }
    }

    fn ingest_batch(&self, batch: &[&Ingest]) -> Result<(), StoreError> {
        backend!(self, s => s.ingest_batch(batch))
    }
}

/// The answer to each ingest of a batch that the store refused as a whole.
fn same_error(e: &StoreError, path: &std::path::Path) -> StoreError {
    let path = path.to_path_buf();
    match e {
        StoreError::Busy { .. } => StoreError::Busy { path },
        StoreError::DiskFull { .. } => StoreError::DiskFull { path },
        StoreError::Unreachable { detail, .. } => StoreError::Unreachable {
            path,
            detail: detail.clone(),
        },
        other => StoreError::Database {
            path,
            source: other.to_string().into(),
        },
    }
}

/// What one ingest touched: the traces it names, by header or by span, and its spans.
fn summary(ingest: &Ingest) -> IngestSummary {
    let traces: BTreeSet<TraceId> = ingest
        .traces
        .iter()
        .map(|t| t.trace_id)
        .chain(ingest.spans.iter().map(|s| s.trace_id))
        .collect();
    IngestSummary {
        traces: traces.into_iter().collect(),
        spans: ingest.spans.len(),
    }
}
