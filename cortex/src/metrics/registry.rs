//! The registry: every metric family by name, and the exposition of them all.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

use super::encode::{Encoder, Escaping, Exposition, Format, Negotiated};
use super::series::{Descriptor, FamilyCore, Metric};
use super::snapshot::FamilySnapshot;
use super::{Buckets, Counter, Error, Family, Gauge, Histogram, MetricType};
use cortex_rules::NameKind;

/// What the registry keeps of a family: a typed handle (to give the same
/// family back) and an encoder view.
struct Entry {
    desc: Descriptor,
    typed: Arc<dyn Any + Send + Sync>,
    collect: Arc<dyn Collect>,
}

trait Collect: Send + Sync {
    fn encode(&self, enc: &mut Encoder<'_>) -> fmt::Result;
    fn snapshot(&self) -> FamilySnapshot;
}

impl<M: Metric> Collect for FamilyCore<M> {
    fn encode(&self, enc: &mut Encoder<'_>) -> fmt::Result {
        FamilyCore::encode(self, enc)
    }

    fn snapshot(&self) -> FamilySnapshot {
        let mut family = FamilySnapshot::new(&self.desc);
        let _ = self.each_series(|labels, readings| {
            family.push(labels, readings);
            Ok(())
        });
        family
    }
}

/// A set of metric families, exported together.
///
/// Most programs use the [global registry](global), where `#[counted]` and
/// `#[timed]` register themselves; tests make their own with
/// [`Registry::new`] so they start empty.
///
/// Asking for a metric that exists with the same type, label names (and
/// buckets) returns the existing one; asking with anything else is an
/// [`Error::Conflict`].
///
/// ```
/// use cortex::metrics::{Format, Registry};
///
/// let registry = Registry::new();
/// let hits = registry.counter("cache_hits_total", "Cache hits.")?;
/// hits.inc_by(3);
/// assert_eq!(
///     registry.encode(Format::PrometheusText),
///     "# HELP cache_hits_total Cache hits.\n# TYPE cache_hits_total counter\ncache_hits_total 3\n"
/// );
/// assert_eq!(
///     registry.encode(Format::OpenMetrics),
///     "# HELP cache_hits Cache hits.\n# TYPE cache_hits counter\ncache_hits_total 3\n# EOF\n"
/// );
/// // Same name, same type: the same counter.
/// assert_eq!(registry.counter("cache_hits_total", "Cache hits.")?.get(), 3.0);
/// // Same name, other type: an error.
/// assert!(registry.gauge("cache_hits_total", "").is_err());
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
pub struct Registry {
    families: RwLock<BTreeMap<Box<str>, Entry>>,
    cap: Arc<super::cardinality::Shared>,
    /// Whether names outside the classic rules are accepted.
    utf8: std::sync::atomic::AtomicBool,
}

/// The process-wide registry, where annotated functions register
/// themselves (before their first call) and which `/metrics` serves.
///
/// ```
/// let calls = cortex::metrics::global()
///     .counter("doc_example_calls_total", "Calls made by this doc example.")?;
/// calls.inc();
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
pub fn global() -> &'static Registry {
    static GLOBAL: LazyLock<Registry> = LazyLock::new(|| {
        let registry = Registry::new();
        super::process::register(&registry);
        crate::__private::register_sites(&registry);
        registry
    });
    let registry = &*GLOBAL;
    // What registering the annotated functions found wrong is logged now
    // that the registry exists (a subscriber may use it).
    crate::__private::registration::report_problems();
    registry
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        use super::cardinality::{DROPPED_HELP, DROPPED_NAME};
        let registry = Registry {
            families: RwLock::new(BTreeMap::new()),
            cap: super::cardinality::Shared::new(),
            utf8: std::sync::atomic::AtomicBool::new(false),
        };
        // One series per family at most: never capped itself.
        if let Ok(dropped) = registry.counter_family(DROPPED_NAME, DROPPED_HELP, &["family"]) {
            dropped.set_series_limit(usize::MAX);
            let _ = registry.cap.dropped.set(dropped);
        }
        registry
    }

    /// Accepts metric and label names beyond the classic rules from now on
    /// (Prometheus 3's UTF-8 names, OpenTelemetry style:
    /// `http.server.request.duration`, `url.scheme`); only an empty name,
    /// and a label name starting with `__`, are still refused. Such names
    /// are served as they are to a scraper that asks with
    /// `escaping=allow-utf-8` (Prometheus 3 does), and escaped to
    /// underscores (`http_server_request_duration`) otherwise, so two names
    /// that escape alike are one family (a [conflict](Error::Conflict)).
    ///
    /// ```
    /// use cortex::metrics::{Escaping, Format, Registry};
    ///
    /// let registry = Registry::new();
    /// assert!(registry.gauge("queue.depth", "").is_err());
    /// registry.allow_utf8_names();
    /// registry.gauge_family("queue.depth", "Jobs waiting.", &["queue.name"])?
    ///     .with_labels(&["fast"])?
    ///     .set(3.0);
    /// assert_eq!(
    ///     registry.encode(Format::PrometheusText),
    ///     "# HELP queue_depth Jobs waiting.\n# TYPE queue_depth gauge\nqueue_depth{queue_name=\"fast\"} 3\n"
    /// );
    /// assert_eq!(
    ///     registry.encode_with(Format::PrometheusText, Escaping::AllowUtf8),
    ///     "# HELP \"queue.depth\" Jobs waiting.\n# TYPE \"queue.depth\" gauge\n{\"queue.depth\",\"queue.name\"=\"fast\"} 3\n"
    /// );
    /// # Ok::<(), cortex::metrics::Error>(())
    /// ```
    pub fn allow_utf8_names(&self) {
        self.utf8.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The series limit of every family without one of its own (default
    /// [`DEFAULT_SERIES_LIMIT`](super::DEFAULT_SERIES_LIMIT), 2,000): see
    /// [`Family::set_series_limit`].
    pub fn set_series_limit(&self, limit: usize) {
        self.cap
            .limit
            .store(limit, std::sync::atomic::Ordering::Relaxed);
    }

    /// A counter without labels. The name must end with `_total`.
    ///
    /// # Errors
    /// An invalid name, a missing `_total`, or a [conflict](Error::Conflict).
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter, Error> {
        self.counter_family(name, help, &[])?.with_labels(&[])
    }

    /// A gauge without labels.
    ///
    /// # Errors
    /// An invalid name or a [conflict](Error::Conflict).
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge, Error> {
        self.gauge_family(name, help, &[])?.with_labels(&[])
    }

    /// A histogram without labels.
    ///
    /// # Errors
    /// An invalid name or a [conflict](Error::Conflict).
    pub fn histogram(&self, name: &str, help: &str, buckets: Buckets) -> Result<Histogram, Error> {
        self.histogram_family(name, help, &[], buckets)?
            .with_labels(&[])
    }

    /// A family of counters with these label names. The name must end with
    /// `_total`.
    ///
    /// # Errors
    /// An invalid metric or label name, a repeated label, a missing `_total`,
    /// or a [conflict](Error::Conflict).
    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Counter>, Error> {
        self.family(name, help, labels, ())
    }

    /// A family of gauges with these label names.
    ///
    /// # Errors
    /// An invalid metric or label name, a repeated label, or a
    /// [conflict](Error::Conflict).
    pub fn gauge_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<Family<Gauge>, Error> {
        self.family(name, help, labels, ())
    }

    /// A family of histograms with these label names and buckets.
    ///
    /// # Errors
    /// An invalid metric or label name, a repeated label, the label `le`, or
    /// a [conflict](Error::Conflict) (including other buckets).
    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Buckets,
    ) -> Result<Family<Histogram>, Error> {
        self.family(name, help, labels, buckets)
    }

    pub(crate) fn family<M: Metric>(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        options: M::Options,
    ) -> Result<Family<M>, Error> {
        self.family_as(M::TYPE, name, help, labels, options)
    }

    /// [`family`](Self::family) exposed as `kind` (an info family is stored
    /// as gauges).
    pub(crate) fn family_as<M: Metric>(
        &self,
        kind: MetricType,
        name: &str,
        help: &str,
        labels: &[&str],
        options: M::Options,
    ) -> Result<Family<M>, Error> {
        let utf8 = self.utf8.load(std::sync::atomic::Ordering::Relaxed);
        check_names(kind, name, labels, utf8)?;
        // Names that escape alike are one family: the classic exposition
        // could not tell them apart.
        let escaped = cortex_rules::utf8::escape_underscores(name, NameKind::Metric);
        let key = family_key(kind, &escaped);
        let mut families = self.families.write();
        if let Some(entry) = families.get(key) {
            let same_shape = entry.desc.kind == kind
                && &*entry.desc.name == name
                && entry
                    .desc
                    .label_names
                    .iter()
                    .map(|n| &**n)
                    .eq(labels.iter().copied());
            if same_shape {
                if let Ok(core) = Arc::clone(&entry.typed).downcast::<FamilyCore<M>>() {
                    if core.options == options {
                        return Ok(Family::from_core(core));
                    }
                    return Err(Error::Conflict {
                        name: name.into(),
                        existing: format!(
                            "{} with options {:?}",
                            describe(&entry.desc),
                            core.options
                        ),
                        requested: format!("the same with options {options:?}"),
                    });
                }
            }
            return Err(Error::Conflict {
                name: name.into(),
                existing: describe(&entry.desc),
                requested: describe_parts(kind, name, labels),
            });
        }
        // Different families must not produce the same sample names
        // (a histogram `x` owns `x_count`, a counter `x_total` owns `x`).
        let produced = sample_names(kind, &escaped);
        for entry in families.values() {
            let theirs = sample_names(
                entry.desc.kind,
                &cortex_rules::utf8::escape_underscores(&entry.desc.name, NameKind::Metric),
            );
            if theirs.iter().any(|n| produced.contains(n)) {
                return Err(Error::Conflict {
                    name: name.into(),
                    existing: describe(&entry.desc),
                    requested: format!(
                        "{} (their sample names overlap)",
                        describe_parts(kind, name, labels)
                    ),
                });
            }
        }
        let desc = Descriptor {
            name: name.into(),
            help: help.into(),
            kind,
            label_names: labels.iter().map(|l| Box::from(*l)).collect(),
            legacy: cortex_rules::utf8::is_legacy(name, NameKind::Metric)
                && labels
                    .iter()
                    .all(|l| cortex_rules::utf8::is_legacy(l, NameKind::Label)),
        };
        let core = Arc::new(FamilyCore::<M>::new(
            desc.clone(),
            options,
            Arc::clone(&self.cap),
        ));
        families.insert(
            key.into(),
            Entry {
                desc,
                typed: Arc::clone(&core) as Arc<dyn Any + Send + Sync>,
                collect: Arc::clone(&core) as Arc<dyn Collect>,
            },
        );
        Ok(Family::from_core(core))
    }

    /// Every family in the given format, in a stable order (families by
    /// name, series by label values).
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        self.encode_into(&mut out, format);
        out
    }

    /// Like [`encode`](Registry::encode), appending to `out` (so a buffer
    /// can be reused between scrapes).
    pub fn encode_into(&self, out: &mut String, format: Format) {
        self.encode_into_with(out, format, Escaping::Underscores);
    }

    /// [`encode`](Registry::encode) with UTF-8 names written as `escaping`
    /// says (the same output for a registry without such names).
    pub fn encode_with(&self, format: Format, escaping: Escaping) -> String {
        let mut out = String::new();
        self.encode_into_with(&mut out, format, escaping);
        out
    }

    /// What a scrape negotiated ([`negotiate_exposition`](super::negotiate_exposition)),
    /// as the bytes of its body.
    pub fn encode_negotiated(&self, negotiated: &Negotiated) -> Vec<u8> {
        match negotiated.exposition {
            Exposition::Text(format) => self.encode_with(format, negotiated.escaping).into_bytes(),
            Exposition::Protobuf => {
                super::encode::protobuf::encode(&self.snapshot(), negotiated.escaping)
            }
        }
    }

    fn encode_into_with(&self, out: &mut String, format: Format, escaping: Escaping) {
        let families = self.collectors();
        let mut enc = Encoder::new(out, format, escaping);
        for family in &families {
            // Writing into a String cannot fail.
            let _ = family.encode(&mut enc);
        }
        enc.finish();
    }

    /// Every family with at least one series, read now, in exposition
    /// order (for the OTLP exporter and the protobuf exposition).
    pub(crate) fn snapshot(&self) -> Vec<FamilySnapshot> {
        self.collectors()
            .iter()
            .map(|f| f.snapshot())
            .filter(|f| !f.series.is_empty())
            .collect()
    }

    /// Every family in the Prometheus protobuf exposition (length-delimited
    /// `io.prometheus.client.MetricFamily` messages), native histograms
    /// included; families in the same order as the text formats.
    ///
    /// ```
    /// use cortex::metrics::{Buckets, Registry};
    ///
    /// let registry = Registry::new();
    /// let latency = registry.histogram("rpc_seconds", "RPC time.", Buckets::native())?;
    /// latency.observe(0.25);
    /// let body = registry.encode_protobuf();
    /// // One delimited MetricFamily: its length, then field 1 (the name).
    /// assert_eq!(body[0] as usize, body.len() - 1);
    /// assert_eq!(&body[1..3], &[0x0a, 11]);
    /// assert_eq!(&body[3..14], b"rpc_seconds");
    /// # Ok::<(), cortex::metrics::Error>(())
    /// ```
    pub fn encode_protobuf(&self) -> Vec<u8> {
        super::encode::protobuf::encode(&self.snapshot(), Escaping::Underscores)
    }

    /// The families, taken out first so the registry lock is not held
    /// while series locks are taken.
    fn collectors(&self) -> Vec<Arc<dyn Collect>> {
        self.families
            .read()
            .values()
            .map(|e| Arc::clone(&e.collect))
            .collect()
    }

    /// Writes every family to any `fmt::Write`.
    ///
    /// # Errors
    /// Whatever the writer returns.
    pub fn encode_to<W: fmt::Write + ?Sized>(&self, w: &mut W, format: Format) -> fmt::Result {
        w.write_str(&self.encode(format))
    }

    /// Adds the `process_*` series of Prometheus's Go client (CPU time,
    /// memory, file descriptors, threads, start time; see the
    /// [module docs](super#process-metrics)), read at each scrape. The
    /// [global registry](global) has them from the start; a registry made
    /// with [`Registry::new`] only after this call. Calling it again does
    /// nothing.
    ///
    /// ```
    /// let registry = cortex::metrics::Registry::new();
    /// registry.register_process_metrics();
    /// let text = registry.encode(cortex::metrics::Format::PrometheusText);
    /// assert!(text.contains("# TYPE process_start_time_seconds gauge\n"));
    /// # #[cfg(target_os = "linux")]
    /// assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
    /// ```
    pub fn register_process_metrics(&self) {
        super::process::register(self);
    }

    /// How many families are registered (not counting
    /// `cortex_metrics_series_dropped_total`, which every registry has).
    pub fn len(&self) -> usize {
        // Without Cortex's own `cortex_metrics_series_dropped_total`, which
        // every registry has.
        self.families.read().len() - usize::from(self.cap.dropped.get().is_some())
    }

    /// Whether no family is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let families = self.families.read();
        f.debug_struct("Registry")
            .field("families", &families.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn check_names(kind: MetricType, name: &str, labels: &[&str], utf8: bool) -> Result<(), Error> {
    if utf8 {
        cortex_rules::utf8::check_metric_name(name)?;
    } else {
        cortex_rules::check_metric_name(name)?;
    }
    if kind == MetricType::Counter {
        cortex_rules::check_suffix(name, "_total")?;
    }
    if kind == MetricType::Info {
        cortex_rules::check_suffix(name, "_info")?;
    }
    for (i, label) in labels.iter().enumerate() {
        if utf8 {
            cortex_rules::utf8::check_label_name(label)?;
        } else {
            cortex_rules::check_label_name(label)?;
        }
        if labels[..i].contains(label) {
            return Err(Error::DuplicateLabel {
                name: name.into(),
                label: (*label).into(),
            });
        }
        if kind == MetricType::Histogram && *label == "le" {
            return Err(Error::ReservedLabel {
                name: name.into(),
                label: "le".into(),
                kind,
            });
        }
    }
    Ok(())
}

/// The registry key: the OpenMetrics family name.
fn family_key(kind: MetricType, name: &str) -> &str {
    match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        MetricType::Info => name.strip_suffix("_info").unwrap_or(name),
        _ => name,
    }
}

