//! What a family stores: the metric types it can hold, series identities,
//! and the concurrent map of series behind every [`Family`](super::Family).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use hashbrown::{Equivalent, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::{Mutex, RwLock};

use super::encode::{Encoder, LabelSet, Reading};
use super::{Buckets, Counter, Gauge, Histogram, HistogramCell, MetricType};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Counter {}
    impl Sealed for super::Gauge {}
    impl Sealed for super::Histogram {}
}

/// A metric type that can live in a [`Family`](super::Family): [`Counter`], [`Gauge`] or
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
pub(crate) struct Query<'a>(pub(crate) &'a [&'a str]);

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

pub(crate) fn series_key(values: &[&str], extra: ConstLabels) -> SeriesKey {
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
    pub(crate) fn empty() -> Self {
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
    /// Whether every name is a classic one (no UTF-8 name: the encoders'
    /// fast path).
    pub(crate) legacy: bool,
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
    pub(crate) overflow: OnceLock<M>,
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
        let mut first = true;
        self.each_series(|labels, readings| {
            if std::mem::take(&mut first) {
                enc.header(&self.desc)?;
            }
            enc.series(&self.desc, labels, readings)
        })
    }

    /// Calls `f` with every series' labels and readings, in exposition
    /// order (label values), after sweeping expired series.
    pub(crate) fn each_series(
        &self,
        mut f: impl FnMut(&LabelSet<'_>, &[Reading<'_>]) -> fmt::Result,
    ) -> fmt::Result {
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
            f(&labels, &readings)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{Buckets, Histogram, Registry};

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
