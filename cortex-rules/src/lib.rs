//! Validity rules shared by the Cortex runtime and the `cortex-macros`
//! compile-time checks.
//!
//! Every rule is written once, here. The runtime calls these functions when a
//! metric is created by hand; the attribute macros call the very same
//! functions while expanding, and turn an `Err` into a compile error spanned on
//! the offending token. That way a name the compiler accepts is a name the
//! runtime accepts, and the other way round.
//!
//! Users do not depend on this crate; they depend on `cortex`.
//!
//! ```
//! use cortex_rules::{check_metric_name, NameError, NameKind};
//!
//! assert_eq!(check_metric_name("http_requests_total"), Ok(()));
//! assert_eq!(
//!     check_metric_name("2xx_total"),
//!     Err(NameError::BadFirstChar { kind: NameKind::Metric, name: "2xx_total".into(), found: '2' })
//! );
//! ```
#![deny(missing_docs)]

use std::fmt;

pub mod config;
pub mod native;
mod nearest;
pub mod resilience;
pub mod slo;
pub mod utf8;

/// Which kind of name a rule was applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A metric (family) name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    Metric,
    /// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
    Label,
}

impl NameKind {
    /// The regular expression names of this kind must match.
    pub fn rule(self) -> &'static str {
        match self {
            NameKind::Metric => METRIC_NAME_RULE,
            NameKind::Label => LABEL_NAME_RULE,
        }
    }
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Metric => "metric",
            NameKind::Label => "label",
        })
    }
}

/// Why a metric or label name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    /// The name is the empty string.
    Empty {
        /// What kind of name.
        kind: NameKind,
    },
    /// The first character is not allowed there.
    BadFirstChar {
        /// What kind of name.
        kind: NameKind,
        /// The whole name.
        name: String,
        /// The character that broke the rule.
        found: char,
    },
    /// A later character is not allowed.
    BadChar {
        /// What kind of name.
        kind: NameKind,
        /// The whole name.
        name: String,
        /// The character that broke the rule.
        found: char,
        /// Its byte offset in the name.
        at: usize,
    },
    /// A label name starts with `__`, which Prometheus reserves for itself.
    ReservedPrefix {
        /// The label name.
        name: String,
    },
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty { kind } => write!(f, "{kind} name must not be empty"),
            NameError::BadFirstChar { kind, name, found } => write!(
                f,
                "invalid {kind} name `{name}`: it must not start with `{found}` ({kind} names must match {})",
                kind.rule()
            ),
            NameError::BadChar {
                kind,
                name,
                found,
                at,
            } => write!(
                f,
                "invalid {kind} name `{name}`: character `{found}` at byte {at} is not allowed ({kind} names must match {})",
                kind.rule()
            ),
            NameError::ReservedPrefix { name } => write!(
                f,
                "invalid label name `{name}`: names starting with `__` are reserved for Prometheus"
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// The regular expression metric names must match.
pub const METRIC_NAME_RULE: &str = "[a-zA-Z_:][a-zA-Z0-9_:]*";
/// The regular expression label names must match.
pub const LABEL_NAME_RULE: &str = "[a-zA-Z_][a-zA-Z0-9_]*";

/// Checks a metric name against `[a-zA-Z_:][a-zA-Z0-9_:]*`.
///
/// ```
/// assert!(cortex_rules::check_metric_name("node:cpu_seconds_total").is_ok());
/// assert!(cortex_rules::check_metric_name("cpu-seconds").is_err());
/// ```
pub fn check_metric_name(name: &str) -> Result<(), NameError> {
    check_chars(name, NameKind::Metric)
}

/// Checks a label name against `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
///
/// ```
/// assert!(cortex_rules::check_label_name("method").is_ok());
/// assert!(cortex_rules::check_label_name("__name__").is_err());
/// ```
pub fn check_label_name(name: &str) -> Result<(), NameError> {
    check_chars(name, NameKind::Label)?;
    if name.starts_with("__") {
        return Err(NameError::ReservedPrefix { name: name.into() });
    }
    Ok(())
}

/// Whether `name` passes the character rules of `kind` (for labels, the
/// `__` prefix aside).
pub(crate) fn check_chars_only(name: &str, kind: NameKind) -> bool {
    check_chars(name, kind).is_ok()
}

fn check_chars(name: &str, kind: NameKind) -> Result<(), NameError> {
    let colon_ok = kind == NameKind::Metric;
    let mut chars = name.char_indices();
    let Some((_, first)) = chars.next() else {
        return Err(NameError::Empty { kind });
    };
    let ok_first = first.is_ascii_alphabetic() || first == '_' || (colon_ok && first == ':');
    if !ok_first {
        return Err(NameError::BadFirstChar {
            kind,
            name: name.into(),
            found: first,
        });
    }
    for (at, c) in chars {
        let ok = c.is_ascii_alphanumeric() || c == '_' || (colon_ok && c == ':');
        if !ok {
            return Err(NameError::BadChar {
                kind,
                name: name.into(),
                found: c,
                at,
            });
        }
    }
    Ok(())
}

/// Why a list of histogram bucket bounds was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketsError {
    /// No bounds at all.
    Empty,
    /// A bound is NaN or infinite (`+Inf` is always added by Cortex itself).
    NotFinite {
        /// Position of the bound in the list.
        index: usize,
    },
    /// A bound is below zero (a latency or size histogram cannot use it).
    Negative {
        /// Position of the bound in the list.
        index: usize,
        /// The bound.
        value: f64,
    },
    /// A bound is equal to the one before it.
    Duplicate {
        /// Position of the second copy.
        index: usize,
        /// The repeated bound.
        value: f64,
    },
    /// A bound is smaller than the one before it.
    NotIncreasing {
        /// Position of the bound.
        index: usize,
        /// The bound.
        value: f64,
        /// The bound before it.
        previous: f64,
    },
}

