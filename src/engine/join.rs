//! Running many branches at once without starving their I/O.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, Stream, StreamExt};

/// How many futures [`join_staggered`] starts before it lets the runtime turn.
const START_BATCH: usize = 8;

/// Like `futures::future::join_all` (outputs in input order), but starts the futures
/// `START_BATCH` at a time and yields to the runtime in between.
///
/// Polled all at once on the run's single thread, 200 `parallel:` branches each opened a
/// connection, and only when the last had done so did the runtime see the first connection
/// ready and send its request: every request waited for the whole fan-out. Started in
/// batches, the first requests go out while later branches are still starting, so the answers
/// come back (and are recorded) spread out instead of all at the end.
pub(crate) async fn join_staggered<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut results: Vec<Option<F::Output>> = std::iter::repeat_with(|| None)
        .take(futures.len())
        .collect();
    let mut waiting = futures.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    loop {
        for (i, f) in waiting.by_ref().take(START_BATCH) {
            running.push(async move { (i, f.await) });
        }
        if waiting.len() == 0 {
            break;
        }
        // Poll what runs (the new ones for the first time), keep what finished, and let the
        // runtime poll its I/O driver before starting more. tokio's `yield_now` wakes this
        // task only after the driver has run.
        for (i, out) in PollOnce(&mut running).await {
            results[i] = Some(out);
        }
        tokio::task::yield_now().await;
    }
    while let Some((i, out)) = running.next().await {
        results[i] = Some(out);
    }
    results
        .into_iter()
        .map(|r| r.expect("join_staggered: every future finished"))
        .collect()
}

/// Polls a stream until it is not ready, and resolves at once to what it yielded.
struct PollOnce<'a, S>(&'a mut S);

impl<S: Stream + Unpin> Future for PollOnce<'_, S> {
    type Output = Vec<S::Item>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut ready = Vec::new();
        while let Poll::Ready(Some(item)) = Pin::new(&mut *self.0).poll_next(cx) {
            ready.push(item);
        }
        Poll::Ready(ready)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn outputs_come_in_input_order_whatever_order_they_finish_in() {
        let out = runtime().block_on(join_staggered(
            (0..50u64)
                .map(|i| async move {
                    // Later inputs finish first.
                    tokio::time::sleep(Duration::from_millis(50 - i)).await;
                    i * 10
                })
                .collect(),
        ));
        assert_eq!(out, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        let none: Vec<u8> =
            runtime().block_on(join_staggered(Vec::<std::future::Ready<u8>>::new()));
        assert!(none.is_empty());
    }

    #[test]
    fn all_run_at_once_and_the_first_make_progress_before_the_last_start() {
        let rt = runtime();
        let started = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let progressed_early = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let n = 40;
        rt.block_on(join_staggered(
            (0..n)
                .map(|_| {
                    let (started, most, early, running) = (
                        started.clone(),
                        most.clone(),
                        progressed_early.clone(),
                        running.clone(),
                    );
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        // Ready at the runtime's next turn, like a loopback connection.
                        tokio::task::yield_now().await;
                        if started.load(Ordering::SeqCst) < n {
                            early.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .collect(),
        ));
        assert_eq!(
            most.load(Ordering::SeqCst),
            n,
            "all {n} were running at once"
        );
        assert!(
            progressed_early.load(Ordering::SeqCst) >= START_BATCH,
            "the first batch went on before the last futures started"
        );
    }
}
