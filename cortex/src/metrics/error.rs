//! The one error type of the metrics module.

use cortex_rules::{BucketsError, NameError, SuffixError};

use super::MetricType;

/// Why a metrics operation was refused. Nothing is changed when an error is
/// returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A metric or label name breaks the Prometheus naming rules.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// A metric name lacks the suffix its type requires (`_total` for counters).
    #[error(transparent)]
    MissingSuffix(#[from] SuffixError),
    /// Histogram bucket bounds break a rule.
    #[error("invalid histogram buckets: {0}")]
    InvalidBuckets(#[from] BucketsError),
    /// Native histogram options break a rule.
    #[error("invalid native histogram options: {0}")]
    InvalidNative(String),
    /// A metric with this name exists with another type, other label names,
    /// or other buckets.
    #[error("metric `{name}` is already registered as {existing}; cannot register it again as {requested}")]
    Conflict {
        /// The metric name.
        name: String,
        /// What is registered.
        existing: String,
        /// What was asked for.
        requested: String,
    },
    /// The same label name was given twice.
    #[error("label `{label}` is listed twice for metric `{name}`")]
    DuplicateLabel {
        /// The metric name.
        name: String,
        /// The repeated label.
        label: String,
    },
    /// A label name is one that Prometheus gives a meaning (`le`, `quantile`).
    #[error("label `{label}` is reserved for {kind} metrics and cannot be used on `{name}`")]
    ReservedLabel {
        /// The metric name.
        name: String,
        /// The label name.
        label: String,
        /// The metric type that reserves it.
        kind: MetricType,
    },
    /// The wrong number of label values was given for a family.
    #[error("metric `{name}` has {expected} label(s) [{labels}] but {got} value(s) were given")]
    LabelCount {
        /// The metric name.
        name: String,
        /// The label names of the family, comma separated.
        labels: String,
        /// How many label names the family has.
        expected: usize,
        /// How many values were given.
        got: usize,
    },
    /// A counter increment was negative, NaN or infinite.
    #[error("counter increment {value} refused: a counter only goes up, by a finite, non-negative amount")]
    InvalidIncrement {
        /// The refused increment.
        value: f64,
    },
}
