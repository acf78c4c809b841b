//! Gauges: values that go up and down.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::slot::Slot;
use super::stripe::{self, Spill};

/// The atomics behind a gauge: an `f64` kept as its bits, and a whole-number
/// part for `inc`/`dec`/whole `add`s (a wrapping `u64` read as `i64`,
/// striped over cores once contended, so an in-flight gauge that every
/// call moves up and down scales). The value is their sum.
#[doc(hidden)]
pub struct GaugeCell {
    bits: AtomicU64,
    int: AtomicU64,
    spill: Spill,
}

// Whole steps up to this size take the striped integer path.
const MAX_STEP: f64 = (1u64 << 53) as f64;

impl GaugeCell {
    /// A gauge at zero; `const` so macro call sites can keep it in a `static`.
    pub const fn new() -> Self {
        GaugeCell {
            bits: AtomicU64::new(0),
            int: AtomicU64::new(0),
            spill: Spill::new(),
        }
    }

    /// Sets the value: the float part takes whatever makes the sum `v`.
    #[inline]
    pub(crate) fn set(&self, v: f64) {
        let int = self.int_part();
        self.bits.store((v - int as f64).to_bits(), Relaxed);
    }

    #[inline]
    pub(crate) fn add(&self, v: f64) {
        if v.fract() == 0.0 && v.abs() < MAX_STEP {
            self.add_int(v as i64);
        } else {
            super::atomic_f64::add(&self.bits, v);
        }
    }

    /// Adds a whole number (one atomic add, striped once contended).
    #[inline(always)]
    pub(crate) fn add_int(&self, v: i64) {
        stripe::add::<false>(&self.int, &self.spill, 1, 0, v as u64);
    }

    fn int_part(&self) -> i64 {
        stripe::sum::<false>(&self.int, &self.spill, 0) as i64
    }

    pub(crate) fn get(&self) -> f64 {
        super::atomic_f64::load(&self.bits) + self.int_part() as f64
    }
}

impl Default for GaugeCell {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for GaugeCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaugeCell")
            .field("value", &self.get())
            .finish()
    }
}

/// A value that can go up and down: queue depth, temperature, calls in flight.
///
/// ```
/// use cortex::metrics::Registry;
///
/// let registry = Registry::new();
/// let depth = registry.gauge("queue_depth", "Items waiting.")?;
/// depth.set(10.0);
/// depth.inc();
/// depth.dec();
/// depth.add(-2.5);
/// assert_eq!(depth.get(), 7.5);
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a gauge handle does nothing unless it is set"]
pub struct Gauge {
    cell: Slot<GaugeCell>,
}

impl Gauge {
    /// A gauge that belongs to no registry.
    pub fn new() -> Self {
        Gauge {
            cell: Slot::Owned(Arc::new(GaugeCell::new())),
        }
    }

    pub(crate) fn from_static(cell: &'static GaugeCell) -> Self {
        Gauge {
            cell: Slot::Static(cell),
        }
    }

    pub(crate) fn cell(&self) -> &GaugeCell {
        &self.cell
    }

    pub(crate) fn same(&self, other: &Gauge) -> bool {
        self.cell.same(&other.cell)
    }

    /// Sets the value.
    #[inline]
    pub fn set(&self, v: f64) {
        self.cell.set(v);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.cell.add(1.0);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.cell.add(-1.0);
    }

    /// Adds `v` (which may be negative).
    #[inline]
    pub fn add(&self, v: f64) {
        self.cell.add(v);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        self.cell.get()
    }
}

impl Default for Gauge {
    fn default() -> Self {
        Self::new()
    }
}
