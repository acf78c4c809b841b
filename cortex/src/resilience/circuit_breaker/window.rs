//! The sliding windows a breaker judges calls over, lock-free and exact.
//!
//! Both report whether the call they recorded can have raised a rate past
//! a threshold, so the breaker judges only then: after a failure or a slow
//! call, when the window first holds `minimum_calls` calls, and (time
//! window) when a second turned and old calls, successes too, left it. A
//! success in a full window can only lower the rates, so the steady state
//! judges nothing.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::resilience::sync::{Atom, Family, Lock};

/// One call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

impl Outcome {
    /// A slot's code: never 0, which is an empty slot.
    fn code(self) -> u8 {
        1 | (u8::from(self.failed) << 1) | (u8::from(self.slow) << 2)
    }

    fn bad(self) -> bool {
        self.failed || self.slow
    }
}

/// Totals of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    pub(crate) calls: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
}

/// What recording a call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) totals: Totals,
    /// The rates may have risen: judge them.
    pub(crate) judge: bool,
}

/// The last N calls: a ring of outcomes, updated with `swap`, so the
/// counts always match the slots, however many callers race on one slot.
pub(crate) struct CountWindow<S: Family> {
    slots: Box<[S::U8]>,
    /// Slots in use (at most `slots.len()`; a window reused for a smaller
    /// size uses a prefix).
    len: S::U64,
    filled: S::U64,
    failed: S::I64,
    slow: S::I64,
}

