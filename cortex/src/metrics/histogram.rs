//! Histograms with fixed bucket bounds.

use std::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use super::buckets::Buckets;
use super::native::NativeCell;
use super::slot::Slot;
use super::stripe::Spill;

/// The default bucket bounds, in seconds:
/// `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`.
pub const DEFAULT_BUCKETS: [f64; 11] = cortex_rules::DEFAULT_BUCKETS;

// A single duration longer than this (about 13 days) is summed as a float.
// Shorter ones go to a u64 of whole nanoseconds per cell: 584 years, which
// a busy series does reach (10,000 requests a second of 100 ms fill 2^63 ns
// in 29 years of uptime, a hundred such series in a few months... and a
// million a second in days). So a word that passes 2^63 moves 2^63 ns into
// the float sum, under a sequence lock that scrapes read through: `_sum`
// never wraps and never drops.
const MAX_NANOS_OBSERVATION: u64 = 1 << 50;

/// What a nanosecond word moves into the float sum when it passes it.
const MOVE_NANOS: u64 = 1 << 63;

/// The atomics behind a histogram.
///
/// `buckets[i]` counts observations that fell in bucket `i` alone (not
/// cumulated); the last bucket is `+Inf`. A histogram may have several
/// *lanes*, each a full set of buckets: a function with both `#[counted]`
/// and `#[timed]` keeps one lane per call outcome, so a single atomic add
/// records both the outcome count and the latency bucket. The exposition
/// sums the lanes. The total count is the sum of the
/// buckets, so `_count` always equals the `+Inf` bucket in the exposition.
/// The sum is kept in two parts: whole nanoseconds (the timing fast path, a
/// single `fetch_add`) and an `f64` for other observations.
///
/// Contended, the whole set (every bucket of every lane and both sums) is
/// striped over cores (see `metrics::stripe`): each observation lands in one
/// set, a scrape adds them up. A scrape reads the buckets before the sums,
/// so it may count an observation racing with it in its bucket and not yet
/// in `_sum`; every series (each bucket, `_count`, `_sum`) only grows from
/// one scrape to the next.
#[doc(hidden)]
pub struct HistogramCell {
    bounds: Slot<[f64]>,
    bounds_nanos: Slot<[u64]>,
    buckets: Slot<[AtomicU64]>,
    lanes: usize,
    sum_bits: AtomicU64,
    sum_nanos: AtomicU64,
    /// A sequence lock over moves from a nanosecond word to `sum_bits`:
    /// odd while one is under way.
    sum_moves: AtomicU64,
    spill: Spill,
    /// One per bucket slot (all lanes), made when a sampled span is first
    /// current during an observation.
    pub(crate) exemplars: super::exemplar::Exemplars,
    /// Native (exponential) buckets, counted beside the classic ones.
    native: Option<Slot<NativeCell>>,
}

impl HistogramCell {
    /// Storage for a macro call site. The macro checked the bounds at compile
    /// time; `bounds_nanos` holds the same bounds in whole nanoseconds and
    /// `buckets` has one more slot than `bounds`.
    pub const fn from_static(
        bounds: &'static [f64],
        bounds_nanos: &'static [u64],
        buckets: &'static [AtomicU64],
    ) -> Self {
        Self::from_static_lanes(bounds, bounds_nanos, buckets, 1)
    }

    /// Like [`from_static`](Self::from_static) with `lanes` sets of buckets;
    /// `buckets` has `lanes * (bounds.len() + 1)` slots.
    pub const fn from_static_lanes(
        bounds: &'static [f64],
        bounds_nanos: &'static [u64],
        buckets: &'static [AtomicU64],
        lanes: usize,
    ) -> Self {
        Self::from_static_parts(bounds, bounds_nanos, buckets, lanes, None)
    }

