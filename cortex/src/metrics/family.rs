//! Label families: one metric name, fixed label names, one series per set of
//! label values.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use hashbrown::{Equivalent, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::{Mutex, RwLock};

use super::encode::{Encoder, LabelSet, Reading};
use super::{Buckets, Counter, Error, Gauge, Histogram, HistogramCell, MetricType};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Counter {}
    impl Sealed for super::Gauge {}
    impl Sealed for super::Histogram {}
}

/// A metric type that can live in a [`Family`]: [`Counter`], [`Gauge`] or
/// [`Histogram`]. Sealed.
pub trait Metric: Clone + fmt::Debug + Send + Sync + 'static + sealed::Sealed {
    /// What a new series needs (the buckets, for a histogram).
    #[doc(hidden)]
    type Options: Clone + PartialEq + fmt::Debug + Send + Sync + 'static;
    /// The Prometheus type.
    #[doc(hidden)]
    const TYPE: MetricType;
    #[doc(hidden)]
    fn create(options: &Self::Options) -> Self;
    #[doc(hidden)]
    fn reading(&self) -> Reading<'_>;
    #[doc(hidden)]
    fn same(&self, other: &Self) -> bool;
    /// Whether a second series of the same identity can be added up with
    /// this one at a scrape (a histogram's bounds must match).
    #[doc(hidden)]
    fn merges_with(&self, _other: &Self) -> bool {
        true
    }
    /// A value that changes whenever the series is updated (for expiry).
    #[doc(hidden)]
    fn fingerprint(&self) -> u64;
}

impl Metric for Counter {
    type Options = ();
    const TYPE: MetricType = MetricType::Counter;
    fn create(_: &()) -> Self {
        Counter::new()
    }
    fn reading(&self) -> Reading<'_> {
        Reading::Counter(self.cell())
    }
    fn same(&self, other: &Self) -> bool {
        Counter::same(self, other)
    }
    fn fingerprint(&self) -> u64 {
        let (int, float) = self.cell().parts();
        int ^ float.to_bits().rotate_left(32)
    }
}

impl Metric for Gauge {
    type Options = ();
    const TYPE: MetricType = MetricType::Gauge;
    fn create(_: &()) -> Self {
        Gauge::new()
    }
    fn reading(&self) -> Reading<'_> {
        Reading::Gauge(self.cell())
    }
    fn same(&self, other: &Self) -> bool {
        Gauge::same(self, other)
    }
    fn fingerprint(&self) -> u64 {
        self.get().to_bits()
    }
}

impl Metric for Histogram {
    type Options = Buckets;
    const TYPE: MetricType = MetricType::Histogram;
    fn create(buckets: &Buckets) -> Self {
        Histogram::new(buckets)
    }
    fn reading(&self) -> Reading<'_> {
        Reading::Histogram(self.cell())
    }
    fn same(&self, other: &Self) -> bool {
        Histogram::same(self, other)
    }
    fn merges_with(&self, other: &Self) -> bool {
        self.bounds() == other.bounds()
    }
    fn fingerprint(&self) -> u64 {
        self.count() ^ self.sum().to_bits().rotate_left(32)
    }
}

/// Static labels attached to a series by a macro call site (`labels(...)`).
pub(crate) type ConstLabels = &'static [(&'static str, &'static str)];

/// A series' identity: the values of the family's labels, plus the constant
/// labels of a macro call site (empty for series made through the API).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SeriesKey {
    pub(crate) values: Box<[Box<str>]>,
    pub(crate) extra: ConstLabels,
}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_values(self.values.iter().map(|v| &**v), state);
        // Series made through the API have no constant labels; leaving them
        // out of the hash keeps it equal to the lookup's `Query` hash.
        for (k, v) in self.extra {
            k.hash(state);
            v.hash(state);
        }
    }
}

// The lookup key of the hot `with_labels` path: borrowed values, no allocation.
struct Query<'a>(&'a [&'a str]);

impl Hash for Query<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_values(self.0.iter().copied(), state);
    }
}

impl Equivalent<SeriesKey> for Query<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        key.extra.is_empty()
            && key.values.len() == self.0.len()
            && key.values.iter().zip(self.0).all(|(a, b)| **a == **b)
    }
}

fn series_key(values: &[&str], extra: ConstLabels) -> SeriesKey {
    SeriesKey {
        values: values.iter().map(|v| Box::from(*v)).collect(),
        extra,
    }
}

