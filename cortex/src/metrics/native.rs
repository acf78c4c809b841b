//! Native histograms (Prometheus's exponential, sparse buckets): bucket `k`
//! of schema `s` holds the observations in `(2^((k-1)/2^s), 2^(k/2^s)]`,
//! so buckets grow by `2^(2^-s)` (1.09 at schema 3) over any range, and
//! only the buckets that were hit exist.
//!
//! Observing is lock-free: the bucket's index comes from the float's bits
//! and a small per-schema table (no logarithm), then one atomic add in a
//! page of counters made the first time one of its buckets is hit (the only
//! allocation). Pages hang off a table per sign, one set per stripe once the
//! histogram is contended, as the classic buckets are. The maximum bucket
//! count is kept at read time: when more buckets are populated, the
//! exposition halves the resolution (merges neighbours) until they fit, so
//! observing never waits for a reorganisation.
//!
//! Observations are counted in bucket indexes for `2^-128 ..= 2^128`
//! (values beyond 2^128, and infinities, in the outermost bucket); anything
//! at or under the zero threshold (default 2^-128) in the zero bucket.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};
use std::sync::{LazyLock, OnceLock};

use super::Error;

/// How a histogram keeps native buckets.
///
/// ```
/// use cortex::metrics::NativeOptions;
///
/// let fine = NativeOptions::new().factor(1.05)?.max_buckets(200)?;
/// assert_eq!(fine.schema(), 4);
/// assert_eq!(NativeOptions::default().schema(), 3);
/// # Ok::<(), cortex::metrics::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NativeOptions {
    schema: i8,
    zero_threshold: f64,
    max_buckets: u32,
}

impl Default for NativeOptions {
    /// Bucket factor 1.1 (schema 3), zero threshold 2^-128, 160 buckets.
    fn default() -> Self {
        NativeOptions {
            schema: 3,
            zero_threshold: cortex_rules::native::DEFAULT_ZERO_THRESHOLD,
            max_buckets: cortex_rules::native::DEFAULT_MAX_BUCKETS,
        }
    }
}

impl NativeOptions {
    /// The defaults: see [`Default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The largest growth from one bucket to the next (client_golang's
    /// `NativeHistogramBucketFactor`): the schema is the finest whose
    /// factor is at most this.
    ///
    /// # Errors
    /// [`Error::InvalidNative`] unless `factor` is a finite number above 1.
    pub fn factor(mut self, factor: f64) -> Result<Self, Error> {
        self.schema = cortex_rules::native::schema_for_factor(factor)
            .map_err(|rule| Error::InvalidNative(rule.into()))?;
        Ok(self)
    }

    /// Observations with an absolute value at or under this go to the
    /// zero bucket.
    ///
    /// # Errors
    /// [`Error::InvalidNative`] for a negative or non-finite threshold.
    pub fn zero_threshold(mut self, threshold: f64) -> Result<Self, Error> {
        cortex_rules::native::check_zero_threshold(threshold)
            .map_err(|rule| Error::InvalidNative(rule.into()))?;
        self.zero_threshold = threshold;
        Ok(self)
    }

    /// The most populated buckets a series exposes; past it the resolution
    /// is halved until they fit.
    ///
    /// # Errors
    /// [`Error::InvalidNative`] for 0.
    pub fn max_buckets(mut self, max: u32) -> Result<Self, Error> {
        cortex_rules::native::check_max_buckets(max)
            .map_err(|rule| Error::InvalidNative(rule.into()))?;
        self.max_buckets = max;
        Ok(self)
    }

    /// Options the macro checked at compile time (through the same rules).
    #[doc(hidden)]
    pub const fn __checked(schema: i8, zero_threshold: f64, max_buckets: u32) -> Self {
        NativeOptions {
            schema,
            zero_threshold,
            max_buckets,
        }
    }

    /// The schema observations are counted at.
    pub fn schema(&self) -> i8 {
        self.schema
    }
}

/// The binary exponents page tables cover: `[-128, 128)`.
const EXPONENTS: i32 = 256;

