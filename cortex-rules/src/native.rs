//! Rules for native (exponential) histograms, shared by `#[timed(native)]`
//! and `cortex::metrics::NativeOptions`.
//!
//! ```
//! use cortex_rules::native::{schema_for_factor, check_zero_threshold};
//!
//! // client_golang's default factor, 1.1, is schema 3: buckets grow by
//! // 2^(1/8) = 1.09 each.
//! assert_eq!(schema_for_factor(1.1), Ok(3));
//! assert_eq!(schema_for_factor(2.0), Ok(0));
//! assert!(schema_for_factor(1.0).is_err());
//! assert!(check_zero_threshold(-1.0).is_err());
//! ```

/// The finest schema Prometheus knows (buckets grow by 2^(1/256)).
pub const MAX_SCHEMA: i8 = 8;
/// The coarsest (buckets grow by 2^16).
pub const MIN_SCHEMA: i8 = -4;
/// client_golang's `NativeHistogramBucketFactor` suggestion.
pub const DEFAULT_FACTOR: f64 = 1.1;
/// client_golang's `DefNativeHistogramZeroThreshold`: 2^-128.
pub const DEFAULT_ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39;
/// Populated buckets before the resolution is halved (client_golang has no
/// limit by default; 160 keeps a series under ~2 KiB on the wire).
pub const DEFAULT_MAX_BUCKETS: u32 = 160;

/// The schema for a bucket factor, as client_golang picks it: the largest
/// schema whose growth factor `2^(2^-schema)` is at most `factor`, within
/// [-4, 8].
///
/// # Errors
/// A factor that is not a finite number above 1.
pub fn schema_for_factor(factor: f64) -> Result<i8, &'static str> {
    if !(factor.is_finite() && factor > 1.0) {
        return Err("the bucket factor must be a number above 1 (1.1: each bucket 10 % wider than the last)");
    }
    let floor = factor.log2().log2().floor();
    Ok(if floor <= -8.0 {
        MAX_SCHEMA
    } else if floor >= 4.0 {
        MIN_SCHEMA
    } else {
        -(floor as i8)
    })
}

/// The zero bucket's half-width: finite and not negative.
///
/// # Errors
/// The rule, as a sentence.
pub fn check_zero_threshold(threshold: f64) -> Result<(), &'static str> {
    if threshold.is_finite() && threshold >= 0.0 {
        Ok(())
    } else {
        Err("the zero threshold must be a finite number, 0 or more")
    }
}

/// At least one bucket.
///
/// # Errors
/// The rule, as a sentence.
pub fn check_max_buckets(max: u32) -> Result<(), &'static str> {
    if max >= 1 {
        Ok(())
    } else {
        Err("a native histogram needs room for at least 1 bucket")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas() {
        assert_eq!(schema_for_factor(1.0001), Ok(8));
        assert_eq!(schema_for_factor(1.003), Ok(8));
        assert_eq!(schema_for_factor(1.05), Ok(4));
        assert_eq!(schema_for_factor(1.5), Ok(1));
        assert_eq!(schema_for_factor(4.0), Ok(-1));
        assert_eq!(schema_for_factor(1e9), Ok(-4));
        assert!(schema_for_factor(f64::NAN).is_err());
        assert!(schema_for_factor(0.5).is_err());
        assert!(check_max_buckets(0).is_err());
        assert!(check_zero_threshold(f64::INFINITY).is_err());
        assert_eq!(check_zero_threshold(0.0), Ok(()));
    }
}