impl<S: Family> CountWindow<S> {
    /// A window able to hold `capacity` calls, holding `len` now.
    pub(crate) fn new(capacity: u32, len: u32) -> Self {
        CountWindow {
            slots: (0..capacity.max(1)).map(|_| S::U8::new(0)).collect(),
            len: S::U64::new(u64::from(len.clamp(1, capacity.max(1)))),
            filled: S::U64::new(0),
            failed: S::I64::new(0),
            slow: S::I64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Records the call with sequence number `index`.
    #[inline(always)]
    pub(crate) fn record(&self, index: u64, outcome: Outcome, minimum_calls: u32) -> Recorded {
        let n = self.len.load(Relaxed).max(1);
        let slot = &self.slots[(index % n) as usize];
        let new = outcome.code();
        // A success over a success (the steady state) writes nothing.
        let seen = slot.load(Relaxed);
        let old = if seen == new {
            new
        } else {
            slot.swap(new, Relaxed)
        };
        let mut newly_full = false;
        if old != new {
            let df = i64::from((new >> 1) & 1) - i64::from((old >> 1) & 1);
            let ds = i64::from((new >> 2) & 1) - i64::from((old >> 2) & 1);
            if df != 0 {
                self.failed.fetch_add(df, Relaxed);
            }
            if ds != 0 {
                self.slow.fetch_add(ds, Relaxed);
            }
            if old == 0 {
                // An empty slot filled: one more call in the window.
                let filled = self.filled.fetch_add(1, Relaxed) + 1;
                newly_full = filled == u64::from(minimum_calls);
            }
        }
        if outcome.bad() || newly_full {
            Recorded {
                totals: self.totals(),
                judge: true,
            }
        } else {
            Recorded {
                totals: Totals::default(),
                judge: false,
            }
        }
    }

    /// The failures the slots hold, counted one by one.
    #[cfg(test)]
    pub(crate) fn failures_in_slots(&self) -> u64 {
        let n = self.len.load(Relaxed) as usize;
        self.slots[..n]
            .iter()
            .filter(|s| s.load(Relaxed) & 2 != 0)
            .count() as u64
    }

    pub(crate) fn totals(&self) -> Totals {
        let n = self.len.load(Relaxed);
        Totals {
            calls: self.filled.load(Relaxed).min(n),
            failed: u64::try_from(self.failed.load(Relaxed)).unwrap_or(0),
            slow: u64::try_from(self.slow.load(Relaxed)).unwrap_or(0),
        }
    }

    /// Empties the window and makes it hold `len` calls (at most its
    /// capacity). Callers hold the breaker's transition lock.
    pub(crate) fn reset(&self, len: u32) {
        self.len
            .store(u64::from(len).clamp(1, self.slots.len() as u64), Relaxed);
        for slot in self.slots.iter() {
            slot.store(0, Relaxed);
        }
        self.failed.store(0, Relaxed);
        self.slow.store(0, Relaxed);
        self.filled.store(0, Relaxed);
    }
}

struct Bucket<S: Family> {
    calls: S::U64,
    failed: S::U64,
    slow: S::U64,
}

/// The calls of the last `len` seconds, in one-second buckets, with running
/// totals: recording is O(1), and turning to a new second expires exactly
/// the seconds that left the window, once, under a lock taken once a
/// second.
pub(crate) struct TimeWindow<S: Family> {
    buckets: Box<[Bucket<S>]>,
    len: S::U64,
    /// The latest second recorded into; calls that read the clock earlier
    /// count in it, so none is lost.
    latest: S::U64,
    calls: S::U64,
    failed: S::U64,
    slow: S::U64,
    turn: S::Lock,
}

impl<S: Family> TimeWindow<S> {
    /// A window able to hold `capacity` seconds, holding `len` now, whose
    /// current second is `now_secs`.
    pub(crate) fn new(capacity: u32, len: u32, now_secs: u64) -> Self {
        TimeWindow {
            buckets: (0..capacity.max(1))
                .map(|_| Bucket {
                    calls: S::U64::new(0),
                    failed: S::U64::new(0),
                    slow: S::U64::new(0),
                })
                .collect(),
            len: S::U64::new(u64::from(len.clamp(1, capacity.max(1)))),
            latest: S::U64::new(now_secs),
            calls: S::U64::new(0),
            failed: S::U64::new(0),
            slow: S::U64::new(0),
            turn: S::Lock::new(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buckets.len()
    }

    /// Records a call made in second `now_secs`.
    #[inline]
    pub(crate) fn record(&self, now_secs: u64, outcome: Outcome, minimum_calls: u32) -> Recorded {
        let mut judge = outcome.bad();
        if now_secs > self.latest.load(Acquire) {
            // Old calls (successes too) may have left: judge.
            judge |= self.advance(now_secs);
        }
        let second = self.latest.load(Acquire);
        let n = self.len.load(Relaxed).max(1);
        let bucket = &self.buckets[(second % n) as usize];
        bucket.calls.fetch_add(1, Relaxed);
        let calls = self.calls.fetch_add(1, AcqRel) + 1;
        if outcome.failed {
            bucket.failed.fetch_add(1, Relaxed);
            self.failed.fetch_add(1, AcqRel);
        }
        if outcome.slow {
            bucket.slow.fetch_add(1, Relaxed);
            self.slow.fetch_add(1, AcqRel);
        }
        judge |= calls == u64::from(minimum_calls);
        Recorded {
            totals: if judge {
                self.current()
            } else {
                Totals::default()
            },
            judge,
        }
    }

    fn current(&self) -> Totals {
        let calls = self.calls.load(Acquire);
        Totals {
            calls,
            failed: self.failed.load(Acquire).min(calls),
            slow: self.slow.load(Acquire).min(calls),
        }
    }

    /// The totals as of second `now_secs`.
    pub(crate) fn totals(&self, now_secs: u64) -> Totals {
        if now_secs > self.latest.load(Acquire) {
            self.advance(now_secs);
        }
        self.current()
    }

    /// Moves the window to second `now_secs`, expiring the seconds that left
    /// it; whether it moved.
    #[cold]
    fn advance(&self, now_secs: u64) -> bool {
        let _turn = self.turn.lock();
        let latest = self.latest.load(Acquire);
        if now_secs <= latest {
            return false;
        }
        let n = self.len.load(Relaxed).max(1);
        // Seconds latest+1 ..= now take over the buckets of the seconds that
        // are now older than the window; at most `n` of them.
        let first = latest.max(now_secs.saturating_sub(n)) + 1;
        for second in first..=now_secs {
            self.empty(&self.buckets[(second % n) as usize]);
        }
        self.latest.store(now_secs, Release);
        true
    }

    fn empty(&self, bucket: &Bucket<S>) {
        // Calls racing with this either land before the swap (and are taken
        // out with it) or after (and stay, in the new second): the running
        // totals always end up equal to the buckets' sum.
        let calls = bucket.calls.swap(0, AcqRel);
        let failed = bucket.failed.swap(0, AcqRel);
        let slow = bucket.slow.swap(0, AcqRel);
        self.calls.fetch_sub(calls, AcqRel);
        self.failed.fetch_sub(failed, AcqRel);
        self.slow.fetch_sub(slow, AcqRel);
    }

    /// Empties the window and makes it hold `len` seconds from `now_secs`.
    /// Callers hold the breaker's transition lock.
    pub(crate) fn reset(&self, len: u32, now_secs: u64) {
        let _turn = self.turn.lock();
        self.len
            .store(u64::from(len).clamp(1, self.buckets.len() as u64), Relaxed);
        for bucket in self.buckets.iter() {
            self.empty(bucket);
        }
        self.latest.store(now_secs, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::sync::Std;

    const OK: Outcome = Outcome {
        failed: false,
        slow: false,
    };
    const FAIL: Outcome = Outcome {
        failed: true,
        slow: false,
    };
    const SLOW_FAIL: Outcome = Outcome {
        failed: true,
        slow: true,
    };

    fn totals(calls: u64, failed: u64, slow: u64) -> Totals {
        Totals {
            calls,
            failed,
            slow,
        }
    }

    #[test]
    fn count_window_keeps_the_last_n() {
        let w = CountWindow::<Std>::new(3, 3);
        assert_eq!(w.record(0, FAIL, 3).totals, totals(1, 1, 0));
        assert!(!w.record(1, OK, 3).judge, "2 calls: below minimum");
        // The third call fills the window to minimum_calls: judged, though a
        // success.
        let r = w.record(2, OK, 3);
        assert!(r.judge);
        assert_eq!(r.totals, totals(3, 1, 0));
        assert_eq!(w.record(3, SLOW_FAIL, 3).totals, totals(3, 1, 1));
        // A success in a full window is not judged.
        assert!(!w.record(4, OK, 3).judge);
        assert!(!w.record(5, OK, 3).judge);
        assert_eq!(w.totals(), totals(3, 1, 1));
        assert!(!w.record(6, OK, 3).judge);
        assert_eq!(w.totals(), totals(3, 0, 0));
    }

    #[test]
    fn count_window_reused_smaller() {
        let w = CountWindow::<Std>::new(8, 8);
        for i in 0..8 {
            w.record(i, FAIL, 1);
        }
        w.reset(2);
        assert_eq!(w.totals(), Totals::default());
        w.record(0, FAIL, 2);
        w.record(1, OK, 2);
        w.record(2, OK, 2);
        assert_eq!(w.totals(), totals(2, 0, 0));
        assert_eq!(w.capacity(), 8);
    }

    #[test]
    fn time_window_forgets_old_seconds_in_constant_time() {
        let w = TimeWindow::<Std>::new(2, 2, 10);
        w.record(10, FAIL, 5);
        w.record(11, OK, 5);
        assert_eq!(w.totals(11), totals(2, 1, 0));
        // Second 12 takes over second 10's bucket: its failure leaves, and
        // the turn is judged although the call succeeded.
        let r = w.record(12, OK, 5);
        assert!(r.judge);
        assert_eq!(r.totals, totals(2, 0, 0));
        assert!(!w.record(12, OK, 5).judge);
        // Long idle: everything left.
        assert_eq!(w.totals(1_000_000), Totals::default());
    }

    #[test]
    fn a_late_clock_read_counts_in_the_latest_second() {
        let w = TimeWindow::<Std>::new(3, 3, 0);
        w.record(5, OK, 9);
        w.record(4, FAIL, 9);
        assert_eq!(w.totals(5), totals(2, 1, 0));
        assert_eq!(w.totals(8), Totals::default());
    }
}
