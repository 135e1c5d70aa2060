//! Noticing changes to the store, whoever makes them: a `run` in another process, an ingest
//! request, `rm`. SQLite's `PRAGMA data_version` changes on one connection whenever another
//! connection commits, so one thread polls it on its own connection and bumps a counter that
//! `/api/events` streams to browsers.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How often the store is polled; a commit shows up in the UI within about this long.
const POLL: Duration = Duration::from_millis(250);

/// Starts the watcher thread; the receiver's value goes up by one per observed change.
pub fn spawn(path: PathBuf, shutdown: CancellationToken) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    let _ = std::thread::Builder::new()
        .name("agentrace-watch".into())
        .spawn(move || {
            let mut store: Option<Store> = None;
            let mut last: Option<i64> = None;
            while !shutdown.is_cancelled() {
                if store.is_none() {
                    store = Store::open_existing(&path).ok();
                }
                match store.as_ref().map(Store::data_version) {
                    Some(Ok(version)) => {
                        if last.is_some_and(|l| l != version) {
                            tx.send_modify(|n| *n += 1);
                        }
                        last = Some(version);
                    }
                    // The file went away or broke: reconnect on the next round.
                    Some(Err(_)) => store = None,
                    None => {}
                }
                std::thread::sleep(POLL);
            }
        });
    rx
}
