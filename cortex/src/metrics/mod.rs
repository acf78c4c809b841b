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
//!
//! ## Many cores
//!
//! A series that one thread at a time updates is a handful of atomics (a
//! counter is 48 bytes), updated in place with one atomic add. Every 64th
//! update reads the value again right after its add; if another thread
//! wrote it in between, the series is *striped*, as Java's `LongAdder` (Micrometer's counters) does: it gets one
//! set of cells per group of threads, each set on its own 128 bytes (two
//! cache lines), as many sets as the machine has cores rounded up to a power
//! of two (at least 2, at most 64). From then on each thread writes its own
//! set and a scrape adds the sets up, so a series every core updates costs
//! each core about what it costs one (the `contention` bench in
//! `BENCHMARKS.md`); every count stays exact and no series ever decreases
//! from one scrape to the next.
//!
//! What striping costs, per series that was ever contended (never undone):
//!
//! | series | extra bytes per stripe | e.g. on 16 cores |
//! | --- | --- | --- |
//! | counter, or a gauge's whole-number steps (`inc`, `dec`) | 128 | 2 KiB |
//! | histogram: every bucket of every lane, plus two sums | 8 per bucket + 16, rounded up to 128 | 2 KiB with the default 12 buckets |
//!
//! A series no two threads update at once adds nothing: 10,000 quiet series
//! cost no more than before striping existed. The bound is 64 stripes: at
//! most 8 KiB more for a counter, 64 × the histogram's set.
//!
//! ## Process metrics
//!
//! The [global registry](global) exports the process series of Prometheus's
//! Go client, read when a scrape encodes them (no thread runs between
//! scrapes); [`Registry::register_process_metrics`] adds them to another
//! registry.
//!
//! | series | type | meaning |
//! | --- | --- | --- |
//! | `process_cpu_seconds_total` | counter | user and system CPU time spent |
//! | `process_resident_memory_bytes` | gauge | resident memory size |
//! | `process_virtual_memory_bytes` | gauge | virtual memory size |
//! | `process_open_fds` | gauge | open file descriptors |
//! | `process_max_fds` | gauge | the soft limit on open file descriptors |
//! | `process_start_time_seconds` | gauge | start of the process, Unix time |
//! | `process_threads` | gauge | OS threads of the process |
//!
//! On Linux every value comes from `/proc/self` and `getrlimit`. On other
//! platforms only `process_start_time_seconds` is exported (the time the
//! global registry was made); the others are left out rather than shown as
//! zeros. [`build_info!`](crate::build_info) adds `cortex_build_info` and
//! OpenMetrics `target_info`.

mod atomic_f64;
mod buckets;
mod cardinality;
mod counter;
mod encode;
mod error;
mod exemplar;
mod expiry;
mod export;
mod family;
mod gauge;
mod histogram;
mod info;
mod native;
mod process;
mod registry;
mod series;
mod slot;
mod snapshot;
mod stripe;

pub(crate) use encode::push_f64_pub as push_f64;
pub(crate) use stripe::{my_stripe, stripes};

use std::fmt;

pub use buckets::Buckets;
pub use cardinality::DEFAULT_SERIES_LIMIT;
pub use counter::Counter;
pub use encode::{
    negotiate, negotiate_exposition, Escaping, Exposition, Format, Negotiated,
    PROTOBUF_CONTENT_TYPE,
};
pub use error::Error;
pub use export::{MetricsExporterBuilder, OtlpMetricsExporter, Temporality, DEFAULT_INTERVAL};
pub use family::{Family, Metric};
pub use gauge::Gauge;
pub use histogram::{Histogram, DEFAULT_BUCKETS};
pub use info::{BuildInfo, RUST_VERSION};
pub use native::NativeOptions;
pub(crate) use process::start_unix_nanos;
pub use registry::{global, Registry};

// Storage types the macro expansions name through `cortex::__private`.
#[doc(hidden)]
pub use counter::CounterCell;
#[doc(hidden)]
pub use gauge::GaugeCell;
#[doc(hidden)]
pub use histogram::HistogramCell;
#[doc(hidden)]
pub use native::NativeCell;

/// The Prometheus type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted in buckets, with their sum and count.
    Histogram,
    /// Constant labels describing the target, with the value 1 (OpenMetrics
    /// `info`; a gauge in the Prometheus text format). The name ends with
    /// `_info`.
    Info,
}

impl MetricType {
    /// The name on the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Info => "info",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
