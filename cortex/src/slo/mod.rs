//! Service-level objectives: a success rate and a latency promise for one
//! or more annotated functions, checked by the compiler, with generated
//! Prometheus recording rules and multi-window, multi-burn-rate alerts.
//!
//! ```
//! #[cortex::objective(name = "checkout", success_rate = 99.9, latency = "250ms", latency_percentile = 99)]
//! #[cortex::counted]
//! #[cortex::timed(buckets = [0.05, 0.25, 1.0])]
//! fn charge(cents: u64) -> Result<u64, String> {
//!     if cents == 0 { Err("nothing to charge".into()) } else { Ok(cents) }
//! }
//!
//! charge(500).unwrap();
//! // The objective's labels are on the function's series, as autometrics
//! // puts them, so its dashboards work with a relabel.
//! let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
//! assert!(text.contains(r#"cortex_function_calls_total{function="charge",module="rust_out",result="ok",objective_name="checkout",objective_percentile="99.9"} 1"#));
//! assert!(text.contains(r#"cortex_function_duration_seconds_count{function="charge",module="rust_out",objective_name="checkout",objective_percentile="99",objective_latency_threshold="0.25"} 1"#));
//!
//! let rules = cortex::slo::prometheus_rules()?;
//! assert!(rules.contains("record: cortex_objective:error_ratio:rate5m"));
//! assert!(rules.contains("alert: CortexErrorBudgetBurn"));
//! # Ok::<(), cortex::slo::Error>(())
//! ```
//!
//! An objective shared by several functions is a `const`:
//!
//! ```
//! use std::time::Duration;
//! use cortex::slo::Objective;
//!
//! const ORDERS: Objective = Objective::new("orders")
//!     .success_rate(99.5)
//!     .latency(Duration::from_millis(100), 95.0);
//!
//! #[cortex::objective(objective = ORDERS)]
//! #[cortex::counted]
//! #[cortex::timed(buckets = [0.01, 0.1, 1.0])]
//! fn find(id: u64) -> Option<u64> { Some(id) }
//!
//! #[cortex::objective(objective = ORDERS)]
//! #[cortex::counted]
//! #[cortex::timed(buckets = [0.1, 1.0])]
//! fn list() -> Vec<u64> { Vec::new() }
//! # find(1); list();
//! ```
//!
//! ## What the compiler refuses
//! A success rate or percentile outside (0, 100), a latency threshold that
//! is not one of the function's `#[timed]` bucket bounds (the share of calls
//! under it could not be read from the buckets: the error lists the
//! bounds), a success rate on a function without `#[counted]`, a latency on
//! one without `#[timed]`, a name that cannot be a label value, and a second
//! objective on one function. With `objective = CONST`, the same rules are
//! checked when the constant is evaluated, still at compile time.
//!
//! Two functions that define an objective of one name differently (inline,
//! in different places) cannot be seen together by the compiler, which
//! expands one function at a time: that is found when the program starts,
//! logged, and returned as [`Error::Conflict`] by [`objectives`] and
//! [`prometheus_rules`]. Share a `const` to make it impossible.
//!
//! ## The indicators
//! - **Error ratio**: calls that ended with `result="error"` or
//!   `result="panic"`, over all calls (cancelled calls count as calls, not
//!   as errors), from `#[counted]`'s series.
//! - **Latency ratio**: calls slower than the threshold, over all calls:
//!   `1 - bucket{le=threshold} / count`, from `#[timed]`'s histogram.

mod rules;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use rules::{prometheus_rules, BURN_RATE_ALERTS, WINDOWS};

/// A latency promise: `percentile` percent of calls finish within
/// `threshold`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    threshold_nanos: u64,
    percentile: f64,
}

impl Latency {
    /// The threshold.
    pub const fn threshold(&self) -> Duration {
        Duration::from_nanos(self.threshold_nanos)
    }

    /// The threshold in seconds (the value of the bucket bound).
    pub fn threshold_seconds(&self) -> f64 {
        self.threshold_nanos as f64 / 1e9
    }

    /// The share of calls that must be faster, in percent.
    pub const fn percentile(&self) -> f64 {
        self.percentile
    }
}

