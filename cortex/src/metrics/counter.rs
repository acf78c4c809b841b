//! Monotonic counters.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::slot::Slot;
use super::stripe::{self, Spill};
use super::Error;

/// The atomics behind a counter: an integer part (the fast path, striped
/// over cores once contended: see `metrics::stripe`) and a float part for
/// fractional increments.
#[doc(hidden)]
pub struct CounterCell {
    int: AtomicU64,
    spill: Spill,
    float_bits: AtomicU64,
    pub(crate) exemplar: super::exemplar::Exemplars,
}

impl CounterCell {
    /// A counter at zero; `const` so macro call sites can keep it in a `static`.
    pub const fn new() -> Self {
        CounterCell {
            int: AtomicU64::new(0),
            spill: Spill::new(),
            float_bits: AtomicU64::new(0), // 0.0_f64 has all bits clear
            exemplar: super::exemplar::Exemplars::new(),
        }
    }

    /// Adds `v`, saturating at `u64::MAX` (a wrap would read as a reset).
    #[inline(always)]
    pub(crate) fn inc_by(&self, v: u64) {
        if v < 1 << 63 {
            stripe::add::<true>(&self.int, &self.spill, 1, 0, v);
        } else {
            self.inc_by_huge(v);
        }
    }

    #[cold]
    #[inline(never)]
    fn inc_by_huge(&self, v: u64) {
        let _ = self
            .int
            .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_add(v)));
    }

    /// Counts one, with the current sampled span as its exemplar if any.
    #[inline(always)]
    pub(crate) fn inc_with_exemplar(&self) {
        self.inc_by(1);
        if crate::trace::tracing_on() {
            self.record_exemplar();
        }
    }

    /// Bytes this counter holds beyond its own fields: the striped cells of
    /// a contended counter, else nothing.
    #[cfg(test)]
    pub(crate) fn extra_bytes(&self) -> usize {
        self.spill.bytes()
    }

    /// Stripes this series as its first contended update would.
    #[cfg(test)]
    pub(crate) fn stripe_now(&self) {
        self.spill.make(1);
    }

    #[cold]
    #[inline(never)]
    fn record_exemplar(&self) {
        if let Some(e) = super::exemplar::current(1.0) {
            self.exemplar.record(0, 1, &e);
        }
    }

    pub(crate) fn add_f64(&self, v: f64) {
        super::atomic_f64::add(&self.float_bits, v);
    }

    /// The integer and fractional parts, kept apart so the encoder can print
    /// an integer counter exactly, however large.
    pub(crate) fn parts(&self) -> (u64, f64) {
        (
            stripe::sum::<true>(&self.int, &self.spill, 0),
            super::atomic_f64::load(&self.float_bits),
        )
    }

    pub(crate) fn get(&self) -> f64 {
        let (i, f) = self.parts();
        i as f64 + f
    }
}

impl Default for CounterCell {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CounterCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterCell")
            .field("value", &self.get())
            .finish()
    }
}

/// A monotonically increasing counter.
///
/// A `Counter` is a cheap handle (`Clone` shares the same value); keep one in
/// a field or a `static` and the hot path is a single atomic add. Updated
/// from many cores at once it stripes itself over per-core cells (see
/// [the module docs](crate::metrics#many-cores) for the memory it costs).
///
/// ```
/// use cortex::metrics::Registry;
///
/// let registry = Registry::new();
/// let jobs = registry.counter("jobs_processed_total", "Jobs processed.")?;
/// jobs.inc();
/// jobs.inc_by(4);
/// jobs.inc_by_f64(0.5)?;
/// assert_eq!(jobs.get(), 5.5);
/// // A counter never goes down: a negative increment is refused and changes nothing.
/// assert!(jobs.inc_by_f64(-1.0).is_err());
/// assert_eq!(jobs.get(), 5.5);
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a counter handle does nothing unless it is incremented"]
pub struct Counter {
    cell: Slot<CounterCell>,
}

impl Counter {
    /// A counter that belongs to no registry (useful in tests, or to register
    /// later through a family).
    pub fn new() -> Self {
        Counter {
            cell: Slot::Owned(Arc::new(CounterCell::new())),
        }
    }

    pub(crate) fn from_static(cell: &'static CounterCell) -> Self {
        Counter {
            cell: Slot::Static(cell),
        }
    }

    pub(crate) fn cell(&self) -> &CounterCell {
        &self.cell
    }

    pub(crate) fn same(&self, other: &Counter) -> bool {
        self.cell.same(&other.cell)
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.cell.inc_by(1);
    }

    /// Adds `v`.
    #[inline]
    pub fn inc_by(&self, v: u64) {
        self.cell.inc_by(v);
    }

    /// Adds a fractional amount.
    ///
    /// # Errors
    /// [`Error::InvalidIncrement`] if `v` is negative, NaN or infinite; the
    /// counter is left unchanged.
    pub fn inc_by_f64(&self, v: f64) -> Result<(), Error> {
        if v.is_nan() || v.is_infinite() || v < 0.0 {
            return Err(Error::InvalidIncrement { value: v });
        }
        if v.fract() == 0.0 && v < u64::MAX as f64 {
            // Whole numbers stay on the exact integer path.
            self.cell.inc_by(v as u64);
        } else {
            self.cell.add_f64(v);
        }
        Ok(())
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.cell.get()
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_counts_saturate_instead_of_wrapping() {
        for striped in [false, true] {
            let c = CounterCell::new();
            if striped {
                c.stripe_now();
            }
            c.inc_by(u64::MAX - 5);
            c.inc_by(10);
            assert_eq!(c.parts().0, u64::MAX, "striped: {striped}");
            c.inc_by(1);
            c.inc_by(1 << 62);
            assert_eq!(c.parts().0, u64::MAX, "stays there");
        }
        let huge = CounterCell::new();
        huge.inc_by(u64::MAX);
        huge.inc_by(u64::MAX);
        assert_eq!(huge.parts().0, u64::MAX);
    }
}
