//! Pushing a registry over OTLP/HTTP: [`OtlpMetricsExporter`].

mod encode;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::snapshot::{CounterValue, FamilySnapshot, Point};
use super::Registry;
use crate::otlp::env::{self, number, Signal};
use crate::otlp::{pairs, OtlpOptions, Protocol};
use crate::trace::{ConfigError, ExportError};

/// How pushed sums and histograms accumulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// Each push carries the totals since the process started (the
    /// default, and what Prometheus-style backends expect).
    #[default]
    Cumulative,
    /// Each push carries what changed since the previous one.
    Delta,
}

/// The default push interval (`OTEL_METRIC_EXPORT_INTERVAL`'s default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// One collection, ready to encode.
pub(crate) struct Collected {
    families: Vec<FamilySnapshot>,
    /// The start time of each series of each family.
    starts: Vec<Vec<u64>>,
    now: u64,
    temporality: u64,
}

type SeriesId = (Box<str>, Vec<(Box<str>, Box<str>)>);

/// What survives between pushes: for delta temporality, each series' last
/// value and when it was taken.
struct State {
    previous: HashMap<SeriesId, (Point, u64)>,
}

struct Shared {
    options: OtlpOptions,
    registry: &'static Registry,
    temporality: Temporality,
    /// The process's start, Unix nanoseconds: when cumulative values began.
    start: u64,
    /// Held by a push from collection to delivery, so pushes never overlap
    /// (delta values stay exact).
    state: Mutex<State>,
    stop: Mutex<bool>,
    wake: Condvar,
    /// Whether the thread pushes a last time when stopped (a drop), or
    /// leaves it to `shutdown`, which returns the outcome.
    last_on_thread: std::sync::atomic::AtomicBool,
}

/// Sends a registry to an OTLP receiver's `/v1/metrics` every interval
/// (`OTEL_METRIC_EXPORT_INTERVAL`, default 60 s) from a thread of its own,
/// and a last time when shut down or dropped.
///
/// Counters go as monotonic sums (named without `_total`), gauges as
/// gauges, histograms with their explicit buckets, each with its exemplars;
/// the resource and scope are the tracer's (`service.name`,
/// `telemetry.sdk.*`); an info family (`target_info`) is left to the
/// resource. Bodies are OTLP/JSON, or protobuf with
/// [`Protocol::HttpProtobuf`]; retries, deadlines, gzip and TLS are those of
/// span export ([`OtlpOptions`]). A failed push is logged (target
/// `cortex::metrics`) and the next one sends the current values again.
///
/// ```no_run
/// use std::time::Duration;
/// use cortex::metrics::{OtlpMetricsExporter, Temporality};
/// use cortex::trace::OtlpOptions;
///
/// let exporter = OtlpMetricsExporter::builder(
///     OtlpOptions::metrics("http://localhost:4318")?.service_name("shop"),
/// )
/// .interval(Duration::from_secs(15))
/// .temporality(Temporality::Delta)
/// .start();
/// // ... on the way out, one last push:
/// exporter.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Or from the standard variables (`OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT`
/// and the rest), doing nothing when no endpoint is set:
///
/// ```no_run
/// if let Some(builder) = cortex::metrics::OtlpMetricsExporter::from_env()? {
///     let _exporter = builder.start();
/// }
/// # Ok::<(), cortex::trace::ConfigError>(())
/// ```
pub struct OtlpMetricsExporter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Configures an [`OtlpMetricsExporter`].
#[derive(Debug)]
pub struct MetricsExporterBuilder {
    options: OtlpOptions,
    interval: Duration,
    temporality: Temporality,
    registry: &'static Registry,
}

impl MetricsExporterBuilder {
    /// How often to push (default 60 s; at least 10 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Cumulative (default) or delta sums and histograms.
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = temporality;
        self
    }

    /// Push this registry instead of the [global](super::global) one.
    pub fn registry(mut self, registry: &'static Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Starts the push thread; the first push is one interval from now.
    ///
    /// # Panics
    /// If the OS cannot start a thread.
    pub fn start(self) -> OtlpMetricsExporter {
        let shared = Arc::new(Shared {
            options: self.options,
            registry: self.registry,
            temporality: self.temporality,
            start: super::process::start_unix_nanos(),
            state: Mutex::new(State {
                previous: HashMap::new(),
            }),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            last_on_thread: std::sync::atomic::AtomicBool::new(true),
        });
        let interval = self.interval;
        let on_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("cortex-otlp-metrics".into())
            .spawn(move || run(&on_thread, interval))
            .expect("the OS starts the metrics push thread");
        OtlpMetricsExporter {
            shared,
            thread: Some(thread),
        }
    }
}