impl fmt::Display for BucketsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BucketsError::Empty => write!(f, "histogram buckets must not be empty"),
            BucketsError::NotFinite { index } => write!(
                f,
                "bucket bound #{index} is not finite (`+Inf` is added automatically; list only finite bounds)"
            ),
            BucketsError::Negative { index, value } => {
                write!(f, "bucket bound #{index} ({value}) is negative")
            }
            BucketsError::Duplicate { index, value } => {
                write!(f, "bucket bound #{index} ({value}) is listed twice")
            }
            BucketsError::NotIncreasing {
                index,
                value,
                previous,
            } => write!(
                f,
                "bucket bounds must be strictly increasing: #{index} ({value}) comes after {previous}"
            ),
        }
    }
}

impl std::error::Error for BucketsError {}

/// Checks histogram bucket upper bounds: non-empty, finite, non-negative and
/// strictly increasing.
///
/// Negative bounds are refused because every Cortex histogram measures a
/// duration or a size; the `+Inf` bucket is implicit.
///
/// ```
/// use cortex_rules::{check_buckets, BucketsError};
/// assert!(check_buckets(&[0.1, 0.5, 1.0]).is_ok());
/// assert_eq!(check_buckets(&[]), Err(BucketsError::Empty));
/// assert!(matches!(check_buckets(&[1.0, 0.5]), Err(BucketsError::NotIncreasing { index: 1, .. })));
/// ```
pub fn check_buckets(bounds: &[f64]) -> Result<(), BucketsError> {
    if bounds.is_empty() {
        return Err(BucketsError::Empty);
    }
    for (index, &value) in bounds.iter().enumerate() {
        if !value.is_finite() {
            return Err(BucketsError::NotFinite { index });
        }
        if value < 0.0 {
            return Err(BucketsError::Negative { index, value });
        }
        if index > 0 {
            let previous = bounds[index - 1];
            if value == previous {
                return Err(BucketsError::Duplicate { index, value });
            }
            if value < previous {
                return Err(BucketsError::NotIncreasing {
                    index,
                    value,
                    previous,
                });
            }
        }
    }
    Ok(())
}

/// The default latency buckets, in seconds (the same as the Prometheus
/// client libraries use).
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Converts a bucket bound in seconds to whole nanoseconds, rounding down so
/// that `d <= bound` gives the same answer in nanoseconds as in seconds.
/// Negative bounds map to 0, bounds past `u64::MAX` ns to `u64::MAX`.
///
/// ```
/// assert_eq!(cortex_rules::seconds_to_nanos(0.005), 5_000_000);
/// assert_eq!(cortex_rules::seconds_to_nanos(2.5), 2_500_000_000);
/// ```
pub const fn seconds_to_nanos(seconds: f64) -> u64 {
    let ns = seconds * 1e9;
    if ns >= u64::MAX as f64 {
        u64::MAX
    } else if ns <= 0.0 {
        0
    } else {
        ns as u64
    }
}

/// Label names the function macros set themselves; a user's `labels(...)`
/// may not reuse them.
pub const FUNCTION_LABELS: [&str; 3] = ["function", "module", "result"];

/// Label names that Prometheus gives a meaning and that a user's
/// `labels(...)` may therefore not use.
/// (The `objective_*` labels of [`slo::OBJECTIVE_LABELS`] are set by
/// `#[cortex::objective]`.)
pub const RESERVED_LABELS: [&str; 5] = [
    "le",
    "quantile",
    "objective_name",
    "objective_percentile",
    "objective_latency_threshold",
];

/// Checks that a name ends with a required suffix such as `_total` or
/// `_seconds`, and that something comes before it.
///
/// ```
/// assert!(cortex_rules::check_suffix("jobs_total", "_total").is_ok());
/// assert!(cortex_rules::check_suffix("jobs", "_total").is_err());
/// ```
pub fn check_suffix(name: &str, suffix: &'static str) -> Result<(), SuffixError> {
    if name.len() > suffix.len() && name.ends_with(suffix) {
        Ok(())
    } else {
        Err(SuffixError {
            name: name.into(),
            suffix,
        })
    }
}