fn hash_values<'a, H: Hasher>(values: impl Iterator<Item = &'a str>, state: &mut H) {
    for v in values {
        v.hash(state);
    }
}

/// One series: the handle users get, plus any further call sites that share
/// the same identity (two methods both named `new` in one module), plus
/// histogram lanes that count for it (a `#[counted] #[timed]` function
/// counts its outcomes in its latency histogram's lanes). The exposition
/// sums them all.
#[derive(Clone)]
pub(crate) struct Series<M> {
    pub(crate) metric: Option<M>,
    /// Made through the API (counts against the cap, may expire).
    pub(crate) api: bool,
    pub(crate) merged: Vec<M>,
    pub(crate) lanes: Vec<(&'static HistogramCell, usize)>,
    /// Values computed when the family is encoded (a breaker's state, a
    /// bulkhead's free places): no cost on the hot path.
    pub(crate) derived: Vec<Derived>,
}

/// A value computed at scrape time.
pub(crate) type Derived = std::sync::Arc<dyn Fn() -> f64 + Send + Sync>;

impl<M> Series<M> {
    fn empty() -> Self {
        Series {
            metric: None,
            api: false,
            merged: Vec::new(),
            lanes: Vec::new(),
            derived: Vec::new(),
        }
    }
}

/// What a family is: its name, help, type and label names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Descriptor {
    /// The name as registered (for counters, with `_total`).
    pub(crate) name: Box<str>,
    pub(crate) help: Box<str>,
    pub(crate) kind: MetricType,
    pub(crate) label_names: Box<[Box<str>]>,
}

pub(crate) struct FamilyCore<M: Metric> {
    pub(crate) desc: Descriptor,
    pub(crate) options: M::Options,
    pub(super) series: RwLock<HashMap<SeriesKey, Series<M>>>,
    /// The handles `with_labels` returns, in a lock-free map so a lookup
    /// takes no lock; kept in step with `series` under its write lock.
    pub(super) index: papaya::HashMap<SeriesKey, M, hashbrown::DefaultHashBuilder>,
    /// Bumped (under the write lock) whenever a series is added or changed.
    generation: AtomicU64,
    /// The series in exposition order, rebuilt only after a change, so a
    /// scrape of an unchanged family sorts nothing.
    ordered: Mutex<Ordered<M>>,
    /// How many series the API may make.
    pub(crate) cap: super::cardinality::Cap,
    /// Where label sets past the cap go.
    overflow: OnceLock<M>,
    /// Series left unchanged this long are removed (opt-in).
    pub(super) expiry: Mutex<Option<super::expiry::Expiry>>,
}

struct Ordered<M> {
    generation: u64,
    rows: Vec<(SeriesKey, Series<M>)>,
}

impl<M: Metric> FamilyCore<M> {
    pub(crate) fn new(
        desc: Descriptor,
        options: M::Options,
        shared: Arc<super::cardinality::Shared>,
    ) -> Self {
        FamilyCore {
            cap: super::cardinality::Cap::new(shared),
            overflow: OnceLock::new(),
            expiry: Mutex::new(None),
            desc,
            options,
            series: RwLock::new(HashMap::new()),
            index: papaya::HashMap::with_hasher(hashbrown::DefaultHashBuilder::default()),
            generation: AtomicU64::new(0),
            ordered: Mutex::new(Ordered {
                // Differs from `generation`, so the first scrape builds it.
                generation: u64::MAX,
                rows: Vec::new(),
            }),
        }
    }

    /// Adds a macro call site's static series; a second site with the same
    /// identity is merged into the first.
    ///
    /// # Errors
    /// [`Error::Conflict`](super::Error::Conflict) when the two cannot be
    /// added up (histograms with other bounds): the second is not attached.
    pub(crate) fn attach(
        &self,
        values: &[&str],
        extra: ConstLabels,
        metric: M,
    ) -> Result<(), super::Error> {
        let mut map = self.series.write();
        let series = map
            .entry(series_key(values, extra))
            .or_insert_with(Series::empty);
        let known = series
            .metric
            .iter()
            .chain(&series.merged)
            .any(|m| m.same(&metric));
        if known {
            return Ok(());
        }
        if let Some(first) = series.metric.as_ref().filter(|m| !m.merges_with(&metric)) {
            return Err(super::Error::Conflict {
                name: self.desc.name.to_string(),
                existing: format!("{first:?} for the series {values:?}"),
                requested: format!("{metric:?}, which cannot be added up with it"),
            });
        }
        if series.metric.is_none() {
            series.metric = Some(metric);
        } else {
            series.merged.push(metric);
        }
        self.changed();
        Ok(())
    }

