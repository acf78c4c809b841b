//! A histogram's layout: classic bucket bounds, native buckets, or both.

use std::sync::Arc;

use super::native::NativeOptions;
use super::{Error, DEFAULT_BUCKETS};

/// What buckets a histogram keeps: classic bounds (checked when built),
/// native (exponential) buckets, or both.
///
/// ```
/// use cortex::metrics::{Buckets, NativeOptions};
///
/// let b = Buckets::new([0.1, 0.5, 1.0])?;
/// assert_eq!(b.bounds(), &[0.1, 0.5, 1.0]);
/// assert!(Buckets::new([1.0, 0.5]).is_err());
/// let exp = Buckets::exponential(0.001, 2.0, 4)?;
/// assert_eq!(exp.bounds(), &[0.001, 0.002, 0.004, 0.008]);
/// // Native buckets only, or beside classic ones.
/// assert!(Buckets::native().bounds().is_empty());
/// let both = Buckets::new([0.1, 1.0])?.with_native(NativeOptions::default());
/// assert_eq!(both.native_options().map(|n| n.schema()), Some(3));
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    bounds: Arc<[f64]>,
    native: Option<NativeOptions>,
}

impl Buckets {
    /// Custom bounds: non-empty, finite, non-negative, strictly increasing.
    /// `+Inf` is added implicitly.
    ///
    /// # Errors
    /// [`Error::InvalidBuckets`] saying which rule a bound broke.
    pub fn new(bounds: impl Into<Vec<f64>>) -> Result<Self, Error> {
        let bounds = bounds.into();
        cortex_rules::check_buckets(&bounds).map_err(Error::InvalidBuckets)?;
        Ok(Buckets {
            bounds: bounds.into(),
            native: None,
        })
    }

    /// Native buckets only, with the default [`NativeOptions`] (factor
    /// 1.1, schema 3). The text expositions show such a histogram's `_sum`,
    /// `_count` and `+Inf` bucket; the protobuf exposition its buckets.
    pub fn native() -> Self {
        Self::native_with(NativeOptions::default())
    }

    /// Native buckets only, with these options.
    pub fn native_with(options: NativeOptions) -> Self {
        Buckets {
            bounds: Arc::from(&[][..]),
            native: Some(options),
        }
    }

    /// These classic bounds and native buckets beside them: a scraper that
    /// reads native histograms gets both, the text formats the classic
    /// buckets.
    pub fn with_native(mut self, options: NativeOptions) -> Self {
        self.native = Some(options);
        self
    }

    /// `count` bounds starting at `start`, each `factor` times the previous.
    ///
    /// # Errors
    /// [`Error::InvalidBuckets`] if the result breaks a rule (for example
    /// `factor <= 1` or `count == 0`).
    pub fn exponential(start: f64, factor: f64, count: usize) -> Result<Self, Error> {
        let mut v = Vec::with_capacity(count);
        let mut x = start;
        for _ in 0..count {
            v.push(x);
            x *= factor;
        }
        Self::new(v)
    }

    /// `count` bounds starting at `start`, `width` apart.
    ///
    /// # Errors
    /// [`Error::InvalidBuckets`] if the result breaks a rule.
    pub fn linear(start: f64, width: f64, count: usize) -> Result<Self, Error> {
        Self::new(
            (0..count)
                .map(|i| start + width * i as f64)
                .collect::<Vec<_>>(),
        )
    }

    /// The classic bounds, without the implicit `+Inf` (empty for a
    /// native-only histogram).
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// The native buckets' options, if it keeps them.
    pub fn native_options(&self) -> Option<&NativeOptions> {
        self.native.as_ref()
    }
}

impl Default for Buckets {
    /// [`DEFAULT_BUCKETS`], no native buckets.
    fn default() -> Self {
        Buckets {
            bounds: Arc::from(&DEFAULT_BUCKETS[..]),
            native: None,
        }
    }
}