/// A metric name lacks the suffix its type requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuffixError {
    /// The name as given.
    pub name: String,
    /// The suffix it must end with.
    pub suffix: &'static str,
}

impl fmt::Display for SuffixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metric name `{}` must end with `{}` (for example `{}{}`)",
            self.name,
            self.suffix,
            self.name.trim_end_matches('_'),
            self.suffix
        )
    }
}

impl std::error::Error for SuffixError {}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The string is empty.
    Empty,
    /// No number before the unit.
    NoNumber {
        /// The whole string.
        input: String,
    },
    /// The unit is missing or unknown.
    BadUnit {
        /// The whole string.
        input: String,
        /// The unit as written (empty if missing).
        unit: String,
    },
    /// The value does not fit.
    TooLarge {
        /// The whole string.
        input: String,
    },
    /// The duration is zero where a positive one is needed.
    Zero {
        /// The whole string.
        input: String,
    },
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "a whole number and a unit, like \"250ms\", \"2s\", \"1m\" or \"1h\"";
        match self {
            DurationError::Empty => write!(f, "duration is empty; write {FORM}"),
            DurationError::NoNumber { input } => {
                write!(f, "duration \"{input}\" has no number; write {FORM}")
            }
            DurationError::BadUnit { input, unit } if unit.is_empty() => {
                write!(f, "duration \"{input}\" has no unit; write {FORM}")
            }
            DurationError::BadUnit { input, unit } => write!(
                f,
                "duration \"{input}\" has unknown unit `{unit}`; the units are ns, us, ms, s, m, h"
            ),
            DurationError::TooLarge { input } => write!(f, "duration \"{input}\" is too large"),
            DurationError::Zero { input } => {
                write!(f, "duration \"{input}\" is zero; it must be positive")
            }
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a positive duration written as a whole number and a unit
/// (`ns`, `us`, `ms`, `s`, `m`, `h`), returning nanoseconds.
///
/// ```
/// assert_eq!(cortex_rules::parse_duration("250ms"), Ok(250_000_000));
/// assert_eq!(cortex_rules::parse_duration("2s"), Ok(2_000_000_000));
/// assert!(cortex_rules::parse_duration("2 parsecs").is_err());
/// assert!(cortex_rules::parse_duration("0s").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<u64, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(DurationError::NoNumber {
            input: input.into(),
        });
    }
    let (number, unit) = s.split_at(digits);
    let unit = unit.trim();
    let scale: u64 = match unit {
        "ns" => 1,
        "us" | "\u{b5}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => {
            return Err(DurationError::BadUnit {
                input: input.into(),
                unit: unit.into(),
            })
        }
    };
    let too_large = || DurationError::TooLarge {
        input: input.into(),
    };
    let n: u64 = number.parse().map_err(|_| too_large())?;
    let nanos = n.checked_mul(scale).ok_or_else(too_large)?;
    if nanos == 0 {
        return Err(DurationError::Zero {
            input: input.into(),
        });
    }
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names() {
        for ok in ["a", "_a", ":a", "a:b_c9", "A_Z"] {
            assert_eq!(check_metric_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_metric_name(""),
            Err(NameError::Empty {
                kind: NameKind::Metric
            })
        );
        assert_eq!(
            check_metric_name("a-b"),
            Err(NameError::BadChar {
                kind: NameKind::Metric,
                name: "a-b".into(),
                found: '-',
                at: 1
            })
        );
        let msg = check_metric_name("9a").unwrap_err().to_string();
        assert!(msg.contains("[a-zA-Z_:]"), "{msg}");
    }

    #[test]
    fn label_names() {
        assert_eq!(check_label_name("method"), Ok(()));
        let err = check_label_name("a:b").unwrap_err();
        assert!(err.to_string().contains("[a-zA-Z_][a-zA-Z0-9_]*"), "{err}");
        assert!(matches!(
            err,
            NameError::BadChar {
                at: 1,
                found: ':',
                ..
            }
        ));
        assert_eq!(
            check_label_name("__x"),
            Err(NameError::ReservedPrefix { name: "__x".into() })
        );
        assert!(check_label_name("").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration("15 m"), Ok(900_000_000_000));
        assert_eq!(parse_duration("7us"), Ok(7_000));
        assert!(matches!(
            parse_duration("1.5s"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::NoNumber { .. })
        ));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999h"),
            Err(DurationError::TooLarge { .. })
        ));
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
    }

    #[test]
    fn buckets() {
        assert_eq!(check_buckets(&DEFAULT_BUCKETS), Ok(()));
        assert_eq!(
            check_buckets(&[f64::NAN]),
            Err(BucketsError::NotFinite { index: 0 })
        );
        assert_eq!(
            check_buckets(&[1.0, 1.0]),
            Err(BucketsError::Duplicate {
                index: 1,
                value: 1.0
            })
        );
        assert_eq!(
            check_buckets(&[-1.0]),
            Err(BucketsError::Negative {
                index: 0,
                value: -1.0
            })
        );
    }
}
