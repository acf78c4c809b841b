//! Exemplars: the trace and span current when a sample was recorded, so a
//! dashboard can jump from a slow bucket to a trace that landed in it.

use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::sync::OnceLock;

/// One exemplar, written by any thread without a lock (a sequence lock:
/// a writer that finds another mid-write skips, as any recent exemplar
/// will do), read by the encoder.
#[derive(Debug, Default)]
pub(crate) struct ExemplarSlot {
    seq: AtomicU64,
    trace_hi: AtomicU64,
    trace_lo: AtomicU64,
    span: AtomicU64,
    value_bits: AtomicU64,
    unix_nanos: AtomicU64,
}

/// An exemplar as read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Exemplar {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    pub(crate) value: f64,
    pub(crate) unix_nanos: u64,
}

/// A slot keeps its exemplar at least this long: a series updated by every
/// core writes its slot at most a thousand times a second, instead of on
/// every sampled call (Prometheus keeps one exemplar per series anyway).
const KEEP_NANOS: u64 = 1_000_000;

impl ExemplarSlot {
    #[inline]
    pub(crate) fn write(&self, e: &Exemplar) {
        if e.unix_nanos.saturating_sub(self.unix_nanos.load(Relaxed)) < KEEP_NANOS {
            return;
        }
        let s = self.seq.load(Relaxed);
        if s & 1 == 1
            || self
                .seq
                .compare_exchange(s, s + 1, Acquire, Relaxed)
                .is_err()
        {
            return;
        }
        // The odd sequence must be visible before any of the data: with
        // the reader's acquire fence after its data loads, a reader that saw
        // one of these stores sees the sequence moved. (On x86 this is free;
        // on weakly ordered CPUs the CAS's acquire alone would let the data
        // stores pass it, and a reader could accept a torn exemplar.)
        fence(Release);
        self.trace_hi.store((e.trace_id >> 64) as u64, Relaxed);
        self.trace_lo.store(e.trace_id as u64, Relaxed);
        self.span.store(e.span_id, Relaxed);
        self.value_bits.store(e.value.to_bits(), Relaxed);
        self.unix_nanos.store(e.unix_nanos, Relaxed);
        self.seq.store(s + 2, Release);
    }

    pub(crate) fn read(&self) -> Option<Exemplar> {
        for _ in 0..8 {
            let before = self.seq.load(Acquire);
            if before == 0 {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let e = Exemplar {
                trace_id: (u128::from(self.trace_hi.load(Relaxed)) << 64)
                    | u128::from(self.trace_lo.load(Relaxed)),
                span_id: self.span.load(Relaxed),
                value: f64::from_bits(self.value_bits.load(Relaxed)),
                unix_nanos: self.unix_nanos.load(Relaxed),
            };
            fence(Acquire);
            if self.seq.load(Relaxed) == before {
                return Some(e);
            }
        }
        None
    }
}

/// Exemplar slots made on first use, so cells that never see a sampled
/// span cost one pointer.
#[derive(Debug, Default)]
pub(crate) struct Exemplars {
    slots: OnceLock<Box<[ExemplarSlot]>>,
}

impl Exemplars {
    pub(crate) const fn new() -> Self {
        Exemplars {
            slots: OnceLock::new(),
        }
    }

    #[inline]
    pub(crate) fn record(&self, index: usize, len: usize, e: &Exemplar) {
        let slots = self
            .slots
            .get_or_init(|| (0..len).map(|_| ExemplarSlot::default()).collect());
        if let Some(slot) = slots.get(index) {
            slot.write(e);
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<Exemplar> {
        self.slots.get()?.get(index)?.read()
    }

    /// The newest of the slots in `range`.
    pub(crate) fn newest(&self, range: std::ops::Range<usize>) -> Option<Exemplar> {
        let slots = self.slots.get()?;
        slots
            .get(range)?
            .iter()
            .filter_map(ExemplarSlot::read)
            .max_by_key(|e| e.unix_nanos)
    }
}

/// The sampled span current on this thread, as an exemplar of `value`.
#[inline]
pub(crate) fn current(value: f64) -> Option<Exemplar> {
    let (trace_id, span_id) = crate::trace::sampled_current()?;
    Some(Exemplar {
        trace_id,
        span_id,
        value,
        unix_nanos: crate::trace::now_unix_nanos(),
    })
}

/// Writes ` # {trace_id="...",span_id="..."} value timestamp`.
pub(crate) fn push(out: &mut String, e: &Exemplar) {
    use std::fmt::Write;
    let _ = write!(
        out,
        " # {{trace_id=\"{:032x}\",span_id=\"{:016x}\"}} ",
        e.trace_id, e.span_id
    );
    super::encode::push_f64_pub(out, e.value);
    out.push(' ');
    let secs = e.unix_nanos / 1_000_000_000;
    let frac = e.unix_nanos % 1_000_000_000;
    let _ = write!(out, "{secs}.{frac:09}");
}
