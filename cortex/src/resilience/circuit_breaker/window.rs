//! The sliding windows a breaker judges calls over, lock-free.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};

/// Call counts packed in one `u64` (21 bits each: calls, failed, slow), so a
/// single atomic add updates all three.
const FIELD: u32 = 21;
const MASK: u64 = (1 << FIELD) - 1;

/// One call's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) failed: bool,
    pub(crate) slow: bool,
}

impl Outcome {
    fn code(self) -> u8 {
        1 | (u8::from(self.failed) << 1) | (u8::from(self.slow) << 2)
    }
}

fn pack(code: u8) -> u64 {
    let c = u64::from(code);
    (c & 1) | (((c >> 1) & 1) << FIELD) | (((c >> 2) & 1) << (2 * FIELD))
}

/// Totals of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Totals {
    pub(crate) calls: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
}

fn unpack(v: u64) -> Totals {
    Totals {
        calls: v & MASK,
        failed: (v >> FIELD) & MASK,
        slow: (v >> (2 * FIELD)) & MASK,
    }
}

/// The last N calls: a ring of outcomes plus failed and slow counts.
///
/// A success that overwrites a success (the steady state) is a plain load
/// and store of its slot: no read-modify-write beyond the caller's sequence
/// number. Counts change only when a failure or slow call enters or leaves.
/// Two callers more than a window apart racing on one slot can skew the
/// counts by one; the counts are rebuilt from the slots once per window
/// turn, so such a skew does not last.
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    failed: AtomicI64,
    slow: AtomicI64,
    filled: AtomicU64,
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> Self {
        CountWindow {
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
            failed: AtomicI64::new(0),
            slow: AtomicI64::new(0),
            filled: AtomicU64::new(0),
        }
    }

    /// Records the call with sequence number `index` and returns the
    /// totals after it.
    #[inline(always)]
    pub(crate) fn record(&self, index: u64, outcome: Outcome) -> Totals {
        let n = self.slots.len() as u64;
        let slot = &self.slots[(index % n) as usize];
        let new = outcome.code();
        let old = slot.load(Relaxed);
        slot.store(new, Relaxed);
        let df = i64::from((new >> 1) & 1) - i64::from((old >> 1) & 1);
        let ds = i64::from((new >> 2) & 1) - i64::from((old >> 2) & 1);
        if df != 0 {
            self.failed.fetch_add(df, Relaxed);
        }
        if ds != 0 {
            self.slow.fetch_add(ds, Relaxed);
        }
        if self.filled.load(Relaxed) < n {
            self.filled.fetch_add(1, Relaxed);
        }
        if index % n == n - 1 {
            self.resync();
        }
        self.totals()
    }

    #[cold]
    fn resync(&self) {
        let (mut failed, mut slow) = (0i64, 0i64);
        for slot in self.slots.iter() {
            let c = slot.load(Relaxed);
            failed += i64::from((c >> 1) & 1);
            slow += i64::from((c >> 2) & 1);
        }
        self.failed.store(failed, Relaxed);
        self.slow.store(slow, Relaxed);
    }

    pub(crate) fn totals(&self) -> Totals {
        let n = self.slots.len() as u64;
        Totals {
            calls: self.filled.load(Relaxed).min(n),
            failed: u64::try_from(self.failed.load(Relaxed)).unwrap_or(0),
            slow: u64::try_from(self.slow.load(Relaxed)).unwrap_or(0),
        }
    }

    /// Empties the window.
    pub(crate) fn reset(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Relaxed);
        }
        self.failed.store(0, Relaxed);
        self.slow.store(0, Relaxed);
        self.filled.store(0, Relaxed);
    }
}

/// The calls of the last `seconds` seconds, in one-second buckets.
pub(crate) struct TimeWindow {
    buckets: Box<[AtomicU64]>,
    epochs: Box<[AtomicU64]>,
}

impl TimeWindow {
    pub(crate) fn new(seconds: u64) -> Self {
        TimeWindow {
            buckets: (0..seconds).map(|_| AtomicU64::new(0)).collect(),
            epochs: (0..seconds).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    /// Records a call in second `now_secs` and returns the window's totals.
    pub(crate) fn record(&self, now_secs: u64, outcome: Outcome) -> Totals {
        let i = (now_secs % self.buckets.len() as u64) as usize;
        let epoch = self.epochs[i].load(Relaxed);
        if epoch != now_secs
            && self.epochs[i]
                .compare_exchange(epoch, now_secs, Relaxed, Relaxed)
                .is_ok()
        {
            // This bucket last held an older second: start it afresh.
            self.buckets[i].store(0, Relaxed);
        }
        self.buckets[i].fetch_add(pack(outcome.code()), Relaxed);
        self.totals(now_secs)
    }

    /// Empties the window.
    pub(crate) fn reset(&self) {
        for epoch in self.epochs.iter() {
            epoch.store(u64::MAX, Relaxed);
        }
        for bucket in self.buckets.iter() {
            bucket.store(0, Relaxed);
        }
    }

    pub(crate) fn totals(&self, now_secs: u64) -> Totals {
        let n = self.buckets.len() as u64;
        let mut t = Totals::default();
        for (bucket, epoch) in self.buckets.iter().zip(self.epochs.iter()) {
            let e = epoch.load(Relaxed);
            if e != u64::MAX && e <= now_secs && now_secs - e < n {
                let b = unpack(bucket.load(Relaxed));
                t.calls += b.calls;
                t.failed += b.failed;
                t.slow += b.slow;
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn count_window_keeps_the_last_n() {
        let w = CountWindow::new(3);
        assert_eq!(
            w.record(0, FAIL),
            Totals {
                calls: 1,
                failed: 1,
                slow: 0
            }
        );
        w.record(1, OK);
        assert_eq!(
            w.record(2, SLOW_FAIL),
            Totals {
                calls: 3,
                failed: 2,
                slow: 1
            }
        );
        // The fourth call pushes out the first (a failure).
        assert_eq!(
            w.record(3, OK),
            Totals {
                calls: 3,
                failed: 1,
                slow: 1
            }
        );
        assert_eq!(
            w.record(4, OK),
            Totals {
                calls: 3,
                failed: 1,
                slow: 1
            }
        );
        assert_eq!(
            w.record(5, OK),
            Totals {
                calls: 3,
                failed: 0,
                slow: 0
            }
        );
    }

    #[test]
    fn time_window_forgets_old_seconds() {
        let w = TimeWindow::new(2);
        w.record(10, FAIL);
        assert_eq!(
            w.record(11, OK),
            Totals {
                calls: 2,
                failed: 1,
                slow: 0
            }
        );
        // Second 12 reuses second 10's bucket.
        assert_eq!(
            w.record(12, OK),
            Totals {
                calls: 2,
                failed: 0,
                slow: 0
            }
        );
        assert_eq!(w.totals(20), Totals::default());
    }
}
