//! Which traces are recorded: head samplers decided when a span starts, and
//! tail sampling decided when a trace's local root span ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Decides, when a span starts, whether it is recorded and exported.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    /// Every span.
    AlwaysOn,
    /// No span.
    AlwaysOff,
    /// This fraction of traces (0.0 to 1.0), decided from the trace id, so
    /// every service with the same ratio makes the same choice for a trace.
    Ratio(f64),
    /// Follow the parent's sampled flag; a root span asks the inner sampler.
    ParentBased(Box<Sampler>),
}

impl Default for Sampler {
    /// `ParentBased(AlwaysOn)`, OpenTelemetry's default.
    fn default() -> Self {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }
}

impl Sampler {
    /// Whether a span of trace `trace_id` is sampled, given its parent's
    /// sampled flag (`None` for a root span).
    #[inline]
    pub fn should_sample(&self, parent_sampled: Option<bool>, trace_id: u128) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::Ratio(r) => ratio_keeps(*r, trace_id),
            Sampler::ParentBased(root) => match parent_sampled {
                Some(sampled) => sampled,
                None => root.should_sample(None, trace_id),
            },
        }
    }
}

/// `f64` bits of the ratio a configuration set (`traces.sampler_ratio`);
/// this value for none.
const NO_OVERRIDE: u64 = u64::MAX;
static RATIO_OVERRIDE: AtomicU64 = AtomicU64::new(NO_OVERRIDE);

/// The ratio a configuration set for every tracer's root spans, if any.
pub(crate) fn sampler_ratio_override() -> Option<f64> {
    let bits = RATIO_OVERRIDE.load(Ordering::Relaxed);
    (bits != NO_OVERRIDE).then(|| f64::from_bits(bits))
}

/// Sets (or, with `None`, removes) the configured ratio.
pub(crate) fn set_sampler_ratio_override(ratio: Option<f64>) {
    RATIO_OVERRIDE.store(ratio.map_or(NO_OVERRIDE, f64::to_bits), Ordering::Relaxed);
}

/// Whether a span is sampled: by the configured ratio when one is set
/// (`ParentBased(Ratio)`: a parent's flag decides for its children), else
/// by `sampler`.
#[inline]
pub(crate) fn decide(sampler: &Sampler, parent_sampled: Option<bool>, trace_id: u128) -> bool {
    let bits = RATIO_OVERRIDE.load(Ordering::Relaxed);
    if bits == NO_OVERRIDE {
        return sampler.should_sample(parent_sampled, trace_id);
    }
    match parent_sampled {
        Some(sampled) => sampled,
        None => ratio_keeps(f64::from_bits(bits), trace_id),
    }
}

/// OpenTelemetry's `TraceIdRatioBased` rule: the trace id's low 64 bits,
/// shifted to 63, against `ratio * 2^63`.
#[inline]
pub(crate) fn ratio_keeps(ratio: f64, trace_id: u128) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < bound
}

/// Tail sampling: spans are held until their trace's local root span ends,
/// then the whole trace is kept if any span failed or the root took at least
/// `latency`, and otherwise kept at `keep_ratio` (by trace id).
#[derive(Debug, Clone, PartialEq)]
pub struct TailSampling {
    /// Keep every trace whose local root lasted this long.
    pub latency: Duration,
    /// Fraction of the other traces to keep.
    pub keep_ratio: f64,
    /// Spans held at most, over all open traces; more are dropped (and
    /// counted) rather than held.
    pub max_buffered_spans: usize,
    /// How long a trace's spans are held waiting for its local root (one
    /// that never ends here, say): then the trace is decided without it,
    /// kept if a span failed or by `keep_ratio`. Checked about once a
    /// second by the export thread, whether or not other traces end.
    pub max_hold: Duration,
}

impl TailSampling {
    /// Keep errors, traces slower than `latency`, and `keep_ratio` of the
    /// rest; hold at most 100,000 spans, each for at most 60 s.
    ///
    /// A kept trace is exported whole however many spans it has (in
    /// batches of the tracer's batch size). At a
    /// [`force_flush`](super::Tracer::force_flush) or shutdown, traces
    /// still held are decided as they stand (kept if a span failed, or by
    /// `keep_ratio`) and exported; their spans that end later follow that
    /// decision.
    pub fn new(latency: Duration, keep_ratio: f64) -> Self {
        TailSampling {
            latency,
            keep_ratio,
            max_buffered_spans: 100_000,
            max_hold: Duration::from_secs(60),
        }
    }
}