/// Per schema above 0: `bounds[i] = 2^(i/n)` for `i < n` and a sentinel 2,
/// and for each of the `4n` equal cells of the mantissa range `[1, 2)` the
/// number of bounds below the cell's start.
struct SchemaTable {
    bounds: Box<[f64]>,
    below: Box<[u16]>,
    /// log2 of the cell count.
    cell_bits: u32,
}

static TABLES: LazyLock<[Option<SchemaTable>; 9]> = LazyLock::new(|| {
    std::array::from_fn(|s| {
        (s > 0).then(|| {
            let n = 1usize << s;
            let mut bounds: Vec<f64> = (0..n).map(|i| (i as f64 / n as f64).exp2()).collect();
            bounds.push(2.0);
            let cell_bits = s as u32 + 2;
            let cells = 1usize << cell_bits;
            let below = (0..cells)
                .map(|c| {
                    let start = 1.0 + c as f64 / cells as f64;
                    bounds[..n].iter().filter(|&&b| b < start).count() as u16
                })
                .collect();
            SchemaTable {
                bounds: bounds.into(),
                below,
                cell_bits,
            }
        })
    })
});

/// The bucket index of `v > 0` at `schema`: the `k` with
/// `2^((k-1)/2^s) < v <= 2^(k/2^s)`, clamped to the pages' range.
#[inline]
pub(crate) fn key(v: f64, schema: i8) -> i32 {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let (exp, mantissa) = if biased == 0 {
        // Subnormal: scale into the normal range first.
        let scaled = (v * f64::from_bits(0x43f0_0000_0000_0000)).to_bits(); // 2^64
        (
            ((scaled >> 52) & 0x7ff) as i32 - 1023 - 64,
            scaled & 0x000f_ffff_ffff_ffff,
        )
    } else {
        (biased - 1023, bits & 0x000f_ffff_ffff_ffff)
    };
    // v = m * 2^exp with m in [1, 2); beyond the pages, the outermost
    // bucket.
    let (lo, hi) = range(schema);
    if exp < -EXPONENTS / 2 {
        return lo;
    }
    if exp >= EXPONENTS / 2 {
        return hi - 1;
    }
    let k = if schema > 0 {
        let table = TABLES[schema as usize]
            .as_ref()
            .expect("tables exist for schemas 1 to 8");
        let cell = (mantissa >> (52 - table.cell_bits)) as usize;
        let lo = usize::from(table.below[cell]);
        let m = f64::from_bits(mantissa | 0x3ff0_0000_0000_0000);
        // At most one bound falls inside a cell: one comparison decides.
        let j = lo + usize::from(m > table.bounds[lo]);
        (exp << schema) + j as i32
    } else {
        // Upper-inclusive: an exact power of two ends its bucket.
        let k = exp + i32::from(mantissa != 0);
        let shift = -schema;
        (k + (1 << shift) - 1) >> shift
    };
    k.clamp(lo, hi - 1)
}

/// The bucket indexes the pages cover, `[lo, hi)`: every index of a
/// value in `[2^-128, 2^128)`.
fn range(schema: i8) -> (i32, i32) {
    let half = if schema >= 0 {
        (EXPONENTS / 2) << schema
    } else {
        (EXPONENTS / 2) >> -schema
    };
    (-half, half + 1)
}

/// Counters per page: one binary exponent's buckets (one, at or under
/// schema 0).
fn page_len(schema: i8) -> usize {
    1usize << schema.max(0)
}

/// One sign's pages: lazily made pages of `page_len` counters.
struct Pages {
    pages: Box<[AtomicPtr<AtomicU64>]>,
    /// Counters per page.
    len: usize,
}

impl Pages {
    fn new(schema: i8) -> Pages {
        let (lo, hi) = range(schema);
        let len = page_len(schema);
        let count = ((hi - lo) as usize).div_ceil(len);
        Pages {
            pages: (0..count)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            len,
        }
    }

