//! Striping, as Java's `LongAdder`: a value many threads update is kept in
//! one place while they do not collide, and spread over cache-line-padded
//! cells, one per thread group, once an update sees that another thread
//! wrote the value in the few nanoseconds after it (checked each time the
//! value passes a multiple of [`PROBE`]). A read adds the cells up.
//!
//! An uncontended value costs its base words and one null pointer; a
//! contended one adds `stripes()` sets of cells, each a multiple of 128
//! bytes (two cache lines, so the adjacent-line prefetcher does not pair
//! two cores' cells). Every update lands in exactly one cell, so totals are
//! exact.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::OnceLock;

/// Cells per stripe are rounded up to this many words (128 bytes).
const PAD_WORDS: usize = 16;

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// How many stripes a contended value gets: the cores, rounded up to a
/// power of two, at most 64.
pub(crate) fn stripes() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 64)
            .next_power_of_two()
    })
}

/// This thread's stripe: given out round-robin when a thread first writes
/// to a striped value, so threads spread evenly over the stripes.
#[inline(always)]
pub(crate) fn my_stripe() -> usize {
    STRIPE.with(|s| {
        let i = s.get();
        if i != usize::MAX {
            return i;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let i = NEXT.fetch_add(1, Relaxed);
        s.set(i);
        i
    })
}

/// The extra cells of a contended value: `stripes()` sets of `width`
/// words, each set padded to a multiple of 128 bytes.
pub(crate) struct Cells {
    words: Box<[AtomicU64]>,
    stride: usize,
    mask: usize,
}

impl Cells {
    fn new(width: usize) -> Cells {
        let stride = width.div_ceil(PAD_WORDS).max(1) * PAD_WORDS;
        let n = stripes();
        Cells {
            words: (0..n * stride).map(|_| AtomicU64::new(0)).collect(),
            stride,
            mask: n - 1,
        }
    }

    /// This thread's set.
    #[inline(always)]
    pub(crate) fn mine(&self) -> &[AtomicU64] {
        let start = (my_stripe() & self.mask) * self.stride;
        &self.words[start..start + self.stride]
    }

    /// Every set, for a read.
    pub(crate) fn sets(&self) -> impl Iterator<Item = &[AtomicU64]> {
        self.words.chunks(self.stride)
    }
}

/// Where the extra cells are, once made.
pub(crate) struct Spill {
    cells: AtomicPtr<Cells>,
}

impl Spill {
    pub(crate) const fn new() -> Spill {
        Spill {
            cells: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// Whether the value was ever contended (a relaxed load: `get` reads
    /// the cells).
    #[inline(always)]
    pub(crate) fn is_made(&self) -> bool {
        !self.cells.load(Relaxed).is_null()
    }

    /// The cells, if the value was ever contended.
    #[inline(always)]
    pub(crate) fn get(&self) -> Option<&Cells> {
        let p = self.cells.load(Acquire);
        // SAFETY: set once from a leaked box that lives until `self` drops.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// The cells, made now (for `width` words per set) if they were not.
    #[cold]
    #[inline(never)]
    pub(crate) fn make(&self, width: usize) -> &Cells {
        if let Some(c) = self.get() {
            return c;
        }
        let fresh = Box::into_raw(Box::new(Cells::new(width)));
        match self
            .cells
            .compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire)
        {
            // SAFETY: just published; freed only when `self` drops.
            Ok(_) => unsafe { &*fresh },
            Err(theirs) => {
                // SAFETY: `fresh` was never shared.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: published by the winner, alive until `self` drops.
                unsafe { &*theirs }
            }
        }
    }

    /// Bytes of extra cells held (0 while uncontended).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.get().map_or(0, |c| c.words.len() * 8)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let p = *self.cells.get_mut();
        if !p.is_null() {
            // SAFETY: made by `make` from a box, never freed before.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Adds `v` to `base` while the value is uncontended, else to this
/// thread's cell `index` of `spill`.
///
/// Uncontended, this is one atomic add. Each time the value passes a
/// multiple of [`PROBE`], the add is followed by a read of the same word (in
/// this core's cache): if the word already moved on, another thread updated
/// it in those few nanoseconds, and the value is striped from the next
/// update on (this one is in `base`, so nothing is lost). A value two cores
/// update at full speed is found within a few probes; one updated now and
/// then from many threads is almost never. The striped path is out of line.
///
/// With `SATURATE` (counters), a value that would pass `u64::MAX` stays
/// there instead of wrapping (a wrap would read as a counter reset). The
/// check costs nothing on the fast path: a wrap also passes a multiple of
/// [`PROBE`] for any `v` below 2^63, which is all the caller may pass.
#[inline(always)]
pub(crate) fn add<const SATURATE: bool>(
    base: &AtomicU64,
    spill: &Spill,
    width: usize,
    index: usize,
    v: u64,
) {
    debug_assert!(!SATURATE || v < 1 << 63);
    if !spill.is_made() {
        let old = base.fetch_add(v, Relaxed);
        let new = old.wrapping_add(v);
        if (old ^ new) >= PROBE {
            probed::<SATURATE>(base, spill, width, old, new);
        }
        return;
    }
    add_striped::<SATURATE>(spill, index, v);
}

/// The rare part of [`add`]: a wrap to undo, contention to look for.
#[inline(always)]
fn probed<const SATURATE: bool>(base: &AtomicU64, spill: &Spill, width: usize, old: u64, new: u64) {
    if SATURATE && new < old {
        base.store(u64::MAX, Relaxed);
    } else if base.load(Relaxed) != new {
        spill.make(width);
    }
}

/// [`add`] looks for contention each time a value passes a multiple of this.
pub(crate) const PROBE: u64 = 64;

/// [`add`] for a striped value: to this thread's cell.
#[inline(never)]
fn add_striped<const SATURATE: bool>(spill: &Spill, index: usize, v: u64) {
    if let Some(cells) = spill.get() {
        let cell = &cells.mine()[index];
        let old = cell.fetch_add(v, Relaxed);
        if SATURATE && old.checked_add(v).is_none() {
            cell.store(u64::MAX, Relaxed);
        }
    }
}

/// `base` plus every cell `index` of `spill`; with `SATURATE`, at most
/// `u64::MAX` (else wrapping, for a gauge's signed steps).
pub(crate) fn sum<const SATURATE: bool>(base: &AtomicU64, spill: &Spill, index: usize) -> u64 {
    let mut total = base.load(Relaxed);
    if let Some(cells) = spill.get() {
        for set in cells.sets() {
            let cell = set[index].load(Relaxed);
            total = if SATURATE {
                total.saturating_add(cell)
            } else {
                total.wrapping_add(cell)
            };
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn exact_under_threads_and_spills_only_when_contended() {
        struct Value {
            base: AtomicU64,
            spill: Spill,
        }
        let v = Arc::new(Value {
            base: AtomicU64::new(0),
            spill: Spill::new(),
        });
        for _ in 0..1000 {
            add::<true>(&v.base, &v.spill, 1, 0, 1);
        }
        assert_eq!(v.spill.bytes(), 0, "one thread: never contended");
        // Bursts of 8 threads until two of them collide (on a loaded 2-core
        // machine one burst may run its threads one after the other).
        let mut rounds = 0u64;
        while v.spill.bytes() == 0 && rounds < 50 {
            rounds += 1;
            let start = Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (v, start) = (Arc::clone(&v), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        for _ in 0..100_000 {
                            add::<true>(&v.base, &v.spill, 1, 0, 1);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
        assert_eq!(sum::<true>(&v.base, &v.spill, 0), 1000 + rounds * 800_000);
        assert_eq!(v.spill.bytes(), stripes() * 128, "contended: spilled");
    }

    #[test]
    fn ten_thousand_quiet_series_cost_nothing_extra() {
        let registry = crate::metrics::Registry::new();
        let family = registry
            .counter_family("quiet_total", "Quiet.", &["id"])
            .unwrap();
        let histograms = registry
            .histogram_family("quiet_seconds", "Quiet.", &["id"], Default::default())
            .unwrap();
        let mut extra = 0;
        for i in 0..10_000 {
            let id = i.to_string();
            let c = family.with_labels(&[&id]).unwrap();
            c.inc();
            let h = histograms.with_labels(&[&id]).unwrap();
            h.observe(0.1);
            extra += c.cell().extra_bytes() + h.cell().extra_bytes();
        }
        assert_eq!(extra, 0);
    }

    #[test]
    fn contended_series_cost_what_the_docs_say() {
        use crate::metrics::{Counter, Histogram};
        assert_eq!(
            std::mem::size_of::<super::super::counter::CounterCell>(),
            48
        );
        let c = Counter::new();
        c.cell().stripe_now();
        assert_eq!(c.cell().extra_bytes(), stripes() * 128);
        // The default 12 buckets and two sums: 14 words, one 128-byte set.
        let h = Histogram::new(&Default::default());
        h.cell().stripe_now();
        assert_eq!(h.cell().extra_bytes(), stripes() * 128);
        // Four lanes of 12 buckets and two sums: 50 words, 512 bytes.
        assert_eq!(Cells::new(50).words.len() * 8, stripes() * 512);
    }
}
