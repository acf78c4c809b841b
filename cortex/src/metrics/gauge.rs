//! Gauges: values that go up and down.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::slot::Slot;

/// The atomic behind a gauge: an `f64` kept as its bits.
#[doc(hidden)]
pub struct GaugeCell {
    bits: AtomicU64,
}

impl GaugeCell {
    /// A gauge at zero; `const` so macro call sites can keep it in a `static`.
    pub const fn new() -> Self {
        GaugeCell {
            bits: AtomicU64::new(0),
        }
    }

    #[inline]
    pub(crate) fn set(&self, v: f64) {
        self.bits.store(v.to_bits(), Relaxed);
    }

    #[inline]
    pub(crate) fn add(&self, v: f64) {
        super::atomic_f64::add(&self.bits, v);
    }

    pub(crate) fn get(&self) -> f64 {
        super::atomic_f64::load(&self.bits)
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