fn run(shared: &Shared, interval: Duration) {
    loop {
        let mut stop = shared.stop.lock();
        if !*stop {
            shared.wake.wait_for(&mut stop, interval);
        }
        let stopping = *stop;
        drop(stop);
        if stopping
            && !shared
                .last_on_thread
                .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        if let Err(error) = shared.push() {
            tracing::warn!(target: "cortex::metrics", %error, url = %shared.options.url(), "metrics push failed");
        }
        if stopping {
            return;
        }
    }
}

impl OtlpMetricsExporter {
    /// An exporter sending to `options` (made with
    /// [`OtlpOptions::metrics`] or [`OtlpOptions::with_url`]).
    pub fn builder(options: OtlpOptions) -> MetricsExporterBuilder {
        MetricsExporterBuilder {
            options,
            interval: DEFAULT_INTERVAL,
            temporality: Temporality::Cumulative,
            registry: super::global(),
        }
    }

    /// A builder from the standard OpenTelemetry variables, or `None` when
    /// neither `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as is) nor
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/metrics` added) is set. Also
    /// read: `OTEL_EXPORTER_OTLP_[METRICS_]HEADERS`, `_PROTOCOL`
    /// (`http/json`, `http/protobuf`), `_COMPRESSION` (`gzip`, `none`),
    /// `_TIMEOUT` (milliseconds per request) and `_CERTIFICATE` (feature
    /// `tls`); `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds, default 60000),
    /// `OTEL_METRIC_EXPORT_TIMEOUT` (milliseconds for one push with its
    /// retries, default 30000),
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` (`cumulative`,
    /// `delta`; `lowmemory` is delta here, as every Cortex instrument is
    /// synchronous), `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.
    ///
    /// # Errors
    /// [`ConfigError::BadVariable`] naming the variable and the fix.
    pub fn from_env() -> Result<Option<MetricsExporterBuilder>, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `get`.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<MetricsExporterBuilder>, ConfigError> {
        let Some(options) = env::endpoint(Signal::Metrics, &get)? else {
            return Ok(None);
        };
        let mut options = env::read(Signal::Metrics, &get)?.apply(options);
        options =
            env::certificate(Signal::Metrics, &get, Some(options))?.expect("options were given");
        if let Some(list) = get("OTEL_RESOURCE_ATTRIBUTES") {
            for (key, value) in pairs("OTEL_RESOURCE_ATTRIBUTES", &list)? {
                options = if key == "service.name" {
                    options.service_name(&value)
                } else {
                    options.resource_attribute(&key, value)
                };
            }
        }
        if let Some(name) = get("OTEL_SERVICE_NAME").filter(|s| !s.trim().is_empty()) {
            options = options.service_name(name.trim());
        }
        let millis = |variable: &'static str| -> Result<Option<Duration>, ConfigError> {
            get(variable)
                .map(|v| {
                    number(variable, &v, "a number of milliseconds").map(Duration::from_millis)
                })
                .transpose()
        };
        if let Some(timeout) = millis("OTEL_METRIC_EXPORT_TIMEOUT")? {
            options = options.export_timeout(timeout);
        }
        let mut builder = Self::builder(options);
        if let Some(interval) = millis("OTEL_METRIC_EXPORT_INTERVAL")? {
            if interval.is_zero() {
                return Err(ConfigError::BadVariable {
                    variable: "OTEL_METRIC_EXPORT_INTERVAL",
                    value: "0".into(),
                    reason: "the interval must be above 0 milliseconds".into(),
                });
            }
            builder = builder.interval(interval);
        }
        const PREFERENCE: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        if let Some(value) = get(PREFERENCE) {
            builder = builder.temporality(match value.trim().to_ascii_lowercase().as_str() {
                "cumulative" => Temporality::Cumulative,
                "delta" | "lowmemory" => Temporality::Delta,
                _ => {
                    return Err(ConfigError::BadVariable {
                        variable: PREFERENCE,
                        value,
                        reason: "expected cumulative, delta or lowmemory".into(),
                    })
                }
            });
        }
        Ok(Some(builder))
    }

    /// Collects and sends now, on this thread (between the scheduled
    /// pushes, which it does not move).
    ///
    /// # Errors
    /// When the receiver refused the body or could not be reached before
    /// the retries ran out.
    pub fn push(&self) -> Result<(), ExportError> {
        self.shared.push()
    }

    /// Stops the thread after a last push, and returns how that went.
    ///
    /// # Errors
    /// As [`push`](Self::push), for the last push.
    pub fn shutdown(mut self) -> Result<(), ExportError> {
        self.shared
            .last_on_thread
            .store(false, std::sync::atomic::Ordering::Release);
        self.stop_thread();
        self.shared.push()
    }

    fn stop_thread(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        let _ = thread.join();
    }
}

