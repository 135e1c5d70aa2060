//! Noticing changes to the store, whoever makes them: a `run` in another process, an ingest
//! request (to this `serve` or to another instance on the same database), `rm`. One thread
//! waits on its own connection ([`Store::wait_for_change`]: SQLite's `data_version`, polled;
//! PostgreSQL's `LISTEN`, woken at once by every writer's `NOTIFY`) and bumps a counter that
//! `/api/events` streams to browsers.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::{ChangeCursor, Location, Store};

/// How long one wait lasts (how often SQLite is polled; how soon a shutdown is seen); a commit
/// shows up in the UI within about this long.
const POLL: Duration = Duration::from_millis(250);

/// Starts the watcher thread; the receiver's value goes up by one per observed change.
pub fn spawn(location: Location, shutdown: CancellationToken) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    let _ = std::thread::Builder::new()
        .name("agentrace-watch".into())
        .spawn(move || {
            let mut store: Option<Store> = None;
            let mut cursor = ChangeCursor::default();
            while !shutdown.is_cancelled() {
                if store.is_none() {
                    store = Store::open_existing(&location).ok();
                    if store.is_none() {
                        std::thread::sleep(POLL);
                        continue;
                    }
                }
                match store.as_ref().map(|s| s.wait_for_change(&mut cursor, POLL)) {
                    Some(Ok(true)) => tx.send_modify(|n| *n += 1),
                    Some(Ok(false)) | None => {}
                    // The file went away or the connection broke: reconnect on the next round,
                    // and count it as a change (what happened meanwhile is unknown).
                    Some(Err(_)) => {
                        store = None;
                        cursor = ChangeCursor::default();
                        tx.send_modify(|n| *n += 1);
                        std::thread::sleep(POLL);
                    }
                }
            }
        });
    rx
}