    #[inline]
    fn add(&self, schema: i8, k: i32) {
        let (lo, _) = range(schema);
        let len = self.len;
        let offset = (k - lo) as usize;
        let (page, slot) = (offset / len, offset % len);
        let Some(entry) = self.pages.get(page) else {
            return;
        };
        let mut p = entry.load(Acquire);
        if p.is_null() {
            p = make_page(entry, len);
        }
        // SAFETY: published pages hold `len` counters and live until the
        // `Pages` drops.
        unsafe { &*p.add(slot) }.fetch_add(1, Relaxed);
    }

    /// Adds every populated bucket's count into `out` (index -> count).
    fn read_into(&self, schema: i8, out: &mut std::collections::BTreeMap<i32, u64>) {
        let (lo, _) = range(schema);
        let len = self.len;
        for (page, entry) in self.pages.iter().enumerate() {
            let p = entry.load(Acquire);
            if p.is_null() {
                continue;
            }
            for slot in 0..len {
                // SAFETY: as in `add`.
                let n = unsafe { &*p.add(slot) }.load(Relaxed);
                if n > 0 {
                    *out.entry(lo + (page * len + slot) as i32).or_insert(0) += n;
                }
            }
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        let pages = self
            .pages
            .iter()
            .filter(|p| !p.load(Relaxed).is_null())
            .count();
        self.pages.len() * 8 + pages * self.len * 8
    }
}

#[cold]
#[inline(never)]
fn make_page(entry: &AtomicPtr<AtomicU64>, len: usize) -> *mut AtomicU64 {
    let fresh: Box<[AtomicU64]> = (0..len).map(|_| AtomicU64::new(0)).collect();
    let fresh = Box::into_raw(fresh).cast::<AtomicU64>();
    match entry.compare_exchange(std::ptr::null_mut(), fresh, AcqRel, Acquire) {
        Ok(_) => fresh,
        Err(theirs) => {
            // SAFETY: `fresh` was never shared; rebuilt with its length.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, len)) });
            theirs
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        let len = self.len;
        for entry in self.pages.iter() {
            let p = entry.load(Acquire);
            if !p.is_null() {
                // SAFETY: made by `make_page` with `len` counters, no
                // longer shared.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len)) });
            }
        }
    }
}

/// Both signs' pages of one stripe.
struct Signs {
    positive: Pages,
    negative: OnceLock<Pages>,
}

/// The native buckets of one histogram. (Named by `#[timed(native)]`'s
/// expansion; not a public API.)
#[doc(hidden)]
pub struct NativeCell {
    options: NativeOptions,
    zero: AtomicU64,
    /// One set of pages per stripe, made at the first observation (set 0
    /// only, while the histogram is not contended).
    stripes: OnceLock<Box<[OnceLock<Signs>]>>,
}

/// What a read of the native buckets gives, after resolution reduction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NativePoint {
    pub(crate) schema: i8,
    pub(crate) zero_threshold: f64,
    pub(crate) zero_count: u64,
    /// `(index, count)`, ascending, counts above 0.
    pub(crate) positive: Vec<(i32, u64)>,
    pub(crate) negative: Vec<(i32, u64)>,
}

impl NativePoint {
    /// Adds `other`'s buckets, at the coarser of the two schemas.
    pub(crate) fn merge(&mut self, mut other: NativePoint) {
        self.coarsen_to(other.schema);
        other.coarsen_to(self.schema);
        let add = |a: &[(i32, u64)], b: &[(i32, u64)]| {
            let mut all: std::collections::BTreeMap<i32, u64> = a.iter().copied().collect();
            for &(k, n) in b {
                *all.entry(k).or_insert(0) += n;
            }
            all.into_iter().collect::<Vec<_>>()
        };
        self.positive = add(&self.positive, &other.positive);
        self.negative = add(&self.negative, &other.negative);
        self.zero_count += other.zero_count;
        self.zero_threshold = self.zero_threshold.max(other.zero_threshold);
    }