fn sample_names(kind: MetricType, name: &str) -> Vec<String> {
    match kind {
        MetricType::Counter => vec![name.to_owned(), family_key(kind, name).to_owned()],
        MetricType::Gauge | MetricType::Info => vec![name.to_owned()],
        MetricType::Histogram => ["", "_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{name}{s}"))
            .collect(),
    }
}

fn describe(desc: &Descriptor) -> String {
    let labels: Vec<&str> = desc.label_names.iter().map(|n| &**n).collect();
    describe_parts(desc.kind, &desc.name, &labels)
}

fn describe_parts(kind: MetricType, name: &str, labels: &[&str]) -> String {
    format!("a {kind} `{name}` with labels [{}]", labels.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts() {
        let r = Registry::new();
        r.counter_family("a_total", "", &["x"]).unwrap();
        assert!(r.counter_family("a_total", "other help", &["x"]).is_ok());
        let err = r.counter_family("a_total", "", &["y"]).unwrap_err();
        assert!(err.to_string().contains("labels [x]"), "{err}");
        assert!(matches!(r.gauge("a", ""), Err(Error::Conflict { .. })));
        let _h = r.histogram("h", "", Buckets::default()).unwrap();
        assert!(matches!(
            r.gauge("h_count", ""),
            Err(Error::Conflict { .. })
        ));
        let err = r
            .histogram("h", "", Buckets::new([1.0]).unwrap())
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err}");
    }

    #[test]
    fn name_rules() {
        let r = Registry::new();
        assert!(matches!(
            r.counter("jobs", ""),
            Err(Error::MissingSuffix(_))
        ));
        assert!(matches!(r.gauge("1x", ""), Err(Error::InvalidName(_))));
        assert!(matches!(
            r.gauge_family("g", "", &["a", "a"]),
            Err(Error::DuplicateLabel { .. })
        ));
        assert!(matches!(
            r.histogram_family("h", "", &["le"], Buckets::default()),
            Err(Error::ReservedLabel { .. })
        ));
        assert!(matches!(
            r.gauge_family("g", "", &["__x"]),
            Err(Error::InvalidName(_))
        ));
        assert!(r.is_empty());
    }
}
