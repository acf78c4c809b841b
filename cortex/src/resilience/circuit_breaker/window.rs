//! The sliding windows a breaker judges calls over.
//!
//! A success writes only a cell of its own thread group (a stripe), so
//! every core can record successes into one breaker without sharing a
//! cache line; failures and slow calls (the bad calls) go through a lock,
//! with their positions, and the window is judged there. Both windows say
//! whether the call they recorded can have raised a rate past a threshold,
//! so the breaker judges only then: after a bad call, when the window first
//! holds `minimum_calls` calls, and (time window) when a second turned and
//! old calls, successes too, left it. A success in a window already holding
//! `minimum_calls` calls can only lower the rates, so the steady state
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
    fn bad(self) -> bool {
        self.failed || self.slow
    }

    fn code(self) -> u8 {
        u8::from(self.failed) | (u8::from(self.slow) << 1)
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

const QUIET: Recorded = Recorded {
    totals: Totals {
        calls: 0,
        failed: 0,
        slow: 0,
    },
    judge: false,
};

/// One word per thread group, each on its own 128 bytes.
struct Tally<S: Family> {
    cells: Box<[[S::U64; 16]]>,
}

impl<S: Family> Tally<S> {
    fn new() -> Self {
        let n = crate::metrics::stripes();
        Tally {
            cells: (0..n)
                .map(|_| std::array::from_fn(|_| S::U64::new(0)))
                .collect(),
        }
    }

    #[inline(always)]
    fn mine(&self) -> &S::U64 {
        let n = self.cells.len();
        &self.cells[crate::metrics::my_stripe() & (n - 1)][0]
    }

    fn each(&self) -> impl Iterator<Item = &S::U64> {
        self.cells.iter().map(|c| &c[0])
    }

    fn sum(&self) -> u64 {
        self.each()
            .fold(0u64, |a, c| a.wrapping_add(c.load(Acquire)))
    }
}

/// A bad call in the count window: its position among the window's calls
/// (1-based; 0 is an empty slot) and whether it failed and/or was slow.
struct Bad<S: Family> {
    position: S::U64,
    code: S::U8,
}

/// The last N calls. Successes are counted in stripes; each bad call takes
/// its position (the calls counted so far, plus one) and a slot in a ring
/// of N, under the lock, and leaves the window once N calls came after it.
pub(crate) struct CountWindow<S: Family> {
    len: S::U64,
    ok: Tally<S>,
    /// `ok`'s sum when the window was last emptied.
    ok_base: S::U64,
    /// Bad calls in the window, and which of them failed or were slow;
    /// changed under `lock`.
    bad: S::U64,
    oldest: S::U64,
    failed: S::U64,
    slow: S::U64,
    ring: Box<[Bad<S>]>,
    /// `minimum_calls` was reached since the window was emptied.
    ramped: S::U64,
    lock: S::Lock,
}

impl<S: Family> CountWindow<S> {
    /// A window able to hold `capacity` calls, holding `len` now.
    pub(crate) fn new(capacity: u32, len: u32) -> Self {
        CountWindow {
            len: S::U64::new(u64::from(len.clamp(1, capacity.max(1)))),
            ok: Tally::new(),
            ok_base: S::U64::new(0),
            bad: S::U64::new(0),
            oldest: S::U64::new(0),
            failed: S::U64::new(0),
            slow: S::U64::new(0),
            ring: (0..capacity.max(1))
                .map(|_| Bad {
                    position: S::U64::new(0),
                    code: S::U8::new(0),
                })
                .collect(),
            ramped: S::U64::new(0),
            lock: S::Lock::new(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// Fast successes (not slow) recorded in this window's life, across
    /// resets.
    pub(crate) fn successes(&self) -> u64 {
        self.ok.sum()
    }

    /// Records one call.
    #[inline(always)]
    pub(crate) fn record(&self, outcome: Outcome, minimum_calls: u32) -> Recorded {
        if !outcome.bad() {
            self.ok.mine().fetch_add(1, Relaxed);
            if self.ramped.load(Relaxed) != 0 {
                return QUIET;
            }
            return self.ramp(minimum_calls);
        }
        self.record_bad(outcome, minimum_calls)
    }

    /// Before `minimum_calls` were reached: has this success reached them?
    #[cold]
    fn ramp(&self, minimum_calls: u32) -> Recorded {
        let _lock = self.lock.lock();
        let totals = self.totals_locked();
        if totals.calls < u64::from(minimum_calls) {
            return QUIET;
        }
        self.ramped.store(1, Relaxed);
        Recorded {
            totals,
            judge: true,
        }
    }

    #[cold]
    fn record_bad(&self, outcome: Outcome, minimum_calls: u32) -> Recorded {
        let _lock = self.lock.lock();
        let bad = self.bad.load(Relaxed);
        let position = self.counted() + 1;
        let slot = &self.ring[(bad % self.ring.len() as u64) as usize];
        // The slot's last occupant is at least a ring's length of calls
        // back, outside the window: make sure it left.
        self.expire(position);
        if slot.position.load(Relaxed) != 0 {
            self.drop_oldest();
        }
        slot.position.store(position, Relaxed);
        slot.code.store(outcome.code(), Relaxed);
        self.bad.store(bad + 1, Release);
        if outcome.failed {
            self.failed.fetch_add(1, Relaxed);
        }
        if outcome.slow {
            self.slow.fetch_add(1, Relaxed);
        }
        let totals = self.totals_locked();
        if totals.calls >= u64::from(minimum_calls) {
            self.ramped.store(1, Relaxed);
        }
        Recorded {
            totals,
            judge: true,
        }
    }

    /// Calls counted since the window was emptied.
    fn counted(&self) -> u64 {
        let ok = self.ok.sum().wrapping_sub(self.ok_base.load(Relaxed));
        ok.wrapping_add(self.bad.load(Relaxed))
    }

    /// Under the lock: with `now` calls counted, the bad calls N or more
    /// calls back leave.
    fn expire(&self, now: u64) {
        let n = self.len.load(Relaxed);
        while self.oldest.load(Relaxed) < self.bad.load(Relaxed) {
            let slot = &self.ring[(self.oldest.load(Relaxed) % self.ring.len() as u64) as usize];
            if slot.position.load(Relaxed) + n > now {
                break;
            }
            self.drop_oldest();
        }
    }

    fn drop_oldest(&self) {
        let oldest = self.oldest.load(Relaxed);
        let slot = &self.ring[(oldest % self.ring.len() as u64) as usize];
        let code = slot.code.load(Relaxed);
        if code & 1 != 0 {
            self.failed.fetch_sub(1, Relaxed);
        }
        if code & 2 != 0 {
            self.slow.fetch_sub(1, Relaxed);
        }
        slot.position.store(0, Relaxed);
        self.oldest.store(oldest + 1, Relaxed);
    }

    fn totals_locked(&self) -> Totals {
        let counted = self.counted();
        self.expire(counted);
        Totals {
            calls: counted.min(self.len.load(Relaxed)),
            failed: self.failed.load(Relaxed),
            slow: self.slow.load(Relaxed),
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let _lock = self.lock.lock();
        self.totals_locked()
    }

    /// Empties the window and makes it hold `len` calls (at most its
    /// capacity). Callers hold the breaker's transition lock.
    pub(crate) fn reset(&self, len: u32) {
        let _lock = self.lock.lock();
        self.len
            .store(u64::from(len).clamp(1, self.ring.len() as u64), Relaxed);
        for slot in self.ring.iter() {
            slot.position.store(0, Relaxed);
            slot.code.store(0, Relaxed);
        }
        // Counting starts again from here: the stripes keep running, the
        // base moves.
        self.ok_base.store(self.ok.sum(), Relaxed);
        self.bad.store(0, Relaxed);
        self.oldest.store(0, Relaxed);
        self.failed.store(0, Relaxed);
        self.slow.store(0, Relaxed);
        self.ramped.store(0, Relaxed);
    }
}

/// Seconds and counts share a word in a success stripe.
const TAG_SHIFT: u32 = 32;
const COUNT_MASK: u64 = (1 << TAG_SHIFT) - 1;

struct Bucket<S: Family> {
    calls: S::U64,
    failed: S::U64,
    slow: S::U64,
}

/// The calls of the last `len` seconds, in one-second buckets, with running
/// totals. A success counts in its stripe's cell for the current second;
/// when a stripe's second is over, its count moves into that second's
/// bucket (once a second per stripe, under the turn lock). Bad calls go to
/// the buckets directly. Turning to a new second expires exactly the
/// seconds that left the window; recording is O(1).
pub(crate) struct TimeWindow<S: Family> {
    buckets: Box<[Bucket<S>]>,
    len: S::U64,
    /// The latest second recorded into; calls that read the clock earlier
    /// count in it, so none is lost.
    latest: S::U64,
    calls: S::U64,
    failed: S::U64,
    slow: S::U64,
    /// Per stripe: (second << 32) | successes in it not yet in a bucket.
    ok: Tally<S>,
    /// `minimum_calls` is reached (until calls leave the window).
    ramped: S::U64,
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
            ok: Tally::new(),
            ramped: S::U64::new(0),
            turn: S::Lock::new(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buckets.len()
    }

    /// Records a call made in second `now_secs`.
    #[inline]
    pub(crate) fn record(&self, now_secs: u64, outcome: Outcome, minimum_calls: u32) -> Recorded {
        let mut judge = false;
        if now_secs > self.latest.load(Acquire) {
            // Old calls (successes too) may have left: judge.
            judge = self.advance(now_secs);
        }
        let second = self.latest.load(Acquire);
        if outcome.bad() {
            let _turn = self.turn.lock();
            let bucket = self.bucket(second);
            bucket.calls.fetch_add(1, Relaxed);
            self.calls.fetch_add(1, AcqRel);
            if outcome.failed {
                bucket.failed.fetch_add(1, Relaxed);
                self.failed.fetch_add(1, AcqRel);
            }
            if outcome.slow {
                bucket.slow.fetch_add(1, Relaxed);
                self.slow.fetch_add(1, AcqRel);
            }
            judge = true;
        } else {
            self.count_ok(second);
            judge |= self.ramped.load(Relaxed) == 0;
        }
        if !judge {
            return QUIET;
        }
        let totals = self.totals_at(second);
        let enough = totals.calls >= u64::from(minimum_calls);
        self.ramped.store(u64::from(enough), Relaxed);
        Recorded {
            totals,
            judge: outcome.bad() || enough,
        }
    }

    /// A success in `second`, in this thread's stripe.
    #[inline(always)]
    fn count_ok(&self, second: u64) {
        let cell = self.ok.mine();
        let tag = second & COUNT_MASK;
        let mut seen = cell.load(Relaxed);
        loop {
            let (next, moved) = if seen >> TAG_SHIFT == tag {
                (seen + 1, None)
            } else {
                ((tag << TAG_SHIFT) | 1, Some(seen))
            };
            match cell.compare_exchange(seen, next, AcqRel, Relaxed) {
                Ok(_) => {
                    if let Some(old) = moved {
                        self.settle(old);
                    }
                    return;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// Moves a stripe's finished second into its bucket, if that second is
    /// still in the window.
    #[cold]
    fn settle(&self, old: u64) {
        let count = old & COUNT_MASK;
        if count == 0 {
            return;
        }
        let _turn = self.turn.lock();
        let latest = self.latest.load(Acquire);
        let second = self.second_of(old >> TAG_SHIFT, latest);
        let n = self.len.load(Relaxed).max(1);
        if second + n > latest {
            self.bucket(second).calls.fetch_add(count, Relaxed);
            self.calls.fetch_add(count, AcqRel);
        }
    }

    /// The full second a 32-bit tag stands for, near `latest`.
    fn second_of(&self, tag: u64, latest: u64) -> u64 {
        let base = latest & !COUNT_MASK;
        let s = base | tag;
        if s > latest {
            s.saturating_sub(1 << TAG_SHIFT)
        } else {
            s
        }
    }

    fn bucket(&self, second: u64) -> &Bucket<S> {
        let n = self.len.load(Relaxed).max(1);
        &self.buckets[(second % n) as usize]
    }

    /// The totals as of second `now_secs`.
    pub(crate) fn totals(&self, now_secs: u64) -> Totals {
        if now_secs > self.latest.load(Acquire) {
            self.advance(now_secs);
        }
        self.totals_at(self.latest.load(Acquire))
    }

    /// Buckets plus the stripes' seconds still in the window.
    fn totals_at(&self, latest: u64) -> Totals {
        let n = self.len.load(Relaxed).max(1);
        let pending: u64 = self
            .ok
            .each()
            .map(|c| c.load(Acquire))
            .filter(|v| self.second_of(v >> TAG_SHIFT, latest) + n > latest)
            .map(|v| v & COUNT_MASK)
            .sum();
        let calls = self.calls.load(Acquire).wrapping_add(pending);
        Totals {
            calls,
            failed: self.failed.load(Acquire).min(calls),
            slow: self.slow.load(Acquire).min(calls),
        }
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
        for cell in self.ok.each() {
            cell.swap(0, AcqRel);
        }
        self.ramped.store(0, Relaxed);
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
        assert_eq!(w.record(FAIL, 3).totals, totals(1, 1, 0));
        assert!(!w.record(OK, 3).judge, "2 calls: below minimum");
        // The third call fills the window to minimum_calls: judged, though a
        // success.
        let r = w.record(OK, 3);
        assert!(r.judge);
        assert_eq!(r.totals, totals(3, 1, 0));
        assert_eq!(w.record(SLOW_FAIL, 3).totals, totals(3, 1, 1));
        // A success in a full window is not judged.
        assert!(!w.record(OK, 3).judge);
        assert!(!w.record(OK, 3).judge);
        assert_eq!(w.totals(), totals(3, 1, 1));
        assert!(!w.record(OK, 3).judge);
        assert_eq!(w.totals(), totals(3, 0, 0));
    }

    #[test]
    fn count_window_with_more_failures_than_it_holds() {
        let w = CountWindow::<Std>::new(4, 4);
        for _ in 0..10 {
            w.record(FAIL, 1);
        }
        assert_eq!(w.totals(), totals(4, 4, 0));
        w.record(OK, 1);
        w.record(OK, 1);
        assert_eq!(w.totals(), totals(4, 2, 0));
    }

    #[test]
    fn count_window_reused_smaller() {
        let w = CountWindow::<Std>::new(8, 8);
        for _ in 0..8 {
            w.record(FAIL, 1);
        }
        w.reset(2);
        assert_eq!(w.totals(), Totals::default());
        w.record(FAIL, 2);
        w.record(OK, 2);
        w.record(OK, 2);
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
        w.record(12, OK, 2);
        assert_eq!(w.totals(12), totals(2, 0, 0));
        let r = w.record(13, OK, 2);
        assert!(r.judge);
        assert_eq!(r.totals, totals(2, 0, 0));
        assert!(!w.record(13, OK, 2).judge);
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

    #[test]
    fn memory_is_what_the_docs_say() {
        let stripes = crate::metrics::stripes();
        assert_eq!(std::mem::size_of::<Bad<Std>>(), 16);
        assert_eq!(std::mem::size_of::<Bucket<Std>>(), 24);
        let tally = Tally::<Std>::new();
        assert_eq!(
            tally.cells.len() * std::mem::size_of_val(&tally.cells[0]),
            stripes * 128
        );
        let w = CountWindow::<Std>::new(128, 100);
        assert_eq!(w.ring.len(), 128);
    }

    #[test]
    fn successes_from_many_threads_are_all_counted() {
        let w = std::sync::Arc::new(CountWindow::<Std>::new(1 << 20, 1 << 20));
        let t = std::sync::Arc::new(TimeWindow::<Std>::new(64, 60, 0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (w, t) = (std::sync::Arc::clone(&w), std::sync::Arc::clone(&t));
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        w.record(OK, 1);
                        t.record(i / 2_000, OK, 1);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(w.totals().calls, 80_000);
        assert_eq!(t.totals(4).calls, 80_000);
    }
}