    /// Like [`from_static_lanes`](Self::from_static_lanes), with native
    /// buckets beside the classic ones (`#[timed(native)]`).
    pub const fn from_static_parts(
        bounds: &'static [f64],
        bounds_nanos: &'static [u64],
        buckets: &'static [AtomicU64],
        lanes: usize,
        native: Option<&'static NativeCell>,
    ) -> Self {
        assert!(buckets.len() == lanes * (bounds.len() + 1));
        assert!(bounds_nanos.len() == bounds.len());
        HistogramCell {
            bounds: Slot::Static(bounds),
            bounds_nanos: Slot::Static(bounds_nanos),
            buckets: Slot::Static(buckets),
            lanes,
            sum_bits: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            sum_moves: AtomicU64::new(0),
            spill: Spill::new(),
            exemplars: super::exemplar::Exemplars::new(),
            native: match native {
                Some(n) => Some(Slot::Static(n)),
                None => None,
            },
        }
    }

    fn owned(layout: &Buckets) -> Self {
        let bounds = layout.bounds();
        let nanos: Vec<u64> = bounds.iter().map(|&b| seconds_to_nanos(b)).collect();
        let buckets: Vec<AtomicU64> = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        HistogramCell {
            bounds: Slot::Owned(Arc::from(bounds)),
            bounds_nanos: Slot::Owned(Arc::from(nanos)),
            buckets: Slot::Owned(Arc::from(buckets)),
            lanes: 1,
            sum_bits: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
            sum_moves: AtomicU64::new(0),
            spill: Spill::new(),
            exemplars: super::exemplar::Exemplars::new(),
            native: layout
                .native_options()
                .map(|o| Slot::Owned(Arc::new(NativeCell::new(*o)))),
        }
    }

    /// The native buckets, if kept.
    pub(crate) fn native(&self) -> Option<&NativeCell> {
        self.native.as_deref()
    }

    /// Words in one striped set: every bucket, the nanosecond sum, the
    /// float sum.
    fn width(&self) -> usize {
        self.buckets.len() + 2
    }

    /// Counts one in bucket slot `slot`: in place while uncontended, else in
    /// this thread's set, which the rest of the observation then uses too.
    #[inline(always)]
    fn count_in(&self, slot: usize) -> Option<&[AtomicU64]> {
        if !self.spill.is_made() {
            // As `stripe::add`: count in place, and stripe from the next
            // observation on if another thread counted meanwhile.
            let b = &self.buckets[slot];
            let old = b.fetch_add(1, Relaxed);
            let new = old + 1;
            if (old ^ new) >= super::stripe::PROBE && b.load(Relaxed) != new {
                self.first_contended();
            }
            return None;
        }
        Some(self.count_striped(slot))
    }

    /// Stripes this histogram: it was found contended.
    #[cold]
    #[inline(never)]
    fn first_contended(&self) {
        self.spill.make(self.width());
    }

    /// [`count_in`](Self::count_in) for a striped histogram, out of line.
    #[inline(never)]
    fn count_striped(&self, slot: usize) -> &[AtomicU64] {
        let set = match self.spill.get() {
            Some(cells) => cells.mine(),
            None => self.spill.make(self.width()).mine(),
        };
        set[slot].fetch_add(1, Relaxed);
        set
    }

    /// Bytes this histogram holds beyond its own fields and buckets: the
    /// striped sets of a contended one, else nothing.
    #[cfg(test)]
    pub(crate) fn extra_bytes(&self) -> usize {
        self.spill.bytes()
    }

    /// Stripes this series as its first contended update would.
    #[cfg(test)]
    pub(crate) fn stripe_now(&self) {
        self.spill.make(self.width());
    }

    pub(crate) fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The count in bucket slot `slot`, every set added up.
    fn slot(&self, slot: usize) -> u64 {
        super::stripe::sum::<true>(&self.buckets[slot], &self.spill, slot)
    }

    /// How many observations lane `lane` holds.
    pub(crate) fn lane_count(&self, lane: usize) -> u64 {
        let width = self.bounds.len() + 1;
        (lane * width..(lane + 1) * width)
            .map(|i| self.slot(i))
            .fold(0u64, u64::wrapping_add)
    }

    #[inline]
    pub(crate) fn observe(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let bounds: &[f64] = &self.bounds;
        let i = bounds.iter().take_while(|&&b| v > b).count();
        let striped = match self.count_in(i) {
            None => {
                self.add_sum(v);
                false
            }
            Some(set) => {
                super::atomic_f64::add(&set[self.buckets.len() + 1], v);
                true
            }
        };
        if let Some(native) = &self.native {
            native.observe(v, striped.then(super::my_stripe));
        }
    }