impl Drop for OtlpMetricsExporter {
    /// Stops the thread; it pushes a last time first.
    fn drop(&mut self) {
        self.stop_thread();
    }
}

impl std::fmt::Debug for OtlpMetricsExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpMetricsExporter")
            .field("url", &self.shared.options.url())
            .field("temporality", &self.shared.temporality)
            .finish()
    }
}

impl Shared {
    fn push(&self) -> Result<(), ExportError> {
        let mut state = self.state.lock();
        let now = crate::trace::now_unix_nanos();
        let families = self.registry.snapshot();
        let collected = match self.temporality {
            Temporality::Cumulative => Collected {
                starts: families
                    .iter()
                    .map(|f| vec![self.start; f.series.len()])
                    .collect(),
                families,
                now,
                temporality: encode::CUMULATIVE,
            },
            Temporality::Delta => delta(&mut state, families, now, self.start),
        };
        let resource = self.options.resource_attributes();
        let body = match self.options.body_protocol() {
            Protocol::HttpJson => encode::json(&resource, &collected),
            Protocol::HttpProtobuf => encode::protobuf(&resource, &collected),
        };
        let outcome = self.options.deliver(body, "metrics");
        if outcome.is_err() && self.temporality == Temporality::Delta {
            // What this push carried is lost with it; the next one starts
            // from the values it read, so no change is counted twice.
            tracing::debug!(target: "cortex::metrics", "a delta push was lost");
        }
        outcome
    }
}

/// Turns cumulative values into changes since the previous push; a series
/// seen for the first time carries everything since the process started.
fn delta(state: &mut State, families: Vec<FamilySnapshot>, now: u64, start: u64) -> Collected {
    let mut starts = Vec::with_capacity(families.len());
    let mut out = Vec::with_capacity(families.len());
    let mut seen: HashMap<SeriesId, (Point, u64)> = HashMap::new();
    for mut family in families {
        let mut family_starts = Vec::with_capacity(family.series.len());
        for series in &mut family.series {
            let id: SeriesId = (family.name.clone(), series.labels.clone());
            let current = series.point.clone();
            let since = match state.previous.get(&id) {
                Some((before, at)) => {
                    series.point = minus(&series.point, before);
                    *at
                }
                None => start,
            };
            family_starts.push(since);
            seen.insert(id, (current, now));
        }
        starts.push(family_starts);
        out.push(family);
    }
    // Series gone from the registry are forgotten.
    state.previous = seen;
    Collected {
        families: out,
        starts,
        now,
        temporality: encode::DELTA,
    }
}

/// `now - before` for sums and histograms; a gauge is its value.
fn minus(now: &Point, before: &Point) -> Point {
    match (now, before) {
        (Point::Counter(a), Point::Counter(b)) => Point::Counter(CounterValue {
            int: a.int.saturating_sub(b.int),
            float: (a.float - b.float).max(0.0),
            // Only an exemplar newer than the last push is news.
            exemplar: a
                .exemplar
                .filter(|e| b.exemplar.is_none_or(|x| e.unix_nanos > x.unix_nanos)),
        }),
        (
            Point::Histogram {
                bounds,
                cumulative,
                sum,
                exemplars,
                native,
            },
            Point::Histogram {
                bounds: old_bounds,
                cumulative: old,
                sum: old_sum,
                exemplars: old_exemplars,
                native: old_native,
            },
        ) if bounds == old_bounds => Point::Histogram {
            native: match (native, old_native) {
                (Some(n), Some(o)) => Some(n.minus(o)),
                (n, _) => n.clone(),
            },
            bounds: bounds.clone(),
            cumulative: cumulative
                .iter()
                .zip(old)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            sum: sum - old_sum,
            exemplars: exemplars
                .iter()
                .zip(old_exemplars)
                .map(|(e, o)| e.filter(|e| o.is_none_or(|x| e.unix_nanos > x.unix_nanos)))
                .collect(),
        },
        (now, _) => now.clone(),
    }
}