    /// What was added since `before` (an earlier read of the same
    /// buckets), at the coarser of the two schemas.
    pub(crate) fn minus(&self, before: &NativePoint) -> NativePoint {
        let (mut now, mut then) = (self.clone(), before.clone());
        now.coarsen_to(then.schema);
        then.coarsen_to(now.schema);
        let sub = |a: &[(i32, u64)], b: &[(i32, u64)]| {
            let old: std::collections::BTreeMap<i32, u64> = b.iter().copied().collect();
            a.iter()
                .map(|&(k, n)| (k, n.saturating_sub(old.get(&k).copied().unwrap_or(0))))
                .filter(|&(_, n)| n > 0)
                .collect::<Vec<_>>()
        };
        NativePoint {
            positive: sub(&now.positive, &then.positive),
            negative: sub(&now.negative, &then.negative),
            zero_count: now.zero_count.saturating_sub(then.zero_count),
            ..now
        }
    }

    /// The buckets as OpenTelemetry's exponential histogram has them:
    /// its index `i` covers `(base^i, base^(i+1)]`, Prometheus's `i + 1`;
    /// `(offset, dense counts)`.
    pub(crate) fn otel_buckets(buckets: &[(i32, u64)]) -> (i32, Vec<u64>) {
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
            return (0, Vec::new());
        };
        let mut dense = vec![0u64; (last.0 - first.0 + 1) as usize];
        for &(k, n) in buckets {
            dense[(k - first.0) as usize] = n;
        }
        (first.0 - 1, dense)
    }

    /// Halves the resolution until it is at most `schema`.
    fn coarsen_to(&mut self, schema: i8) {
        while self.schema > schema {
            self.schema -= 1;
            self.positive = halve(&self.positive);
            self.negative = halve(&self.negative);
        }
    }

    /// Observations in every bucket.
    pub(crate) fn count(&self) -> u64 {
        self.zero_count
            + self.positive.iter().map(|b| b.1).sum::<u64>()
            + self.negative.iter().map(|b| b.1).sum::<u64>()
    }
}

impl NativeCell {
    /// Empty buckets with these options.
    pub const fn new(options: NativeOptions) -> Self {
        NativeCell {
            options,
            zero: AtomicU64::new(0),
            stripes: OnceLock::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn options(&self) -> &NativeOptions {
        &self.options
    }

    /// Counts `v` (not NaN); `stripe` is `None` while the histogram is not
    /// contended.
    #[inline]
    pub(crate) fn observe(&self, v: f64, stripe: Option<usize>) {
        let magnitude = v.abs();
        if magnitude <= self.options.zero_threshold {
            self.zero.fetch_add(1, Relaxed);
            return;
        }
        let schema = self.options.schema;
        let k = key(magnitude, schema);
        let signs = self.signs(stripe.unwrap_or(0));
        if v > 0.0 {
            signs.positive.add(schema, k);
        } else {
            signs
                .negative
                .get_or_init(|| Pages::new(schema))
                .add(schema, k);
        }
    }

    #[inline]
    fn signs(&self, stripe: usize) -> &Signs {
        let sets = self
            .stripes
            .get_or_init(|| (0..super::stripes()).map(|_| OnceLock::new()).collect());
        sets[stripe & (sets.len() - 1)].get_or_init(|| Signs {
            positive: Pages::new(self.options.schema),
            negative: OnceLock::new(),
        })
    }

    /// Every stripe added up, at a resolution with at most `max_buckets`
    /// populated buckets.
    pub(crate) fn read(&self) -> NativePoint {
        let schema = self.options.schema;
        let (mut positive, mut negative) = (Default::default(), Default::default());
        if let Some(sets) = self.stripes.get() {
            for signs in sets.iter().filter_map(OnceLock::get) {
                signs.positive.read_into(schema, &mut positive);
                if let Some(n) = signs.negative.get() {
                    n.read_into(schema, &mut negative);
                }
            }
        }
        let mut point = NativePoint {
            schema,
            zero_threshold: self.options.zero_threshold,
            zero_count: self.zero.load(Relaxed),
            positive: positive.into_iter().collect(),
            negative: negative.into_iter().collect(),
        };
        let max = self.options.max_buckets as usize;
        while point.positive.len() + point.negative.len() > max
            && point.schema > cortex_rules::native::MIN_SCHEMA
        {
            point.coarsen_to(point.schema - 1);
        }
        point
    }

    /// Bytes held by pages and tables.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.stripes.get().map_or(0, |sets| {
            sets.iter()
                .filter_map(OnceLock::get)
                .map(|s| s.positive.bytes() + s.negative.get().map_or(0, Pages::bytes))
                .sum()
        })
    }
}