    pub(super) fn changed(&self) {
        self.generation.fetch_add(1, Relaxed);
    }

    /// Adds a histogram lane whose observation count is this series' value.
    pub(crate) fn attach_lane(
        &self,
        values: &[&str],
        extra: ConstLabels,
        histogram: &'static HistogramCell,
        lane: usize,
    ) {
        let mut map = self.series.write();
        let series = map
            .entry(series_key(values, extra))
            .or_insert_with(Series::empty);
        let known = series
            .lanes
            .iter()
            .any(|(h, l)| std::ptr::eq(*h, histogram) && *l == lane);
        if !known {
            series.lanes.push((histogram, lane));
            self.changed();
        }
    }

    /// Makes `value` the only value computed at scrape time for this series
    /// (a respawned named actor replaces its predecessor's).
    #[cfg(feature = "actors")]
    pub(crate) fn replace_derived(&self, values: &[&str], value: Derived) {
        let mut map = self.series.write();
        let series = map
            .entry(series_key(values, &[]))
            .or_insert_with(Series::empty);
        series.derived.clear();
        series.derived.push(value);
        self.changed();
    }

    /// Adds a value computed at scrape time to this series.
    pub(crate) fn attach_derived(&self, values: &[&str], value: Derived) {
        let mut map = self.series.write();
        let series = map
            .entry(series_key(values, &[]))
            .or_insert_with(Series::empty);
        series.derived.push(value);
        self.changed();
    }

    pub(crate) fn encode(&self, enc: &mut Encoder<'_>) -> fmt::Result {
        super::expiry::sweep(self);
        let mut ordered = self.ordered.lock();
        let current = self.generation.load(Relaxed);
        if ordered.generation != current {
            let map = self.series.read();
            // Read again under the lock: no writer can change it now.
            ordered.generation = self.generation.load(Relaxed);
            ordered.rows = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            ordered.rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        if ordered.rows.is_empty() {
            return Ok(());
        }
        enc.header(&self.desc)?;
        let mut readings = Vec::new();
        for (key, series) in &ordered.rows {
            readings.clear();
            readings.extend(series.metric.iter().map(Metric::reading));
            readings.extend(series.merged.iter().map(Metric::reading));
            readings.extend(series.lanes.iter().map(|&(h, l)| Reading::Lane(h, l)));
            readings.extend(series.derived.iter().map(|f| Reading::Value(f())));
            let labels = LabelSet {
                names: &self.desc.label_names,
                values: &key.values,
                extra: key.extra,
            };
            enc.series(&self.desc, &labels, &readings)?;
        }
        Ok(())
    }
}

/// A metric with label names fixed at creation and one series per distinct
/// set of label values.
///
/// Looking a series up costs a hash and a lock-free read; keep the returned handle
/// (or use [`Family::with`]) and the hot path does no lookup at all.
///
/// ```
/// use cortex::metrics::Registry;
///
/// let registry = Registry::new();
/// let requests = registry.counter_family(
///     "http_requests_total",
///     "HTTP requests.",
///     &["method", "status"],
/// )?;
/// let get_ok = requests.with_labels(&["GET", "200"])?; // keep this handle
/// get_ok.inc();
/// requests.with_labels(&["POST", "500"])?.inc();
/// assert_eq!(requests.with_labels(&["GET", "200"])?.get(), 1.0);
/// // The number of values must match the label names.
/// assert!(requests.with_labels(&["GET"]).is_err());
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
pub struct Family<M: Metric> {
    core: Arc<FamilyCore<M>>,
}

impl<M: Metric> Family<M> {
    pub(crate) fn from_core(core: Arc<FamilyCore<M>>) -> Self {
        Family { core }
    }

    pub(crate) fn core(&self) -> &Arc<FamilyCore<M>> {
        &self.core
    }

    /// The series for these label values (in the order of the label names),
    /// created at zero on first use.
    ///
    /// # Errors
    /// [`Error::LabelCount`] if the number of values differs from the number
    /// of label names.
    #[inline]
    pub fn with_labels(&self, values: &[&str]) -> Result<M, Error> {
        self.check_count(values)?;
        if let Some(metric) = self.core.index.pin().get(&Query(values)) {
            return Ok(metric.clone());
        }
        Ok(self.insert(values))
    }

