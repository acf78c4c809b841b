//! Counters, gauges and histograms, their label families, the registry, and
//! the Prometheus text and OpenMetrics expositions.
//!
//! Handles are cheap `Clone` types around atomics: keep one and recording is
//! an atomic add, with no lookup and no lock. A family looks a series up by
//! its label values once; keep the series handle it returns.
//!
//! ```
//! use cortex::metrics::{Buckets, Format, Registry};
//!
//! let registry = Registry::new();
//! let requests = registry.counter_family("requests_total", "Requests served.", &["route"])?;
//! let latency = registry.histogram("request_seconds", "Latency.", Buckets::new([0.1, 1.0])?)?;
//!
//! requests.with_labels(&["/orders"])?.inc();
//! latency.observe(0.25);
//!
//! assert_eq!(registry.encode(Format::PrometheusText), "\
//! ## HELP request_seconds Latency.
//! ## TYPE request_seconds histogram
//! request_seconds_bucket{le=\"0.1\"} 0
//! request_seconds_bucket{le=\"1\"} 1
//! request_seconds_bucket{le=\"+Inf\"} 1
//! request_seconds_sum 0.25
//! request_seconds_count 1
//! ## HELP requests_total Requests served.
//! ## TYPE requests_total counter
//! requests_total{route=\"/orders\"} 1
//! ");
//! # Ok::<(), cortex::metrics::Error>(())
//! ```

mod atomic_f64;
mod counter;
mod encode;
mod error;
mod exemplar;
mod family;
mod gauge;
mod histogram;
mod registry;
mod slot;
mod stripe;

use std::fmt;

pub use counter::Counter;
pub use encode::{negotiate, Format};
pub use error::Error;
pub use family::{Family, Metric};
pub use gauge::Gauge;
pub use histogram::{Buckets, Histogram, DEFAULT_BUCKETS};
pub use registry::{global, Registry};

// Storage types the macro expansions name through `cortex::__private`.
#[doc(hidden)]
pub use counter::CounterCell;
#[doc(hidden)]
pub use gauge::GaugeCell;
#[doc(hidden)]
pub use histogram::HistogramCell;

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted in buckets, with their sum and count.
    Histogram,
}

impl MetricType {
    /// The name on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
