//! Rules for service-level objectives (`#[cortex::objective]` and
//! `cortex::slo::Objective`): the macro reports a broken rule as a compile
//! error, `Objective`'s `const fn`s as a compile-time panic.
//!
//! ```
//! use cortex_rules::slo::{check_objective_name, check_percent, latency_is_a_bound};
//!
//! assert_eq!(check_objective_name("checkout"), Ok(()));
//! assert!(check_objective_name("check out").is_err());
//! assert_eq!(check_percent(99.9), Ok(()));
//! assert!(check_percent(100.0).is_err());
//! assert!(latency_is_a_bound(250_000_000, &[0.1, 0.25, 1.0]));
//! assert!(!latency_is_a_bound(200_000_000, &[0.1, 0.25, 1.0]));
//! ```

/// The longest objective name: it is a label value and part of rule names.
pub const MAX_OBJECTIVE_NAME: usize = 64;

/// Label names an objective puts on its functions' series (autometrics'
/// names, so its dashboards work with a relabel).
pub const OBJECTIVE_LABELS: [&str; 3] = [
    "objective_name",
    "objective_percentile",
    "objective_latency_threshold",
];

/// An objective name: 1 to 64 of `[A-Za-z0-9_.-]`, so it can be a label
/// value, a YAML scalar and part of a rule group name as it is.
///
/// # Errors
/// What is wrong with it, as a sentence.
pub const fn check_objective_name(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("an objective name must not be empty");
    }
    if bytes.len() > MAX_OBJECTIVE_NAME {
        return Err("an objective name has at most 64 characters");
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-') {
            return Err(
                "an objective name may only hold letters, digits, `_`, `.` and `-` (it becomes a label value and part of rule names)",
            );
        }
        i += 1;
    }
    Ok(())
}

/// A success rate or a latency percentile, in percent: strictly between 0
/// and 100 (100 % leaves no error budget, 0 % promises nothing).
///
/// # Errors
/// The rule, as a sentence.
pub const fn check_percent(value: f64) -> Result<(), &'static str> {
    if value > 0.0 && value < 100.0 {
        Ok(())
    } else {
        Err("must be strictly between 0 and 100 (a percentage: 99.9 means 99.9 %)")
    }
}

/// Whether a latency threshold of `threshold_nanos` is one of the bucket
/// `bounds` (seconds): the share of calls under it is then read straight
/// from that bucket. Compared in whole nanoseconds, rounded.
pub const fn latency_is_a_bound(threshold_nanos: u64, bounds: &[f64]) -> bool {
    let mut i = 0;
    while i < bounds.len() {
        let ns = bounds[i] * 1e9;
        if ns >= 0.0 && ((ns + 0.5) as u64) == threshold_nanos {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_objective_name("api.checkout-v2_1"), Ok(()));
        assert!(check_objective_name("").is_err());
        assert!(check_objective_name(&"x".repeat(65)).is_err());
        assert!(check_objective_name(&"x".repeat(64)).is_ok());
        assert!(check_objective_name("a\"b").is_err());
    }

    #[test]
    fn percents_and_bounds() {
        for ok in [0.001, 50.0, 99.0, 99.999] {
            assert_eq!(check_percent(ok), Ok(()), "{ok}");
        }
        for bad in [0.0, -1.0, 100.0, 150.0, f64::NAN] {
            assert!(check_percent(bad).is_err(), "{bad}");
        }
        // 0.035 s is 34_999_999.99.. ns in f64: still the 35 ms bound.
        assert!(latency_is_a_bound(35_000_000, &[0.035]));
        assert!(latency_is_a_bound(1_000_000_000, &[0.5, 1.0]));
        assert!(!latency_is_a_bound(1, &[]));
    }
}