    /// The timing fast path: integers only, no CAS loop.
    #[inline]
    pub(crate) fn observe_nanos(&self, ns: u64) {
        self.observe_nanos_in_lane(0, ns);
    }

    /// Records a duration in lane `lane` (below the lane count).
    #[inline]
    pub(crate) fn observe_nanos_in_lane(&self, lane: usize, ns: u64) {
        let bounds: &[u64] = &self.bounds_nanos;
        let i = bounds.iter().take_while(|&&b| ns > b).count();
        let slot = lane * (bounds.len() + 1) + i;
        let set = self.count_in(slot);
        if let Some(native) = &self.native {
            native.observe(ns as f64 / 1e9, set.is_some().then(super::my_stripe));
        }
        if ns <= MAX_NANOS_OBSERVATION {
            let word = match set {
                None => &self.sum_nanos,
                Some(set) => &set[self.buckets.len()],
            };
            let old = word.fetch_add(ns, Relaxed);
            // The top bit turned on: move it to the float sum.
            if (!old & old.wrapping_add(ns)) & MOVE_NANOS != 0 {
                self.move_nanos(word);
            }
        } else {
            self.add_sum(ns as f64 / 1e9);
        }
        if crate::trace::tracing_on() {
            self.record_exemplar(slot, ns);
        }
    }

    #[cold]
    #[inline(never)]
    fn record_exemplar(&self, slot: usize, ns: u64) {
        if let Some(e) = super::exemplar::current(ns as f64 / 1e9) {
            self.exemplars.record(slot, self.buckets.len(), &e);
        }
    }

    /// The newest exemplar of lane `lane` (for its count as a counter).
    pub(crate) fn lane_exemplar(&self, lane: usize) -> Option<super::exemplar::Exemplar> {
        let width = self.bounds.len() + 1;
        self.exemplars.newest(lane * width..(lane + 1) * width)
    }

    /// The newest exemplar of bucket `index` over all lanes.
    pub(crate) fn bucket_exemplar(&self, index: usize) -> Option<super::exemplar::Exemplar> {
        let width = self.bounds.len() + 1;
        (0..self.lanes)
            .filter_map(|lane| self.exemplars.get(lane * width + index))
            .max_by_key(|e| e.unix_nanos)
    }

    fn add_sum(&self, v: f64) {
        super::atomic_f64::add(&self.sum_bits, v);
    }

    /// Moves [`MOVE_NANOS`] from `word` (which just passed it) into the float
    /// sum. Before the move the word holds them, after it the float does;
    /// the sequence lock makes a scrape see one or the other, never both or
    /// neither. Moves are serialised by the same lock (they happen once per
    /// 292 years of observed time per word).
    #[cold]
    #[inline(never)]
    fn move_nanos(&self, word: &AtomicU64) {
        let seq = loop {
            let s = self.sum_moves.load(Relaxed);
            if s & 1 == 0
                && self
                    .sum_moves
                    .compare_exchange(s, s + 1, Acquire, Relaxed)
                    .is_ok()
            {
                break s;
            }
            std::thread::yield_now();
        };
        fence(Release);
        super::atomic_f64::add(&self.sum_bits, MOVE_NANOS as f64 / 1e9);
        word.fetch_sub(MOVE_NANOS, Relaxed);
        self.sum_moves.store(seq + 2, Release);
    }

    /// The sum in seconds, read consistently with any move under way.
    fn read_sum(&self) -> f64 {
        let n = self.buckets.len();
        loop {
            let seq = self.sum_moves.load(Acquire);
            if seq & 1 == 1 {
                std::thread::yield_now();
                continue;
            }
            // Whole nanoseconds of every cell in a u128: their total may
            // pass u64 even when no cell does.
            let mut nanos = u128::from(self.sum_nanos.load(Relaxed));
            let mut float = super::atomic_f64::load(&self.sum_bits);
            if let Some(cells) = self.spill.get() {
                for set in cells.sets() {
                    nanos += u128::from(set[n].load(Relaxed));
                    float += super::atomic_f64::load(&set[n + 1]);
                }
            }
            fence(Acquire);
            if self.sum_moves.load(Relaxed) == seq {
                return float + nanos as f64 / 1e9;
            }
        }
    }

