//! Runs an action at a time on the policies' clock: on the Tokio runtime
//! when there is one (so a paused test clock drives it too), else on one
//! timer thread shared by the process.

use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};

use tokio::time::Instant;

type Action = Box<dyn FnOnce() + Send>;

struct Entry {
    at: std::time::Instant,
    seq: u64,
    action: Action,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // The earliest first in a max-heap.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Thread {
    heap: Mutex<(BinaryHeap<Entry>, u64)>,
    wake: Condvar,
}

fn thread() -> &'static Thread {
    static THREAD: OnceLock<&'static Thread> = OnceLock::new();
    THREAD.get_or_init(|| {
        let t: &'static Thread = Box::leak(Box::new(Thread {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            wake: Condvar::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("cortex-timer".into())
            .spawn(move || run(t));
        if let Err(e) = spawned {
            tracing::error!(target: "cortex::resilience", error = %e, "cannot start the policy timer thread; timed transitions happen on the next call instead");
        }
        t
    })
}

fn run(t: &'static Thread) {
    let mut guard = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let now = std::time::Instant::now();
        match guard.0.peek() {
            Some(e) if e.at <= now => {
                if let Some(e) = guard.0.pop() {
                    drop(guard);
                    (e.action)();
                    guard = t.heap.lock().unwrap_or_else(|e| e.into_inner());
                }
            }
            Some(e) => {
                let wait = e.at - now;
                guard = t
                    .wake
                    .wait_timeout(guard, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            None => guard = t.wake.wait(guard).unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// Runs `action` at `at`.
pub(crate) fn at(at: Instant, action: impl FnOnce() + Send + 'static) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            tokio::time::sleep_until(at).await;
            action();
        });
        return;
    }
    let t = thread();
    let mut heap = t.heap.lock().unwrap_or_else(|e| e.into_inner());
    heap.1 += 1;
    let seq = heap.1;
    heap.0.push(Entry {
        at: at.into_std(),
        seq,
        action: Box::new(action),
    });
    t.wake.notify_one();
}
