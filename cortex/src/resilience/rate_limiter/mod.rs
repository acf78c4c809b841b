//! Rate limiter: at most `permits` calls per `period`; callers wait at most
//! `max_wait` for the next period's permits.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{ConfigError, Error, RateLimiterConfig};
use crate::metrics::{Counter, Registry};
use crate::util::Versioned;

// The state packs the period number (40 bits) and the permits used in it
// (24 bits) in one word, so taking a permit is one compare-and-swap.
const USED_BITS: u32 = 24;
const USED_MASK: u64 = (1 << USED_BITS) - 1;

struct Inner {
    name: Arc<str>,
    config: Versioned<RateLimiterConfig>,
    epoch: Instant,
    state: AtomicU64,
    rejected: Counter,
}

/// A rate limiter. Cheap to clone.
///
/// ```
/// use cortex::resilience::{RateLimiter, RateLimiterConfig};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let limiter = RateLimiter::new("doc-api", RateLimiterConfig {
///     permits: 2,
///     period: Duration::from_secs(1),
///     max_wait: Duration::ZERO,
/// })?;
/// assert!(limiter.acquire().await.is_ok());
/// assert!(limiter.acquire().await.is_ok());
/// assert!(limiter.acquire().await.is_err(), "the third call in the same second");
/// # Ok::<(), cortex::resilience::ConfigError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.inner.name)
            .field("config", self.inner.config.get())
            .finish()
    }
}

impl RateLimiter {
    /// The rate limiter registered under `name`, created with `config` if
    /// there is none.
    ///
    /// # Errors
    /// The configuration breaks a rule, or `name` exists with another
    /// configuration.
    pub fn new(name: &str, config: RateLimiterConfig) -> Result<Self, ConfigError> {
        super::registry::rate_limiter_or_create(name, config, crate::metrics::global())
    }

    pub(crate) fn build(
        name: &str,
        config: RateLimiterConfig,
        metrics: &Registry,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let conflict = super::metrics_conflict("rate limiter", name);
        let rejected = metrics
            .counter_family(
                "cortex_rate_limiter_rejected_total",
                "Calls a rate limiter rejected.",
                &["name"],
            )
            .and_then(|f| f.with_labels(&[name]))
            .map_err(conflict)?;
        let limiter = RateLimiter {
            inner: Arc::new(Inner {
                name: name.into(),
                config: Versioned::new(config),
                epoch: Instant::now(),
                state: AtomicU64::new(0),
                rejected,
            }),
        };
        let weak = Arc::downgrade(&limiter.inner);
        metrics
            .gauge_family(
                "cortex_rate_limiter_available_permits",
                "Permits left in a rate limiter's current period.",
                &["name"],
            )
            .map_err(conflict)?
            .core()
            .attach_derived(
                &[name],
                Arc::new(move || {
                    weak.upgrade()
                        .map_or(0.0, |i| RateLimiter { inner: i }.available_permits() as f64)
                }),
            );
        Ok(limiter)
    }

    /// The current configuration.
    pub fn config(&self) -> RateLimiterConfig {
        *self.inner.config.get()
    }

    /// Replaces the configuration.
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: RateLimiterConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.inner.config.set(config);
        Ok(())
    }

    fn period_now(&self, config: &RateLimiterConfig) -> (u64, Duration) {
        let elapsed = self.inner.epoch.elapsed();
        let period = config.period.as_nanos().max(1);
        let n = elapsed.as_nanos() / period;
        let next = Duration::from_nanos(
            u64::try_from((n + 1) * period - elapsed.as_nanos()).unwrap_or(u64::MAX),
        );
        (u64::try_from(n).unwrap_or(u64::MAX), next)
    }

    /// Permits left in the current period.
    pub fn available_permits(&self) -> u64 {
        let config = self.inner.config.get();
        let (period, _) = self.period_now(config);
        let state = self.inner.state.load(Ordering::Acquire);
        let used = if state >> USED_BITS == period {
            state & USED_MASK
        } else {
            0
        };
        u64::from(config.permits).saturating_sub(used)
    }

    /// Takes a permit now, or says how long until the next period.
    fn take(&self) -> Result<(), Duration> {
        let config = self.inner.config.get();
        let permits = u64::from(config.permits).min(USED_MASK);
        let (period, until_next) = self.period_now(config);
        self.inner
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                let used = if state >> USED_BITS == period {
                    state & USED_MASK
                } else {
                    0
                };
                (used < permits).then_some((period << USED_BITS) | (used + 1))
            })
            .map(|_| ())
            .map_err(|_| until_next)
    }

    /// Takes a permit, waiting up to `max_wait` for the next period.
    ///
    /// # Errors
    /// [`Error::RateLimited`] if no permit came within the wait.
    pub async fn acquire(&self) -> Result<(), Error> {
        let deadline = Instant::now() + self.inner.config.get().max_wait;
        loop {
            match self.take() {
                Ok(()) => return Ok(()),
                Err(until_next) if Instant::now() + until_next <= deadline => {
                    tokio::time::sleep(until_next).await;
                }
                Err(_) => {
                    self.inner.rejected.inc();
                    return Err(Error::RateLimited {
                        name: Arc::clone(&self.inner.name),
                    });
                }
            }
        }
    }

    /// Runs `f` once a permit is taken.
    ///
    /// # Errors
    /// `f`'s error, or [`Error::RateLimited`] converted into `E`.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.acquire().await?;
        f().await
    }
}
