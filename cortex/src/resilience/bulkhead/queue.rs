//! The places of a bulkhead and the queue of callers waiting for one.
//!
//! One word holds the places in use and the number of waiters, so the
//! fast paths (take a free place when nobody waits, give one back when
//! nobody waits) are a single compare-and-swap. Everything that involves a
//! waiter happens under the queue's lock: a fair bulkhead hands a place
//! straight to the first waiter (so it never looks free while someone
//! waits), and a waiter that gives up (timeout, or its future dropped)
//! takes itself out, or, if a place reached it meanwhile, passes it on.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::Arc;
use std::task::Waker;
use std::thread::Thread;

use parking_lot::Mutex;

const IN_USE: u64 = 0xFFFF_FFFF;
const ONE_WAITER: u64 = 1 << 32;

fn in_use(state: u64) -> u32 {
    (state & IN_USE) as u32
}

fn waiters(state: u64) -> u32 {
    (state >> 32) as u32
}

/// How a waiter is woken.
pub(super) enum Wake {
    Task(Waker),
    Thread(Thread),
    None,
}

/// One caller waiting for a place.
pub(super) struct Waiter {
    /// A place was handed to it (fair), or it was told to try again
    /// (not fair); set under the queue's lock.
    pub(super) granted: AtomicBool,
    pub(super) notified: AtomicBool,
    pub(super) wake: Mutex<Wake>,
}

impl Waiter {
    fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            granted: AtomicBool::new(false),
            notified: AtomicBool::new(false),
            wake: Mutex::new(Wake::None),
        })
    }

    fn wake(&self) {
        match std::mem::replace(&mut *self.wake.lock(), Wake::None) {
            Wake::Task(w) => w.wake(),
            Wake::Thread(t) => t.unpark(),
            Wake::None => {}
        }
    }
}

/// What asking for a place under the lock found.
pub(super) enum Entry {
    /// A place was free.
    Took,
    /// Queued.
    Waiting(Arc<Waiter>),
}

pub(super) struct Places {
    state: AtomicU64,
    pub(super) max: AtomicU32,
    pub(super) fair: AtomicBool,
    queue: Mutex<VecDeque<Arc<Waiter>>>,
}

impl Places {
    pub(super) fn new(max: u32, fair: bool) -> Places {
        Places {
            state: AtomicU64::new(0),
            max: AtomicU32::new(max),
            fair: AtomicBool::new(fair),
            queue: Mutex::new(VecDeque::new()),
        }
    }

    pub(super) fn in_use(&self) -> u32 {
        in_use(self.state.load(Acquire))
    }

    pub(super) fn waiting(&self) -> u32 {
        waiters(self.state.load(Acquire))
    }

    /// Takes a free place without waiting. A fair bulkhead leaves it to a
    /// waiter if there is one.
    #[inline]
    pub(super) fn try_take(&self) -> bool {
        let max = self.max.load(Acquire);
        let fair = self.fair.load(Relaxed);
        self.state
            .fetch_update(AcqRel, Acquire, |s| {
                (in_use(s) < max && !(fair && waiters(s) > 0)).then_some(s + 1)
            })
            .is_ok()
    }

    /// Takes a place if one is free, or queues a waiter. One
    /// compare-and-swap decides, so a place given back at that moment is
    /// either taken here or handed to this waiter (never lost).
    pub(super) fn enter(&self) -> Entry {
        let mut queue = self.queue.lock();
        if self.take_or_wait() {
            return Entry::Took;
        }
        let waiter = Waiter::new();
        queue.push_back(Arc::clone(&waiter));
        Entry::Waiting(waiter)
    }

    /// Under the lock: a place if one is free, else one more waiter.
    fn take_or_wait(&self) -> bool {
        let max = self.max.load(Acquire);
        let prev = self
            .state
            .fetch_update(AcqRel, Acquire, |s| {
                Some(if in_use(s) < max {
                    s + 1
                } else {
                    s + ONE_WAITER
                })
            })
            .unwrap_or(0);
        in_use(prev) < max
    }

    /// Gives a place back: to the first waiter in a fair bulkhead, else to
    /// whoever takes it first (the first waiter is told to try).
    #[inline]
    pub(super) fn release(&self) {
        let done = self
            .state
            .fetch_update(AcqRel, Acquire, |s| (waiters(s) == 0).then(|| s - 1))
            .is_ok();
        if !done {
            self.release_to_waiter();
        }
    }

    #[cold]
    fn release_to_waiter(&self) {
        let mut queue = self.queue.lock();
        let Some(first) = queue.pop_front() else {
            self.state.fetch_sub(1, AcqRel);
            return;
        };
        if self.fair.load(Relaxed) {
            // The place moves to the waiter: in use stays the same.
            self.state.fetch_sub(ONE_WAITER, AcqRel);
            first.granted.store(true, Release);
        } else {
            self.state.fetch_sub(ONE_WAITER + 1, AcqRel);
            first.notified.store(true, Release);
        }
        drop(queue);
        first.wake();
    }

    /// A notified (not fair) waiter that lost the race for the place waits
    /// again, first in line.
    pub(super) fn requeue(&self, waiter: &Arc<Waiter>) -> bool {
        let mut queue = self.queue.lock();
        waiter.notified.store(false, Relaxed);
        if self.take_or_wait() {
            return true;
        }
        queue.push_front(Arc::clone(waiter));
        false
    }

    /// A waiter gives up. True if a place reached it meanwhile (it owns
    /// that place now).
    pub(super) fn leave(&self, waiter: &Arc<Waiter>) -> bool {
        let mut queue = self.queue.lock();
        if waiter.granted.load(Relaxed) {
            return true;
        }
        if let Some(pos) = queue.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            queue.remove(pos);
            self.state.fetch_sub(ONE_WAITER, AcqRel);
        }
        false
    }

    /// After the limit grew: hand the new places to waiters.
    pub(super) fn admit(&self) {
        loop {
            let mut queue = self.queue.lock();
            let max = self.max.load(Acquire);
            let s = self.state.load(Acquire);
            if in_use(s) >= max || queue.is_empty() {
                return;
            }
            let Some(first) = queue.pop_front() else {
                return;
            };
            // One more place in use, one waiter less.
            self.state.fetch_sub(ONE_WAITER - 1, AcqRel);
            first.granted.store(true, Release);
            drop(queue);
            first.wake();
        }
    }
}
