//! Label families: one metric name, fixed label names, one series per set of
//! label values.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::series::{series_key, FamilyCore, Query, Series};
use super::Error;

pub use super::series::Metric;

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
