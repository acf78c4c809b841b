//! Per-function statics and their link-time registration.

use std::sync::OnceLock;

use linkme::distributed_slice;

use super::Outcome;
use crate::metrics::{
    Buckets, Counter, CounterCell, Gauge, GaugeCell, Histogram, HistogramCell, Registry,
};
use crate::slo::{Covered, Objective};

/// Every annotated function's site, gathered by the linker, so that its
/// series exist (at zero) before the first call.
#[distributed_slice]
pub static SITES: [Site];

/// One entry of `SITES`.
#[derive(Debug, Clone, Copy)]
pub enum Site {
    /// A `#[counted]` function.
    Counted(&'static CountedSite),
    /// A `#[timed]` function.
    Timed(&'static TimedSite),
    /// A function with both `#[counted]` and `#[timed]`.
    Fused(&'static FusedSite),
}

/// What a macro knows about the annotated function at compile time.
#[derive(Debug)]
pub struct FnInfo {
    pub(crate) metric: &'static str,
    pub(crate) help: &'static str,
    /// The function's own name.
    name: &'static str,
    /// Value of the `module` label (`module_path!()`).
    pub(crate) module: &'static str,
    pub(crate) labels: &'static [(&'static str, &'static str)],
    /// The type name of a fn nested in the annotated one: its full path.
    scope: fn() -> &'static str,
    /// The `function` label, worked out from `scope` once.
    label: OnceLock<Box<str>>,
    /// The function's `#[objective]`, if any.
    pub(crate) objective: Option<&'static Objective>,
    /// `labels` and the objective's labels for this site's kind, made once
    /// at registration.
    series_labels: OnceLock<&'static [(&'static str, &'static str)]>,
}

impl FnInfo {
    /// The site of function `name` in `module`: metric name, HELP text
    /// (empty: the default), extra labels, and the nested fn that names
    /// its full path.
    pub const fn new(
        metric: &'static str,
        help: &'static str,
        name: &'static str,
        module: &'static str,
        labels: &'static [(&'static str, &'static str)],
        scope: fn() -> &'static str,
    ) -> Self {
        FnInfo {
            metric,
            help,
            name,
            module,
            labels,
            scope,
            label: OnceLock::new(),
            objective: None,
            series_labels: OnceLock::new(),
        }
    }

    /// The same site under `objective` (`#[cortex::objective]`).
    pub const fn with_objective(mut self, objective: &'static Objective) -> Self {
        self.objective = Some(objective);
        self
    }

    /// The constant labels of this site's series: the user's, then the
    /// objective's for a counter (`success`) or a histogram. Made once per
    /// site, at registration; kept for the program's life like the site.
    pub(crate) fn series_labels(
        &'static self,
        success: bool,
    ) -> &'static [(&'static str, &'static str)] {
        self.series_labels.get_or_init(|| {
            let Some(objective) = self.objective else {
                return self.labels;
            };
            let extra = objective.labels(success);
            if extra.is_empty() {
                return self.labels;
            }
            let mut all: Vec<(&'static str, &'static str)> = self.labels.to_vec();
            all.extend(
                extra
                    .into_iter()
                    .map(|(k, v)| (k, &*Box::leak(v.into_boxed_str()))),
            );
            Box::leak(all.into_boxed_slice())
        })
    }

    /// Value of the `function` label: the name, with the impl's self type
    /// and trait for a method (`Pg::load`, `<Pg as Store>::load`), so two
    /// functions of one module with one name never share series.
    pub(crate) fn function(&'static self) -> &'static str {
        self.label.get_or_init(|| {
            super::registration::function_label((self.scope)(), self.module, self.name).into()
        })
    }
}

/// The statics of a `#[counted]` function: one counter per outcome.
#[derive(Debug)]
pub struct CountedSite {
    pub(crate) info: FnInfo,
    pub(crate) cells: [CounterCell; 4],
}

impl CountedSite {
    /// A site at zero.
    pub const fn new(info: FnInfo) -> Self {
        CountedSite {
            info,
            cells: [
                CounterCell::new(),
                CounterCell::new(),
                CounterCell::new(),
                CounterCell::new(),
            ],
        }
    }

    #[inline(always)]
    pub(crate) fn record(&self, outcome: Outcome) {
        self.cells[outcome as usize].inc_with_exemplar();
    }
}

/// The statics of a `#[timed]` function.
#[derive(Debug)]
pub struct TimedSite {
    pub(crate) info: FnInfo,
    pub(crate) histogram: HistogramCell,
    pub(crate) track_in_flight: bool,
    pub(crate) in_flight: GaugeCell,
}

impl TimedSite {
    /// A site at zero.
    pub const fn new(info: FnInfo, histogram: HistogramCell, track_in_flight: bool) -> Self {
        TimedSite {
            info,
            histogram,
            track_in_flight,
            in_flight: GaugeCell::new(),
        }
    }
}

/// The statics of a function with both `#[counted]` and `#[timed]`: one
/// histogram with a lane per outcome, so each call costs a single bucket
/// increment (plus the sum) for both metrics.
#[derive(Debug)]
pub struct FusedSite {
    pub(crate) counted: FnInfo,
    pub(crate) timed: TimedSite,
}

impl FusedSite {
    /// A site at zero; `timed`'s histogram must have one lane per
    /// [`Outcome`].
    pub const fn new(counted: FnInfo, timed: TimedSite) -> Self {
        FusedSite { counted, timed }
    }
}

const CALLS_HELP: &str = "Calls of an annotated function, by result.";
const IN_FLIGHT: &str = "cortex_function_calls_in_flight";
const IN_FLIGHT_HELP: &str = "Calls of an annotated function now running.";

/// Adds every linked site to `registry` (the global one, while it is
/// built). A site whose metric conflicts with one registered differently is
/// left out, and reported once the registry is built; its function still
/// runs normally.
pub(crate) fn register_sites(registry: &Registry) {
    super::policy::settle_sites(registry);
    if let Err(error) = crate::slo::objectives() {
        super::registration::problem("cortex::slo", error.to_string());
    }
    for site in SITES.iter() {
        if let Err(error) = register(registry, *site) {
            let info = match site {
                Site::Counted(s) => &s.info,
                Site::Timed(s) => &s.info,
                Site::Fused(s) => &s.counted,
            };
            super::registration::problem(
                "cortex::metrics",
                format!(
                    "metric `{}` of annotated function `{}::{}` cannot be registered, so it will not be exported: {error}",
                    info.metric,
                    info.module,
                    info.function()
                ),
            );
        }
    }
}

fn register(registry: &Registry, site: Site) -> Result<(), crate::metrics::Error> {
    match site {
        Site::Counted(s) => {
            let family = calls_family(registry, &s.info)?;
            for outcome in Outcome::ALL {
                family.core().attach(
                    &[s.info.function(), s.info.module, outcome.label()],
                    s.info.series_labels(true),
                    Counter::from_static(&s.cells[outcome as usize]),
                )?;
            }
            Ok(())
        }
        Site::Timed(s) => register_timed(registry, s),
        Site::Fused(s) => {
            let family = calls_family(registry, &s.counted)?;
            for outcome in Outcome::ALL {
                family.core().attach_lane(
                    &[s.counted.function(), s.counted.module, outcome.label()],
                    s.counted.series_labels(true),
                    &s.timed.histogram,
                    outcome as usize,
                );
            }
            register_timed(registry, &s.timed)
        }
    }
}

fn calls_family(
    registry: &Registry,
    info: &FnInfo,
) -> Result<crate::metrics::Family<Counter>, crate::metrics::Error> {
    let help = if info.help.is_empty() {
        CALLS_HELP
    } else {
        info.help
    };
    registry.family::<Counter>(info.metric, help, &["function", "module", "result"], ())
}

fn register_timed(registry: &Registry, s: &'static TimedSite) -> Result<(), crate::metrics::Error> {
    // Families made here take the default buckets for series added through
    // the API; each site's series keeps its own bounds.
    let family = registry.family::<Histogram>(
        s.info.metric,
        if s.info.help.is_empty() {
            "Wall time of calls of an annotated function, in seconds."
        } else {
            s.info.help
        },
        &["function", "module"],
        Buckets::default(),
    )?;
    family.core().attach(
        &[s.info.function(), s.info.module],
        s.info.series_labels(false),
        Histogram::from_static(&s.histogram),
    )?;
    if s.track_in_flight {
        let gauges =
            registry.family::<Gauge>(IN_FLIGHT, IN_FLIGHT_HELP, &["function", "module"], ())?;
        gauges.core().attach(
            &[s.info.function(), s.info.module],
            s.info.labels,
            Gauge::from_static(&s.in_flight),
        )?;
    }
    Ok(())
}

/// Every (objective, function) pair of the linked sites, for `cortex::slo`.
pub(crate) fn objective_uses() -> Vec<(Objective, Covered)> {
    let covered = |info: &'static FnInfo, calls: bool, timed: Option<&'static FnInfo>| {
        info.objective.map(|o| {
            (
                *o,
                Covered {
                    function: info.function().to_owned(),
                    module: info.module.to_owned(),
                    calls_metric: (calls && o.success().is_some()).then_some(info.metric),
                    duration_metric: timed
                        .filter(|_| o.latency_promise().is_some())
                        .map(|t| t.metric),
                },
            )
        })
    };
    SITES
        .iter()
        .filter_map(|site| match site {
            Site::Counted(s) => covered(&s.info, true, None),
            Site::Timed(s) => covered(&s.info, false, Some(&s.info)),
            Site::Fused(s) => covered(&s.counted, true, Some(&s.timed.info)),
        })
        .collect()
}
