//! The series cap: how many label sets one family may make through the API
//! before new ones go to its overflow series (OpenTelemetry's convention).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{Counter, Family};

/// The default series cap of a family (OpenTelemetry SDKs' default).
pub const DEFAULT_SERIES_LIMIT: usize = 2000;

/// The constant label of the overflow series.
pub(crate) const OVERFLOW_LABEL: super::series::ConstLabels = &[("otel_metric_overflow", "true")];

/// The family that counts label sets sent to overflow series.
pub(crate) const DROPPED_NAME: &str = "cortex_metrics_series_dropped_total";
pub(crate) const DROPPED_HELP: &str =
    "Updates of new label sets sent to a family's overflow series because the family was at its series limit.";

/// Shared by every family of a registry.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The registry's limit, for families without their own.
    pub(crate) limit: AtomicUsize,
    /// Where drops are counted (`None` while it is being made).
    pub(crate) dropped: OnceLock<Family<Counter>>,
}

impl Shared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Shared {
            limit: AtomicUsize::new(DEFAULT_SERIES_LIMIT),
            dropped: OnceLock::new(),
        })
    }
}

/// One family's cap.
#[derive(Debug)]
pub(crate) struct Cap {
    shared: Arc<Shared>,
    /// The family's own limit; `usize::MAX`: the registry's.
    own: AtomicUsize,
    /// Series made through the API (macro call sites do not count: code
    /// bounds them).
    pub(crate) made: AtomicUsize,
    dropped: OnceLock<Counter>,
    /// Milliseconds since `born` of the last warning, plus one; 0: none yet.
    warned: AtomicU64,
    born: Instant,
}

/// How often, at most, a family at its limit says so.
const WARN_EVERY_MS: u64 = 60_000;

impl Cap {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Cap {
            shared,
            own: AtomicUsize::new(usize::MAX),
            made: AtomicUsize::new(0),
            dropped: OnceLock::new(),
            warned: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    pub(crate) fn limit(&self) -> usize {
        match self.own.load(Relaxed) {
            usize::MAX => self.shared.limit.load(Relaxed),
            own => own,
        }
    }

    pub(crate) fn set_limit(&self, limit: usize) {
        self.own.store(limit.min(usize::MAX - 1), Relaxed);
    }

    pub(crate) fn full(&self) -> bool {
        self.made.load(Relaxed) >= self.limit()
    }

    /// A label set went to the overflow series of `family`.
    pub(crate) fn dropped(&self, family: &str) {
        let counter = self.dropped.get_or_init(|| {
            self.shared
                .dropped
                .get()
                .and_then(|f| f.with_labels(&[family]).ok())
                .unwrap_or_default()
        });
        counter.inc();
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.warned.load(Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY_MS)
            && self
                .warned
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            tracing::warn!(
                target: "cortex::metrics",
                family,
                limit = self.limit(),
                dropped = counter.get(),
                "metric family at its series limit: new label sets go to its overflow series (otel_metric_overflow=\"true\")"
            );
        }
    }
}
