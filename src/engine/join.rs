//! Running many branches at once: as tasks on every worker thread of a multi-thread runtime,
//! or polled together, started a few at a time, on one thread.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, Stream, StreamExt};

/// Branches at a time from which a fan-out asks for huge pages on the heap
/// ([`crate::workflow::budget::advise_huge_pages_for_the_heap`]). Narrower, the heap grows by a
/// few megabytes and 2 MiB pages only add memory (10 MB more at 10 and at 200 branches, no
/// faster); by turns, they saved 6 ms at 500 branches, 9 ms at 1000 and 16–26 ms at 2000.
const HUGE_PAGES_FROM: usize = 256;

/// Before a fan-out of `at_once` branches at a time: when it is wide enough to pay for them,
/// asks (once per process) for huge pages on the heap it is about to fill.
pub(crate) fn prepare_heap(at_once: usize) {
    #[cfg(target_os = "linux")]
    if at_once >= HUGE_PAGES_FROM {
        static ADVISED: std::sync::Once = std::sync::Once::new();
        ADVISED.call_once(crate::workflow::budget::advise_huge_pages_for_the_heap);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = at_once;
}

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

/// Runs a fan-out's branches: as tasks of their own ([`join_tasks`]) on a multi-thread
/// runtime, so that every worker thread takes some; polled together ([`join_staggered`]) on a
/// one-thread runtime, where tasks would only add their own cost (measured: a 2000-wide
/// fan-out pinned to one core took 917 ms as tasks, 802 ms polled together).
pub(crate) async fn join_branches<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => join_tasks(futures).await,
        _ => join_staggered(futures).await,
    }
}

/// Runs each future as a task of its own, so that a multi-thread runtime runs them on every
/// worker thread, and resolves to their outputs in input order. Dropped before they all end,
/// it aborts the tasks still running, as dropping `join_all` drops its futures; a task that
/// panicked panics here, as it would have inside `join_all`.
pub(crate) async fn join_tasks<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // Spawned `START_BATCH` at a time, the runtime turning in between, as `join_staggered`
    // starts its futures: a branch that a fail-fast failure finds not yet started does not
    // start, rather than all of them starting before the first can fail.
    let mut tasks = Tasks(Vec::with_capacity(futures.len()));
    let mut waiting = futures.into_iter().peekable();
    while waiting.peek().is_some() {
        tasks
            .0
            .extend(waiting.by_ref().take(START_BATCH).map(tokio::spawn));
        if waiting.peek().is_some() {
            tokio::task::yield_now().await;
        }
    }
    let mut outputs = Vec::with_capacity(tasks.0.len());
    for task in &mut tasks.0 {
        // Only an abort cancels a task: ours happen on drop, when nobody waits here, and the
        // runtime's at its shutdown, which drops this future first.
        let output = finished(task.await).expect("a branch task is not cancelled while awaited");
        outputs.push(output);
    }
    outputs
}

/// Awaits one task, aborting it when dropped first: `None` when it was cancelled (only the
/// runtime's shutdown cancels it while awaited); a panic in it panics here.
pub async fn join_task<T>(task: tokio::task::JoinHandle<T>) -> Option<T> {
    let mut tasks = Tasks(vec![task]);
    finished(tasks.0.first_mut()?.await)
}

/// A task's output; `None` when it was cancelled. A panic in it is resumed here, as it would
/// have unwound through `join_all`.
fn finished<T>(result: Result<T, tokio::task::JoinError>) -> Option<T> {
    match result {
        Ok(output) => Some(output),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

/// Join handles that abort their tasks when dropped.
struct Tasks<T>(Vec<tokio::task::JoinHandle<T>>);

impl<T> Drop for Tasks<T> {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Fifty futures whose outputs are their index times ten, later inputs finishing first.
    fn later_first() -> Vec<impl Future<Output = u64> + Send + 'static> {
        (0..50u64)
            .map(|i| async move {
                tokio::time::sleep(Duration::from_millis(50 - i)).await;
                i * 10
            })
            .collect()
    }

    #[test]
    fn outputs_come_in_input_order_whatever_order_they_finish_in() {
        let out = runtime().block_on(join_staggered(later_first()));
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

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn two_threads() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn tasks_give_their_outputs_in_input_order_on_either_runtime() {
        for rt in [current_thread(), two_threads()] {
            let out = rt.block_on(join_branches(later_first()));
            assert_eq!(out, (0..50).map(|i| i * 10).collect::<Vec<_>>());
            let none: Vec<u8> = rt.block_on(join_tasks(Vec::<std::future::Ready<u8>>::new()));
            assert!(none.is_empty());
        }
    }

    #[test]
    fn on_a_multi_thread_runtime_branches_run_on_more_than_one_thread() {
        let threads = Arc::new(Mutex::new(HashSet::new()));
        two_threads().block_on(join_tasks(
            (0..64)
                .map(|_| {
                    let threads = threads.clone();
                    async move {
                        // Busy for a moment, so that one worker cannot take them all.
                        let until = std::time::Instant::now() + Duration::from_millis(2);
                        while std::time::Instant::now() < until {
                            std::hint::spin_loop();
                        }
                        threads.lock().unwrap().insert(std::thread::current().id());
                    }
                })
                .collect(),
        ));
        assert_eq!(threads.lock().unwrap().len(), 2);
    }

    #[test]
    fn dropping_the_join_aborts_the_branches_still_running() {
        let rt = two_threads();
        let finished = Arc::new(AtomicUsize::new(0));
        rt.block_on(async {
            let join = join_tasks(
                (0..10u64)
                    .map(|i| {
                        let finished = finished.clone();
                        async move {
                            tokio::time::sleep(Duration::from_millis(if i == 0 { 1 } else { 300 }))
                                .await;
                            finished.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .collect(),
            );
            // Given up after 50 ms: the nine slow branches never finish.
            let _ = tokio::time::timeout(Duration::from_millis(50), join).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
        });
        assert_eq!(finished.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_branch_that_panics_panics_the_join_with_its_message() {
        let caught = std::panic::catch_unwind(|| {
            two_threads().block_on(join_tasks(vec![
                Box::pin(async { 1 }) as std::pin::Pin<Box<dyn Future<Output = i32> + Send>>,
                Box::pin(async { panic!("branch two broke") }),
            ]))
        });
        let panic = caught.expect_err("the join panics");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"branch two broke"));
    }

    #[test]
    fn join_task_gives_the_output_or_none_once_aborted() {
        let rt = current_thread();
        assert_eq!(
            rt.block_on(async { join_task(tokio::spawn(async { 7 })).await }),
            Some(7)
        );
        let aborted = rt.block_on(async {
            let task = tokio::spawn(std::future::pending::<()>());
            task.abort();
            join_task(task).await
        });
        assert_eq!(aborted, None);
    }
}