/// The buckets one schema coarser: bucket `k` goes to `ceil(k / 2)`.
fn halve(buckets: &[(i32, u64)]) -> Vec<(i32, u64)> {
    let mut out: Vec<(i32, u64)> = Vec::with_capacity(buckets.len() / 2 + 1);
    for &(k, n) in buckets {
        let k = (k + 1) >> 1;
        match out.last_mut() {
            Some((last, count)) if *last == k => *count += n,
            _ => out.push((k, n)),
        }
    }
    out
}

impl std::fmt::Debug for NativeCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeCell")
            .field("options", &self.options)
            .field("buckets", &self.read())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index by definition: the smallest `k` with `v <= 2^(k/2^s)`.
    fn slow_key(v: f64, schema: i8) -> i32 {
        let n = 2f64.powi(schema as i32);
        let mut k = (v.log2() * n).ceil() as i32;
        // Correct the float's rounding at the edges.
        while 2f64.powf((k - 1) as f64 / n) >= v {
            k -= 1;
        }
        while 2f64.powf(k as f64 / n) < v {
            k += 1;
        }
        k
    }

    #[test]
    fn keys_match_the_definition() {
        let mut rng = fastrand::Rng::with_seed(7);
        for schema in -4..=8i8 {
            for _ in 0..20_000 {
                let v = (rng.f64() * 80.0 - 40.0).exp2();
                assert_eq!(key(v, schema), slow_key(v, schema), "{v} at {schema}");
            }
            // Powers of two end their bucket.
            for e in -20..20 {
                let v = (e as f64).exp2();
                assert_eq!(key(v, schema), slow_key(v, schema), "{v} at {schema}");
            }
        }
        // Schema 0: (0.5, 1] is bucket 0, (1, 2] bucket 1.
        assert_eq!(key(1.0, 0), 0);
        assert_eq!(key(1.5, 0), 1);
        assert_eq!(key(2.0, 0), 1);
        // Subnormals and extremes are clamped into the pages' range.
        assert_eq!(key(f64::MIN_POSITIVE / 8.0, 3), range(3).0);
        assert_eq!(key(f64::MAX, 3), range(3).1 - 1);
        assert_eq!(key(f64::INFINITY, 0), range(0).1 - 1);
    }

    #[test]
    fn counts_reads_and_halves() {
        let cell = NativeCell::new(NativeOptions::new().factor(2.0).unwrap());
        assert_eq!(cell.options().schema(), 0);
        for v in [0.0, 1e-40, 0.75, 1.0, 1.5, 2.0, 3.0, -1.5] {
            cell.observe(v, None);
        }
        let p = cell.read();
        assert_eq!(p.zero_count, 2);
        assert_eq!(p.positive, [(0, 2), (1, 2), (2, 1)]);
        assert_eq!(p.negative, [(1, 1)]);
        assert_eq!(p.count(), 8);
        // Room for two buckets: halved until they fit.
        let small = NativeCell::new(NativeOptions::new().max_buckets(2).unwrap());
        for v in [1.0, 1.1, 1.2, 1.4, 1.9, 3.0] {
            small.observe(v, None);
        }
        let p = small.read();
        assert!(p.positive.len() <= 2, "{p:?}");
        assert!(p.schema < 3);
        assert_eq!(p.count(), 6);
        assert_eq!(
            halve(&[(-1, 1), (0, 2), (1, 3), (2, 4), (5, 1)]),
            [(0, 3), (1, 7), (3, 1)]
        );
    }

    #[test]
    fn pages_are_made_once_under_threads() {
        let cell = std::sync::Arc::new(NativeCell::new(NativeOptions::default()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let cell = std::sync::Arc::clone(&cell);
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        cell.observe(1.0 + f64::from(i % 100) / 50.0, Some(t));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(cell.read().count(), 40_000);
        assert!(cell.bytes() > 0);
    }
}
