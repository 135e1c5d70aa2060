//! Exports of stored traces to the tools people already use: OTLP (protobuf over HTTP, or the
//! OTLP JSON encoding in a file), Chrome trace-event JSON for Perfetto, the OpenAI Agents SDK's
//! traces payload, and a self-contained HTML waterfall. Every export is built from the stored
//! spans with their real ids and times, so it says what `show` says.

pub mod chrome;
pub mod html;
pub mod openai;
pub mod otlp;
pub mod phoenix;

use crate::trace::TraceDoc;

/// The file exports (`export --format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// The OTLP JSON encoding (ExportTraceServiceRequest) that collectors accept
    OtlpJson,
    /// Chrome trace-event JSON (Perfetto, chrome://tracing)
    Chrome,
    /// The payload the OpenAI Agents SDK sends to the OpenAI traces dashboard
    Openai,
    /// One self-contained HTML page with the waterfall
    Html,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Failed(String),
}

/// The bytes of a file export of `docs`.
pub fn render_file(format: FileFormat, docs: &[TraceDoc]) -> Result<Vec<u8>, ExportError> {
    let bytes = match format {
        FileFormat::OtlpJson => {
            let json = otlp::to_json(docs, &otlp::service_name());
            serde_json::to_vec_pretty(&json).map_err(|e| ExportError::Failed(e.to_string()))?
        }
        FileFormat::Chrome => serde_json::to_vec(&chrome::to_json(docs))
            .map_err(|e| ExportError::Failed(e.to_string()))?,
        FileFormat::Openai => serde_json::to_vec_pretty(&openai::to_json(docs))
            .map_err(|e| ExportError::Failed(e.to_string()))?,
        FileFormat::Html => html::render(docs).into_bytes(),
    };
    Ok(bytes)
}
