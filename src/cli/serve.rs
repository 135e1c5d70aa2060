//! `agentrace serve`: the trace server (see `crate::serve`).

use std::net::SocketAddr;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::Globals;
use crate::error::{EXIT_OK, Error};
use crate::serve::{self, Options};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen. The default is OTLP/HTTP's usual port, so OpenTelemetry exporters reach
    /// it without configuration; any address but loopback needs --token
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:4318")]
    addr: SocketAddr,

    /// Require this bearer token on every request (browsers: open /?token=TOKEN once)
    #[arg(
        long,
        env = "AGENTRACE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,

    /// Refuse request bodies larger than this many MiB (after decompression) with 413
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    max_body_mb: usize,
}

pub fn run(args: Args, globals: &Globals) -> Result<i32, Error> {
    let token = args.token.filter(|t| !t.is_empty());
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
    // Create or migrate the store now, so that a store problem stops the start, not a request.
    drop(Store::open(&globals.store)?);
    let options = Options {
        store: globals.store.clone(),
        token,
        max_body: args.max_body_mb.saturating_mul(1024 * 1024),
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
            options.store.display(),
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
    Ok(EXIT_OK)
}