/// A service-level objective: a name, and a success rate, a latency
/// promise, or both.
///
/// Its `const fn`s check the same rules as `#[cortex::objective]`; in a
/// `const` a broken rule is a compile error:
///
/// ```compile_fail
/// const BAD: cortex::slo::Objective = cortex::slo::Objective::new("api").success_rate(100.0);
/// # let _ = BAD;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    name: &'static str,
    success_rate: Option<f64>,
    latency: Option<Latency>,
}

impl Objective {
    /// An objective promising nothing yet.
    ///
    /// # Panics
    /// If `name` is empty, longer than 64 characters, or holds anything
    /// but letters, digits, `_`, `.` and `-`.
    pub const fn new(name: &'static str) -> Self {
        if let Err(rule) = cortex_rules::slo::check_objective_name(name) {
            panic!("{}", rule);
        }
        Objective {
            name,
            success_rate: None,
            latency: None,
        }
    }

    /// Promises that `percent` of calls succeed (`99.9`).
    ///
    /// # Panics
    /// If `percent` is not strictly between 0 and 100.
    pub const fn success_rate(mut self, percent: f64) -> Self {
        if cortex_rules::slo::check_percent(percent).is_err() {
            panic!("an objective's success rate must be strictly between 0 and 100 (a percentage: 99.9 means 99.9 %)");
        }
        self.success_rate = Some(percent);
        self
    }

    /// Promises that `percentile` percent of calls finish within
    /// `threshold`, which must be one of the bucket bounds of each
    /// function's `#[timed]`.
    ///
    /// # Panics
    /// If `percentile` is not strictly between 0 and 100, or `threshold`
    /// is zero.
    pub const fn latency(mut self, threshold: Duration, percentile: f64) -> Self {
        if cortex_rules::slo::check_percent(percentile).is_err() {
            panic!("an objective's latency percentile must be strictly between 0 and 100 (99 means 99 % of calls)");
        }
        let nanos = threshold.as_nanos();
        if nanos == 0 || nanos > u64::MAX as u128 {
            panic!("an objective's latency threshold must be above zero");
        }
        self.latency = Some(Latency {
            threshold_nanos: nanos as u64,
            percentile,
        });
        self
    }

    /// The name (the `objective_name` label).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The success rate promised, in percent.
    pub const fn success(&self) -> Option<f64> {
        self.success_rate
    }

    /// The latency promised.
    pub const fn latency_promise(&self) -> Option<Latency> {
        self.latency
    }

    /// Where a `const` objective's rules are checked at compile time: the
    /// expansion of `#[objective(objective = CONST)]` evaluates this in a
    /// `const` item, so a broken rule fails the build there.
    #[doc(hidden)]
    pub const fn __check(
        &self,
        counted: bool,
        timed: &[&[f64]],
        no_counted: &'static str,
        no_timed: &'static str,
        not_a_bound: &'static str,
    ) {
        if self.success_rate.is_some() && !counted {
            panic!("{}", no_counted);
        }
        if let Some(latency) = self.latency {
            if timed.is_empty() {
                panic!("{}", no_timed);
            }
            let mut i = 0;
            while i < timed.len() {
                if !cortex_rules::slo::latency_is_a_bound(latency.threshold_nanos, timed[i]) {
                    panic!("{}", not_a_bound);
                }
                i += 1;
            }
        }
    }

    /// The label pairs this objective puts on a counter's series (`success`)
    /// or a histogram's (otherwise).
    pub(crate) fn labels(&self, success: bool) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if success {
            if let Some(rate) = self.success_rate {
                out.push(("objective_name", self.name.to_owned()));
                out.push(("objective_percentile", number(rate)));
            }
        } else if let Some(latency) = self.latency {
            out.push(("objective_name", self.name.to_owned()));
            out.push(("objective_percentile", number(latency.percentile)));
            out.push((
                "objective_latency_threshold",
                number(latency.threshold_seconds()),
            ));
        }
        out
    }
}

/// A number as the exposition writes it (`99`, `99.9`, `0.25`).
pub(crate) fn number(v: f64) -> String {
    let mut s = String::new();
    crate::metrics::push_f64(&mut s, v);
    s
}

/// One function an objective covers: its `function` and `module` labels
/// and the metrics its indicators come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Covered {
    /// The `function` label.
    pub function: String,
    /// The `module` label.
    pub module: String,
    /// The `#[counted]` metric (the error ratio), if the success rate
    /// applies.
    pub calls_metric: Option<&'static str>,
    /// The `#[timed]` metric (the latency ratio), if the latency applies.
    pub duration_metric: Option<&'static str>,
}

