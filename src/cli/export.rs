//! `agentrace export ID... --format F [-o FILE]`, `--otlp [--endpoint URL]`, `--to-openai`.

use std::io::Write;
use std::path::PathBuf;

use super::Globals;
use crate::error::{Error, ExitCode};
use crate::export::{self, FileFormat, otlp};
use crate::store::Store;
use crate::trace::redact;

/// `--format`: clap's view of [`FileFormat`], which the exporters define without clap. The doc
/// comments are the help text of each value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormatArg {
    /// The OTLP JSON encoding (ExportTraceServiceRequest) that collectors accept
    #[value(name = "otlp-json")]
    OtlpJson,
    /// Chrome trace-event JSON (Perfetto, chrome://tracing)
    Chrome,
    /// The payload the OpenAI Agents SDK sends to the OpenAI traces dashboard
    Openai,
    /// One self-contained HTML page with the waterfall
    Html,
}

impl From<FileFormatArg> for FileFormat {
    fn from(format: FileFormatArg) -> FileFormat {
        match format {
            FileFormatArg::OtlpJson => FileFormat::OtlpJson,
            FileFormatArg::Chrome => FileFormat::Chrome,
            FileFormatArg::Openai => FileFormat::Openai,
            FileFormatArg::Html => FileFormat::Html,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace ids, unique prefixes or suffixes (the short ids `list` shows), or `last`
    #[arg(required = true, value_name = "ID")]
    ids: Vec<String>,

    /// Write a file export in this format
    #[arg(long, value_enum, value_name = "FORMAT", required_unless_present_any = ["otlp", "to_openai", "phoenix"])]
    format: Option<FileFormatArg>,

    /// Where to write the file export (default: stdout)
    #[arg(short, long, value_name = "FILE", requires = "format")]
    output: Option<PathBuf>,

    /// Push to an OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_* variables, or --endpoint)
    #[arg(long, conflicts_with_all = ["format", "to_openai"])]
    otlp: bool,

    /// The OTLP endpoint (base URL; `/v1/traces` is added) for --otlp
    #[arg(long, value_name = "URL", requires = "otlp")]
    endpoint: Option<String>,

    /// Post the OpenAI traces payload to the OpenAI traces dashboard (OPENAI_API_KEY)
    #[arg(long, conflicts_with = "format")]
    to_openai: bool,

    /// Send to Arize Phoenix at URL: the traces over OTLP, their scores as span annotations
    /// (PHOENIX_API_KEY)
    #[arg(long, value_name = "URL", conflicts_with_all = ["format", "otlp", "to_openai"])]
    phoenix: Option<String>,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let store = Store::open_existing(&globals.store)?;
    let mut docs = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        docs.push(store.find(id)?);
    }
    if let Some(format) = args.format {
        let bytes =
            export::render_file(format.into(), &docs).map_err(|e| Error::Export(e.to_string()))?;
        match &args.output {
            Some(path) => std::fs::write(path, &bytes).map_err(|source| Error::WriteFile {
                path: path.clone(),
                source,
            })?,
            None => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&bytes);
                let _ = out.flush();
            }
        }
        return Ok(ExitCode::Ok);
    }
    // -- Arize Phoenix (`--phoenix URL`): OTLP, then the scores as annotations
    if let Some(base) = &args.phoenix {
        let config = export::phoenix::config(base).map_err(Error::usage)?;
        let sent = export::phoenix::send_blocking(&docs, base, &config).map_err(|e| {
            Error::Export(format!(
                "export to Phoenix at {} failed: {e}",
                config.display_url()
            ))
        })?;
        if let Some(warning) = sent.traces.rejection(&config) {
            eprintln!("warning: {warning}");
        } else if !globals.quiet {
            eprintln!(
                "exported {} spans of {} trace(s) and {} score(s) to Phoenix at {}",
                sent.traces.spans,
                docs.len(),
                sent.annotations,
                redact::url(base)
            );
        }
        return Ok(ExitCode::Ok);
    }
    // -- OTLP/HTTP push (`--otlp`)
    if args.otlp {
        let config = otlp::PushConfig::from_env(args.endpoint.as_deref()).map_err(Error::usage)?;
        let delivered = otlp::push_blocking(&docs, &config).map_err(|e| {
            Error::Export(format!("OTLP push to {} failed: {e}", config.display_url()))
        })?;
        if let Some(warning) = delivered.rejection(&config) {
            eprintln!("warning: {warning}");
        } else if !globals.quiet {
            eprintln!(
                "exported {} spans of {} trace(s) to {}",
                delivered.spans,
                docs.len(),
                config.display_url()
            );
        }
        return Ok(ExitCode::Ok);
    }
    // -- The OpenAI traces dashboard (`--to-openai`)
    if args.to_openai {
        let config =
            export::openai::PushConfig::from_env().map_err(|e| Error::Export(e.to_string()))?;
        let pushed = export::openai::push(&docs, &config).map_err(|e| {
            Error::Export(format!(
                "posting the traces to {} failed: {e}",
                redact::url(&config.url)
            ))
        })?;
        if !globals.quiet {
            eprintln!(
                "sent {} trace(s) with {} spans to {} in {} request(s)",
                pushed.traces,
                pushed.spans,
                redact::url(&config.url),
                pushed.requests
            );
        }
        return Ok(ExitCode::Ok);
    }
    Err(Error::Export("this export is not available yet".into()))
}
