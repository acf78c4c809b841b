//! The watchdog: one thread per pool that answers timed-out tasks at their
//! deadline and gives up on their threads.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::pool::{Shared, TimeoutFn};
use super::report::count;
use super::worker::start_worker;

/// Watches running tasks' deadlines from its own thread.
#[derive(Default)]
pub(super) struct Watchdog {
    state: Mutex<WatchState>,
    wake: Condvar,
}

#[derive(Default)]
struct WatchState {
    next: u64,
    running: Vec<Watched>,
    stopped: bool,
    expired: Vec<u64>,
}

struct Watched {
    ticket: u64,
    worker: u64,
    deadline: Instant,
    after: Duration,
    on_timeout: TimeoutFn,
}

impl Watchdog {
    pub(super) fn watch(
        &self,
        deadline: Instant,
        after: Duration,
        worker: u64,
        on_timeout: TimeoutFn,
    ) -> u64 {
        let mut s = self.state.lock();
        s.next += 1;
        let ticket = s.next;
        s.running.push(Watched {
            ticket,
            worker,
            deadline,
            after,
            on_timeout,
        });
        drop(s);
        self.wake.notify_one();
        ticket
    }

    /// The task ended; whether the watchdog had already timed it out.
    pub(super) fn finish(&self, ticket: u64) -> bool {
        let mut s = self.state.lock();
        if let Some(pos) = s.running.iter().position(|w| w.ticket == ticket) {
            s.running.swap_remove(pos);
            return false;
        }
        if let Some(pos) = s.expired.iter().position(|t| *t == ticket) {
            s.expired.swap_remove(pos);
            return true;
        }
        false
    }

    pub(super) fn stop(&self) {
        self.state.lock().stopped = true;
        self.wake.notify_one();
    }
}

pub(super) fn watchdog_loop<S: Send + 'static>(weak: Weak<Shared<S>>) {
    let Some(shared) = weak.upgrade() else { return };
    let dog = &shared.watchdog;
    loop {
        let mut s = dog.state.lock();
        if s.stopped {
            return;
        }
        let now = Instant::now();
        let mut fired = Vec::new();
        let mut i = 0;
        while i < s.running.len() {
            if s.running[i].deadline <= now {
                let w = s.running.swap_remove(i);
                // `false`: the task finished just now and answered its
                // caller itself; its worker carries on as usual.
                if (w.on_timeout)(w.after) {
                    fired.push(w.worker);
                    // Counted before the worker can see it expired.
                    shared.lost.fetch_add(1, Ordering::AcqRel);
                    s.expired.push(w.ticket);
                }
            } else {
                i += 1;
            }
        }
        if fired.is_empty() {
            // Sleep until the nearest deadline, or until a task is watched
            // or the pool stops.
            match s.running.iter().map(|w| w.deadline).min() {
                Some(deadline) => {
                    dog.wake.wait_until(&mut s, deadline);
                }
                None => dog.wake.wait(&mut s),
            }
            continue;
        }
        drop(s);
        for worker in fired {
            count(&shared, "timed_out");
            shared.active.fetch_sub(1, Ordering::AcqRel);
            // Detach the hung thread: a shutdown must not wait for it.
            {
                let mut threads = shared.threads.lock();
                if let Some(pos) = threads.iter().position(|(i, _)| *i == worker) {
                    drop(threads.swap_remove(pos));
                }
            }
            if shared.closed.load(Ordering::Acquire) {
                continue;
            }
            let lost = shared.lost.load(Ordering::Acquire);
            if lost > shared.max_lost {
                let missing = shared.missing.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::warn!(target: "cortex::workers", pool = %shared.name, lost, missing, "task timed out at the lost-thread cap; its worker is not replaced until a lost thread returns");
            } else {
                tracing::warn!(target: "cortex::workers", pool = %shared.name, "task timed out; its worker is given up on and replaced");
                start_worker(&shared);
            }
        }
    }
}