/// An objective with every function it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The objective.
    pub objective: Objective,
    /// The functions, by function and module.
    pub functions: Vec<Covered>,
}

/// What is wrong with the program's objectives.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two functions define one objective name differently.
    #[error("objective `{name}` is defined twice, differently: {first} on `{first_function}` and {second} on `{second_function}`; define it once as a `const` and use `#[objective(objective = CONST)]`")]
    Conflict {
        /// The objective's name.
        name: &'static str,
        /// One definition.
        first: String,
        /// A function with it.
        first_function: String,
        /// The other definition.
        second: String,
        /// A function with that one.
        second_function: String,
    },
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(rate) = self.success_rate {
            parts.push(format!("{} % of calls succeed", number(rate)));
        }
        if let Some(l) = self.latency {
            parts.push(format!(
                "{} % of calls within {} s",
                number(l.percentile),
                number(l.threshold_seconds())
            ));
        }
        write!(f, "`{}` ({})", self.name, parts.join(", "))
    }
}

/// Every objective of the program's annotated functions, by name.
///
/// # Errors
/// [`Error::Conflict`] when two functions define one name differently.
pub fn objectives() -> Result<Vec<Report>, Error> {
    let mut by_name: BTreeMap<&'static str, (Objective, String, Vec<Covered>)> = BTreeMap::new();
    for (objective, covered) in crate::__private::objective_uses() {
        let label = format!("{}::{}", covered.module, covered.function);
        match by_name.get_mut(objective.name) {
            Some((existing, first, functions)) => {
                if *existing != objective {
                    return Err(Error::Conflict {
                        name: objective.name,
                        first: existing.to_string(),
                        first_function: first.clone(),
                        second: objective.to_string(),
                        second_function: label,
                    });
                }
                match functions
                    .iter_mut()
                    .find(|c| c.function == covered.function && c.module == covered.module)
                {
                    Some(c) => {
                        c.calls_metric = c.calls_metric.or(covered.calls_metric);
                        c.duration_metric = c.duration_metric.or(covered.duration_metric);
                    }
                    None => functions.push(covered),
                }
            }
            None => {
                by_name.insert(objective.name, (objective, label, vec![covered]));
            }
        }
    }
    Ok(by_name
        .into_values()
        .map(|(objective, _, mut functions)| {
            functions.sort();
            Report {
                objective,
                functions,
            }
        })
        .collect())
}

/// The objectives as JSON, as `GET /cortex/slo` serves them:
///
/// ```json
/// {"objectives":[{"name":"checkout","success_rate":99.9,
///   "latency":{"threshold_seconds":0.25,"percentile":99.0},
///   "functions":[{"function":"charge","module":"shop",
///     "calls_metric":"cortex_function_calls_total",
///     "duration_metric":"cortex_function_duration_seconds"}]}]}
/// ```
///
/// (on one line; `success_rate` and `latency` are `null` when not
/// promised, as is a metric the objective does not use).
///
/// # Errors
/// As [`objectives`].
pub fn to_json() -> Result<String, Error> {
    use serde_json::{json, Map, Value};
    let list: Vec<Value> = objectives()?
        .into_iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("name".into(), json!(r.objective.name));
            o.insert("success_rate".into(), json!(r.objective.success_rate));
            o.insert(
                "latency".into(),
                match r.objective.latency {
                    Some(l) => {
                        let mut m = Map::new();
                        m.insert("threshold_seconds".into(), json!(l.threshold_seconds()));
                        m.insert("percentile".into(), json!(l.percentile));
                        Value::Object(m)
                    }
                    None => Value::Null,
                },
            );
            let functions: Vec<Value> = r
                .functions
                .iter()
                .map(|c| {
                    let mut m = Map::new();
                    m.insert("function".into(), json!(c.function));
                    m.insert("module".into(), json!(c.module));
                    m.insert("calls_metric".into(), json!(c.calls_metric));
                    m.insert("duration_metric".into(), json!(c.duration_metric));
                    Value::Object(m)
                })
                .collect();
            o.insert("functions".into(), Value::Array(functions));
            Value::Object(o)
        })
        .collect();
    let mut root = Map::new();
    root.insert("objectives".into(), Value::Array(list));
    Ok(Value::Object(root).to_string())
}
