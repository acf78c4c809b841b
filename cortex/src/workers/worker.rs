//! A worker thread: makes its state, takes tasks, leaves when replaced.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::pool::{Item, Shared};
use super::report::count;
use super::TaskError;
use crate::util::panic_message;

pub(super) fn start_worker<S: Send + 'static>(shared: &Arc<Shared<S>>) {
    let id = shared.next_worker.fetch_add(1, Ordering::Relaxed);
    let weak = Arc::downgrade(shared);
    let handle = std::thread::Builder::new()
        .name(format!("{}-{id}", shared.name))
        .spawn(move || worker_loop(weak, id));
    match handle {
        Ok(h) => shared.threads.lock().push((id, h)),
        Err(error) => {
            tracing::error!(target: "cortex::workers", pool = %shared.name, %error, "cannot start a worker thread")
        }
    }
}

/// Why a worker stops taking tasks.
enum Exit {
    Shutdown,
    Replace,
}

/// The worker's state, from the factory; a panicking factory is retried
/// with backoff (10 ms doubling to 1 s), logged and counted, and while no
/// worker of the pool can start, queued tasks fail with
/// [`TaskError::NoWorker`] instead of waiting forever. `None` once the
/// pool shuts down.
fn make_state<S: Send + 'static>(shared: &Shared<S>, id: u64) -> Option<S> {
    let mut backoff = Duration::from_millis(10);
    let mut failing = false;
    let state = loop {
        match std::panic::catch_unwind(AssertUnwindSafe(|| (shared.factory)())) {
            Ok(state) => break Some(state),
            Err(payload) => {
                let message = panic_message(&payload);
                count(shared, "factory_panicked");
                tracing::error!(target: "cortex::workers", pool = %shared.name, worker = id, %message, retry_in = ?backoff, "worker state factory panicked");
                if !failing {
                    failing = true;
                    shared.failing.fetch_add(1, Ordering::AcqRel);
                }
                if shared.failing.load(Ordering::Acquire) >= shared.threads.lock().len() {
                    // No worker can run anything: answer what waits.
                    while let Ok(item) = shared.rx.try_recv() {
                        if let Item::Task(job) = item {
                            if let Some(cancel) = job.cancel {
                                cancel(TaskError::NoWorker(message.clone()));
                            }
                        }
                    }
                }
                if shared.closed.load(Ordering::Acquire) {
                    break None;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    };
    if failing {
        shared.failing.fetch_sub(1, Ordering::AcqRel);
    }
    state
}

fn worker_loop<S: Send + 'static>(weak: Weak<Shared<S>>, id: u64) {
    let Some(shared) = weak.upgrade() else { return };
    let Some(mut state) = make_state(&shared, id) else {
        return;
    };
    let exit = loop {
        let job = match shared.rx.recv() {
            Ok(Item::Task(job)) => Some(job),
            Ok(Item::Stop) | Err(_) => None,
        };
        let Some(job) = job else { break Exit::Shutdown };
        if shared.space_waiters.load(Ordering::SeqCst) > 0 {
            shared.space_async.notify_one();
        }
        shared.active.fetch_add(1, Ordering::AcqRel);
        // The clock is read only when something needs it.
        let started = (job.timeout.is_some() || shared.metrics.is_some()).then(Instant::now);
        // A fire-and-forget task has no caller to answer; it is still
        // watched so a hung worker is replaced.
        let on_timeout = job.on_timeout.unwrap_or_else(|| Box::new(|_| true));
        let ticket = match (job.timeout, started) {
            (Some(t), Some(started)) => Some(shared.watchdog.watch(started + t, t, id, on_timeout)),
            _ => None,
        };
        let result = (job.run)(&mut state);
        let timed_out = ticket.is_some_and(|t| shared.watchdog.finish(t));
        if !timed_out {
            // A timed-out worker was taken off the active count by the
            // watchdog when it gave up on it.
            shared.active.fetch_sub(1, Ordering::AcqRel);
        }
        if let (Some(m), Some(started)) = (&shared.metrics, started) {
            m.duration.observe_duration(started.elapsed());
        }
        if timed_out {
            // The watchdog answered the caller and detached this thread
            // (counting it lost before it could see the timeout, so this
            // never underflows). If the lost-thread cap kept it from
            // starting a replacement, the worker comes back now.
            shared.lost.fetch_sub(1, Ordering::AcqRel);
            let owed = shared
                .missing
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if owed && !shared.closed.load(Ordering::Acquire) {
                tracing::info!(target: "cortex::workers", pool = %shared.name, "a lost thread returned; its worker is back");
                start_worker(&shared);
            }
            break Exit::Replace;
        }
        match result {
            Ok(true) => count(&shared, "completed"),
            Ok(false) => count(&shared, "cancelled"),
            Err(_) => {
                count(&shared, "panicked");
                tracing::warn!(target: "cortex::workers", pool = %shared.name, worker = id, "task panicked; replacing the worker");
                if !shared.closed.load(Ordering::Acquire) {
                    start_worker(&shared);
                }
                break Exit::Replace;
            }
        }
    };
    if let Exit::Replace = exit {
        // Leave the list of threads to join: this one is done.
        let mut threads = shared.threads.lock();
        if let Some(pos) = threads.iter().position(|(i, _)| *i == id) {
            threads.swap_remove(pos);
        }
    }
}
