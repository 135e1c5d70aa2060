//! The OpenAI Agents SDK's traces ingest payload (`POST /v1/traces/ingest`).

use super::{Ingest, IngestError};

/// Parses one request body: `{"data": [trace and trace.span objects]}`.
pub fn parse(_body: &[u8]) -> Result<Ingest, IngestError> {
    Err(IngestError::new(
        "the Agents SDK ingest format is not supported yet",
    ))
}
