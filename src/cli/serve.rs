//! `agentrace serve`: the trace server (see `crate::serve`).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::Globals;
use crate::error::{Error, ExitCode};
use crate::serve::{self, Options};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen. The default is OTLP/HTTP's usual port, so OpenTelemetry exporters reach
    /// it without configuration; any address but loopback needs --token
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:4318")]
    addr: SocketAddr,

    /// Require this bearer token on every request (browsers: open /?token=TOKEN once). On the
    /// command line it shows in `ps`: prefer AGENTRACE_TOKEN or --token-file
    #[arg(
        long,
        env = "AGENTRACE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// Read the token from this file (its first line), out of sight of `ps`
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// Refuse request bodies larger than this many MiB (after decompression) with 413
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    max_body_mb: usize,

    /// Hold at most this many MiB of ingest bodies (as sent plus decompressed) across all
    /// requests at once; past it, answer 503 with Retry-After. At least --max-body-mb
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    max_ingest_mb: usize,
}

pub fn run(args: Args, globals: &Globals) -> Result<ExitCode, Error> {
    let token = match (args.token.filter(|t| !t.is_empty()), &args.token_file) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(
                "give the token once: --token-file, or --token / AGENTRACE_TOKEN",
            ));
        }
        (token, None) => token,
        (None, Some(path)) => Some(read_token_file(path)?),
    };
    if let Some(t) = &token
        && (t.len() < 8 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(Error::usage(
            "the token must be at least 8 characters without spaces",
        ));
    }
    if !args.addr.ip().is_loopback() && token.is_none() {
        return Err(Error::usage(format!(
            "refusing to listen on {} without a token: anyone who can reach that address could \
             read and write your traces. Pass --token TOKEN (or set AGENTRACE_TOKEN), or listen \
             on 127.0.0.1",
            args.addr
        )));
    }
    if args.max_body_mb == 0 {
        return Err(Error::usage("--max-body-mb must be at least 1"));
    }
    if args.max_ingest_mb < args.max_body_mb {
        return Err(Error::usage(format!(
            "--max-ingest-mb ({}) must be at least --max-body-mb ({}): one body of the largest \
             size must fit",
            args.max_ingest_mb, args.max_body_mb
        )));
    }
    // Create or migrate the store now, so that a store problem stops the start, not a request.
    drop(Store::open(&globals.store)?);
    let options = Options {
        store: globals.store.clone(),
        token,
        max_body: args.max_body_mb.saturating_mul(1024 * 1024),
        max_ingest: args.max_ingest_mb.saturating_mul(1024 * 1024),
        log: !globals.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| Error::usage(format!("cannot listen on {}: {e}", args.addr)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::usage(format!("cannot listen on {}: {e}", args.addr)))?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let mut sigint = signal(SignalKind::interrupt()).map_err(Error::Runtime)?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(Error::Runtime)?;
        tokio::spawn(async move {
            tokio::select! {
                _ = sigint.recv() => {}
                _ = sigterm.recv() => {}
            }
            stop.cancel();
        });
        // Scripts wait for this line (it carries the port when --addr ends in :0).
        eprintln!(
            "agentrace serve: listening on http://{local} (store {}){}",
            options.store,
            if options.token.is_some() {
                ", token required"
            } else {
                ""
            }
        );
        serve::serve(listener, options, shutdown)
            .await
            .map_err(|e| Error::usage(format!("the server failed: {e}")))?;
        if !globals.quiet {
            eprintln!("agentrace serve: stopped");
        }
        Ok::<(), Error>(())
    })?;
    Ok(ExitCode::Ok)
}

/// The first line of `path`, without its line ending and surrounding blanks. Only its first
/// 4 KiB are read: a token is short, and `/dev/zero` is not a token.
fn read_token_file(path: &Path) -> Result<String, Error> {
    let cannot = |e: std::io::Error| {
        Error::usage(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut bytes))
        .map_err(cannot)?;
    let text = String::from_utf8_lossy(&bytes);
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(Error::usage(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(token.to_string())
}
