//! An `f64` kept as its bits in an `AtomicU64` (there is no `AtomicF64`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Adds `v` to the `f64` stored in `bits` (a compare-and-swap loop).
#[inline]
pub(crate) fn add(bits: &AtomicU64, v: f64) {
    // The closure always returns `Some`, so `fetch_update` cannot fail.
    let _ = bits.fetch_update(Relaxed, Relaxed, |old| {
        Some((f64::from_bits(old) + v).to_bits())
    });
}

/// Reads the `f64` stored in `bits`.
#[inline]
pub(crate) fn load(bits: &AtomicU64) -> f64 {
    f64::from_bits(bits.load(Relaxed))
}