    /// Runs `f` on the series for these label values (created at zero on
    /// first use) without cloning its handle: the cheapest way to update a
    /// series whose handle you did not keep.
    ///
    /// ```
    /// use cortex::metrics::{Counter, Registry};
    ///
    /// let registry = Registry::new();
    /// let requests = registry.counter_family("requests_total", "Requests.", &["method"])?;
    /// requests.with(&["GET"], Counter::inc)?;
    /// requests.with(&["GET"], |c| c.inc_by(2))?;
    /// assert_eq!(requests.with(&["GET"], Counter::get)?, 3.0);
    /// # Ok::<(), cortex::metrics::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LabelCount`] if the number of values differs from the number
    /// of label names.
    #[inline]
    pub fn with<R>(&self, values: &[&str], f: impl FnOnce(&M) -> R) -> Result<R, Error> {
        self.check_count(values)?;
        if let Some(metric) = self.core.index.pin().get(&Query(values)) {
            return Ok(f(metric));
        }
        Ok(f(&self.insert(values)))
    }

    #[inline]
    fn check_count(&self, values: &[&str]) -> Result<(), Error> {
        let names = &self.core.desc.label_names;
        if values.len() == names.len() {
            return Ok(());
        }
        Err(Error::LabelCount {
            name: self.core.desc.name.to_string(),
            labels: names.join(", "),
            expected: names.len(),
            got: values.len(),
        })
    }

    #[cold]
    fn insert(&self, values: &[&str]) -> M {
        if self.core.cap.full() {
            return self.overflow();
        }
        let mut map = self.core.series.write();
        if !map.contains_key(&Query(values)) && self.core.cap.full() {
            drop(map);
            return self.overflow();
        }
        let series = map
            .entry(series_key(values, &[]))
            .or_insert_with(Series::empty);
        let metric = match &series.metric {
            Some(metric) => metric.clone(),
            None => {
                let metric = M::create(&self.core.options);
                series.metric = Some(metric.clone());
                series.api = true;
                self.core.cap.made.fetch_add(1, Relaxed);
                self.core.changed();
                metric
            }
        };
        self.core
            .index
            .pin()
            .insert(series_key(values, &[]), metric.clone());
        metric
    }

    /// The series label sets past the [limit](Family::set_series_limit)
    /// share: every label value empty, plus `otel_metric_overflow="true"`.
    #[cold]
    fn overflow(&self) -> M {
        self.core.cap.dropped(&self.core.desc.name);
        self.core
            .overflow
            .get_or_init(|| {
                let metric = M::create(&self.core.options);
                let empty = vec![""; self.core.desc.label_names.len()];
                // A fresh metric under a key no call site uses: always fits.
                let _ =
                    self.core
                        .attach(&empty, super::cardinality::OVERFLOW_LABEL, metric.clone());
                metric
            })
            .clone()
    }

    /// Caps the series this family makes for new label sets at `limit`
    /// (default: the registry's, [`DEFAULT_SERIES_LIMIT`](super::DEFAULT_SERIES_LIMIT)
    /// unless [`Registry::set_series_limit`](super::Registry::set_series_limit)
    /// changed it). Past it, a new label set gets the family's one
    /// *overflow series* (every label empty, plus
    /// `otel_metric_overflow="true"`, OpenTelemetry's convention); each
    /// update sent there is counted in
    /// `cortex_metrics_series_dropped_total{family}`, and a warning is
    /// logged at most once a minute. Existing series keep working; series
    /// of annotated functions do not count (the code bounds them).
    ///
    /// ```
    /// use cortex::metrics::{Counter, Format, Registry};
    ///
    /// let registry = Registry::new();
    /// let by_user = registry.counter_family("logins_total", "Logins.", &["user"])?;
    /// by_user.set_series_limit(2);
    /// for user in ["ann", "bob", "cyd", "dan"] {
    ///     by_user.with(&[user], Counter::inc)?;
    /// }
    /// assert_eq!(by_user.with(&["ann"], Counter::get)?, 1.0);
    /// let text = registry.encode(Format::PrometheusText);
    /// assert!(text.contains("logins_total{user=\"\",otel_metric_overflow=\"true\"} 2\n"), "{text}");
    /// assert!(text.contains("cortex_metrics_series_dropped_total{family=\"logins_total\"} 2\n"));
    /// # Ok::<(), cortex::metrics::Error>(())
    /// ```
    pub fn set_series_limit(&self, limit: usize) {
        self.core.cap.set_limit(limit);
    }