    /// Reads the buckets into `cumulative` (one entry per bound plus `+Inf`,
    /// each the count of observations `<=` its bound) and returns the sum.
    pub(crate) fn snapshot_into(&self, cumulative: &mut Vec<u64>) -> f64 {
        cumulative.clear();
        let width = self.bounds.len() + 1;
        let mut running = 0u64;
        for i in 0..width {
            for lane in 0..self.lanes {
                running = running.wrapping_add(self.slot(lane * width + i));
            }
            cumulative.push(running);
        }
        // The sums after the buckets: see the type's docs.
        self.read_sum()
    }
}

impl fmt::Debug for HistogramCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cumulative = Vec::new();
        let sum = self.snapshot_into(&mut cumulative);
        f.debug_struct("HistogramCell")
            .field("bounds", &&*self.bounds)
            .field("cumulative", &cumulative)
            .field("sum", &sum)
            .finish()
    }
}

pub(crate) use cortex_rules::seconds_to_nanos;

/// Counts observations in buckets and tracks their sum and count.
///
/// An observation is one atomic add to its bucket and one to the sum; a
/// histogram observed from many cores at once stripes itself over per-core
/// sets of buckets (see [the module docs](crate::metrics#many-cores) for
/// the memory it costs). A scrape reads `_count` as the sum of the buckets,
/// so `_count` always equals the `+Inf` bucket; it reads the sum after the
/// buckets, so an observation racing with the scrape may be in its bucket
/// and not yet in `_sum` (it is in the next scrape's). Every bucket,
/// `_count` and `_sum` only grows from one scrape to the next.
///
/// ```
/// use cortex::metrics::{Buckets, Registry};
/// use std::time::Duration;
///
/// let registry = Registry::new();
/// let latency = registry.histogram(
///     "request_duration_seconds",
///     "Request latency.",
///     Buckets::new([0.1, 1.0])?,
/// )?;
/// latency.observe(0.05);
/// latency.observe_duration(Duration::from_millis(300));
/// assert_eq!(latency.count(), 2);
/// assert!((latency.sum() - 0.35).abs() < 1e-9);
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a histogram handle does nothing unless it observes"]
pub struct Histogram {
    cell: Slot<HistogramCell>,
}

impl Histogram {
    /// A histogram that belongs to no registry.
    pub fn new(buckets: &Buckets) -> Self {
        Histogram {
            cell: Slot::Owned(Arc::new(HistogramCell::owned(buckets))),
        }
    }

    pub(crate) fn from_static(cell: &'static HistogramCell) -> Self {
        Histogram {
            cell: Slot::Static(cell),
        }
    }

    pub(crate) fn cell(&self) -> &HistogramCell {
        &self.cell
    }

    pub(crate) fn same(&self, other: &Histogram) -> bool {
        self.cell.same(&other.cell)
    }

    /// Records one observation. NaN is ignored (it would poison the sum).
    #[inline]
    pub fn observe(&self, v: f64) {
        self.cell.observe(v);
    }

    /// Records a duration in seconds, on an integer-only path.
    #[inline]
    pub fn observe_duration(&self, d: Duration) {
        self.cell
            .observe_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        let mut c = Vec::new();
        self.cell.snapshot_into(&mut c);
        c.last().copied().unwrap_or(0)
    }

    /// Sum of observations so far.
    pub fn sum(&self) -> f64 {
        let mut c = Vec::new();
        self.cell.snapshot_into(&mut c)
    }