    /// Removes a series made through [`with_labels`](Family::with_labels)
    /// or [`with`](Family::with) once its value has not changed for `ttl`,
    /// judged at each scrape (nothing is added to the update path): for
    /// label values that come and go (a client id, a tenant), so that
    /// series of gone ones stop being exported and free their place under
    /// the series limit. A label set seen again starts a new series at
    /// zero (Prometheus reads it as a counter reset). Off by default;
    /// `None` turns it off.
    ///
    /// ```
    /// use cortex::metrics::{Counter, Format, Registry};
    /// use std::time::Duration;
    ///
    /// let registry = Registry::new();
    /// let by_client = registry.counter_family("client_calls_total", "Calls.", &["client"])?;
    /// by_client.expire_after(Some(Duration::from_millis(20)));
    /// by_client.with(&["gone"], Counter::inc)?;
    /// by_client.with(&["busy"], Counter::inc)?;
    /// registry.encode(Format::PrometheusText); // a scrape sees both
    /// std::thread::sleep(Duration::from_millis(30));
    /// by_client.with(&["busy"], Counter::inc)?;
    /// let text = registry.encode(Format::PrometheusText);
    /// assert!(!text.contains("gone"), "{text}");
    /// assert!(text.contains("client_calls_total{client=\"busy\"} 2"));
    /// # Ok::<(), cortex::metrics::Error>(())
    /// ```
    pub fn expire_after(&self, ttl: Option<std::time::Duration>) {
        *self.core.expiry.lock() = ttl.map(super::expiry::Expiry::new);
    }

    /// The series limit in force (see [`set_series_limit`](Family::set_series_limit)).
    pub fn series_limit(&self) -> usize {
        self.core.cap.limit()
    }

    /// Removes the series for these label values; returns whether it existed.
    /// A handle kept elsewhere keeps working but is no longer exported. A
    /// removed series frees its place under the series limit.
    pub fn remove(&self, values: &[&str]) -> bool {
        let mut map = self.core.series.write();
        let removed = map.remove(&Query(values));
        self.core.index.pin().remove(&Query(values));
        if let Some(series) = &removed {
            if series.metric.is_some() {
                let _ = self
                    .core
                    .cap
                    .made
                    .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
            }
            self.core.changed();
        }
        removed.is_some()
    }

    /// The metric name.
    pub fn name(&self) -> &str {
        &self.core.desc.name
    }

    /// The label names, in order.
    pub fn label_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.core.desc.label_names.iter().map(|n| &**n)
    }

    /// How many series the family has.
    pub fn len(&self) -> usize {
        self.core.series.read().len()
    }

    /// Whether the family has no series yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<M: Metric> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family {
            core: Arc::clone(&self.core),
        }
    }
}

impl<M: Metric> fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.core.desc.name)
            .field("type", &self.core.desc.kind)
            .field("label_names", &self.core.desc.label_names)
            .field("series", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Buckets, Registry};

    #[test]
    fn series_with_other_bucket_bounds_are_refused_not_dropped() {
        let registry = Registry::new();
        let family = registry
            .histogram_family("merge_seconds", "h", &["function"], Buckets::default())
            .unwrap();
        let first = Histogram::new(&Buckets::new([0.1, 1.0]).unwrap());
        let same_bounds = Histogram::new(&Buckets::new([0.1, 1.0]).unwrap());
        let other_bounds = Histogram::new(&Buckets::new([0.5]).unwrap());
        family.core().attach(&["f"], &[], first.clone()).unwrap();
        family
            .core()
            .attach(&["f"], &[], same_bounds.clone())
            .unwrap();
        let refused = family.core().attach(&["f"], &[], other_bounds.clone());
        assert!(
            matches!(&refused, Err(crate::metrics::Error::Conflict { name, .. }) if name == "merge_seconds"),
            "{refused:?}"
        );
        first.observe(0.05);
        same_bounds.observe(0.05);
        other_bounds.observe(0.05);
        let text = registry.encode(crate::metrics::Format::PrometheusText);
        assert!(
            text.contains("merge_seconds_count{function=\"f\"} 2\n"),
            "{text}"
        );
    }
}