    /// The bucket bounds (without `+Inf`).
    pub fn bounds(&self) -> &[f64] {
        self.cell.bounds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Error;

    #[test]
    fn the_nanosecond_sum_moves_into_the_float_sum_and_never_wraps() {
        let h = Histogram::new(&Buckets::new([1.0]).unwrap());
        let cell = h.cell();
        // Just below the top bit: the next observations pass it.
        cell.sum_nanos.store(MOVE_NANOS - 1_000, Relaxed);
        let before = cell.read_sum();
        cell.observe_nanos(3_000);
        assert_eq!(cell.sum_nanos.load(Relaxed), 2_000, "moved");
        assert_eq!(cell.sum_moves.load(Relaxed), 2);
        let after = cell.read_sum();
        assert!((after - before - 3e-6).abs() < 1e-3, "{before} -> {after}");
        // A whole word's worth again, from many threads: it only grows.
        cell.sum_nanos.store(MOVE_NANOS - 1, Relaxed);
        let start = cell.read_sum();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || {
                    let mut last = 0.0;
                    for _ in 0..10_000 {
                        h.cell().observe_nanos(1 << 40);
                        let now = h.cell().read_sum();
                        assert!(now >= last, "{last} -> {now}");
                        last = now;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let expected = start + 40_000.0 * (1u64 << 40) as f64 / 1e9;
        assert_eq!(h.cell().sum_moves.load(Relaxed), 4, "moved once more");
        let total = h.cell().read_sum();
        assert!(
            (total - expected).abs() / expected < 1e-9,
            "{total} vs {expected}"
        );
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        let h = Histogram::new(&Buckets::new([1.0, 2.0]).unwrap());
        for v in [0.5, 1.0, 1.5, 2.0, 3.0] {
            h.observe(v);
        }
        let mut c = Vec::new();
        let sum = h.cell().snapshot_into(&mut c);
        assert_eq!(c, [2, 4, 5]);
        assert_eq!(sum, 8.0);
    }

    #[test]
    fn nanos_path_agrees_with_seconds_path() {
        let h = Histogram::new(&Buckets::new([0.001, 0.002]).unwrap());
        h.observe_duration(Duration::from_micros(1000)); // exactly on the bound
        h.observe_duration(Duration::from_nanos(1_000_001));
        h.observe_duration(Duration::from_secs(5));
        let mut c = Vec::new();
        let sum = h.cell().snapshot_into(&mut c);
        assert_eq!(c, [1, 2, 3]);
        assert!((sum - 5.002000001).abs() < 1e-12);
    }

    #[test]
    fn nan_is_ignored_and_a_huge_duration_is_summed_exactly() {
        let h = Histogram::new(&Buckets::default());
        h.observe(f64::NAN);
        assert_eq!(h.count(), 0);
        h.observe_duration(Duration::from_secs(1));
        h.observe_duration(Duration::from_secs(100 * 365 * 86_400));
        let expected = 1.0 + 100.0 * 365.0 * 86_400.0;
        assert!((h.sum() - expected).abs() / expected < 1e-12);
        assert_eq!(h.count(), 2);
    }

    #[test]
    fn striped_under_threads_stays_exact_and_monotonic() {
        let h = std::sync::Arc::new(Histogram::new(&Buckets::new([0.5]).unwrap()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (h, stop) = (std::sync::Arc::clone(&h), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let (mut last_count, mut last_sum) = (0, 0.0);
                while !stop.load(Relaxed) {
                    let mut c = Vec::new();
                    let sum = h.cell().snapshot_into(&mut c);
                    let count = *c.last().unwrap();
                    assert!(count >= last_count && sum >= last_sum, "went back");
                    assert!(c[0] <= c[1]);
                    (last_count, last_sum) = (count, sum);
                }
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        if (i + t) % 2 == 0 {
                            h.observe(1.0);
                        } else {
                            h.observe_duration(Duration::from_millis(100));
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Relaxed);
        reader.join().unwrap();
        let mut c = Vec::new();
        let sum = h.cell().snapshot_into(&mut c);
        assert_eq!(c, [100_000, 200_000]);
        assert!((sum - (100_000.0 + 10_000.0)).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn bucket_rules() {
        assert!(matches!(
            Buckets::new(Vec::new()),
            Err(Error::InvalidBuckets(_))
        ));
        assert!(Buckets::new([0.0, f64::INFINITY]).is_err());
        assert!(Buckets::exponential(1.0, 1.0, 3).is_err());
        assert_eq!(
            Buckets::linear(1.0, 1.0, 3).unwrap().bounds(),
            &[1.0, 2.0, 3.0]
        );
    }
}
