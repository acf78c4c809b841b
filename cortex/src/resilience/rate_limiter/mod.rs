//! Rate limiter: at most `permits` calls per `period`; a caller may wait at
//! most `max_wait` for a later period's permits.
//!
//! As Resilience4j's `AtomicRateLimiter`, a waiting caller reserves its
//! permits in a later period when it asks, and then sleeps until that
//! period starts: waiters never wake together to race for permits, and a
//! caller whose permits would come after `max_wait` is refused at once,
//! without waiting. The state is one counter, the permits handed out since
//! the limiter started (never below the permits of the periods before the
//! current one: unused permits are not saved up), so taking permits is one
//! compare-and-swap and nothing wraps at any uptime.
//!
//! Within each period at most `permits` calls pass. (A window that spans a
//! period boundary can see up to twice that, as in Resilience4j.) A
//! reservation is not given back if its caller is cancelled while it
//! waits.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::atomic::AtomicCell;
use tokio::time::Instant;

use super::events::Hooks;
use super::ring::EventRing;
use super::{ConfigError, Error, RateLimiterConfig};
use crate::metrics::{Counter, Registry};

/// What happened in a rate limiter, as [`RateLimiter::on_event`] hooks see
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimiterEvent {
    /// Permits were taken, for use in period number `period` (counted from
    /// the limiter's start); `waited` is the wait before that period.
    Acquired {
        /// How many.
        permits: u32,
        /// The period they belong to.
        period: u64,
        /// How long the caller waits for them.
        waited: Duration,
    },
    /// A caller was refused: its permits would have come after `max_wait`.
    Rejected,
}

struct Inner {
    name: Arc<str>,
    config: AtomicCell<RateLimiterConfig>,
    epoch: Instant,
    /// Permits handed out since `epoch`, as counted by the current
    /// configuration.
    taken: AtomicU64,
    waiting: AtomicU64,
    rejected: Counter,
    events: Hooks<RateLimiterEvent>,
    ring: EventRing,
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
            .field("config", &self.inner.config.load())
            .finish()
    }
}

/// Where the limiter stands at one moment, by one configuration.
struct Clock {
    permits: u128,
    period: u128,
    now: u128,
    /// The current period's number.
    current: u128,
}

impl Clock {
    fn of(inner: &Inner, config: &RateLimiterConfig) -> Clock {
        let period = config.period.as_nanos().max(1);
        let now = inner.epoch.elapsed().as_nanos();
        Clock {
            permits: u128::from(config.permits),
            period,
            now,
            current: now / period,
        }
    }

    /// The permits of the periods before the current one: the counter is
    /// never below this.
    fn floor(&self) -> u128 {
        self.permits * self.current
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
                config: AtomicCell::new(config),
                epoch: Instant::now(),
                taken: AtomicU64::new(0),
                waiting: AtomicU64::new(0),
                rejected,
                events: Hooks::default(),
                ring: EventRing::new("rate_limiter", name.into()),
            }),
        };
        let gauge = |metric: &str, help: &str, f: fn(&RateLimiter) -> f64| {
            let weak = Arc::downgrade(&limiter.inner);
            metrics
                .gauge_family(metric, help, &["name"])
                .map(|family| {
                    family.core().attach_derived(
                        &[name],
                        Arc::new(move || {
                            weak.upgrade()
                                .map_or(0.0, |inner| f(&RateLimiter { inner }))
                        }),
                    )
                })
                .map_err(conflict)
        };
        gauge(
            "cortex_rate_limiter_available_permits",
            "Permits left in a rate limiter's current period.",
            |l| l.available_permits() as f64,
        )?;
        gauge(
            "cortex_rate_limiter_waiting_calls",
            "Calls waiting for a rate limiter's later periods.",
            |l| l.inner.waiting.load(Ordering::Relaxed) as f64,
        )?;
        Ok(limiter)
    }

    /// The name.
    pub(crate) fn ring(&self) -> &EventRing {
        &self.inner.ring
    }

    /// The name it is registered under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current configuration.
    pub fn config(&self) -> RateLimiterConfig {
        self.inner.config.load()
    }

    /// Replaces the configuration. The current period keeps the calls it
    /// already let through (up to the new limit); reservations for later
    /// periods made under the old one still proceed.
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: RateLimiterConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let old = self.inner.config.load();
        let (before, after) = (
            Clock::of(&self.inner, &old),
            Clock::of(&self.inner, &config),
        );
        let _ = self
            .inner
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                let used = u128::from(taken)
                    .saturating_sub(before.floor())
                    .min(before.permits);
                Some(clamp(after.floor() + used.min(after.permits)))
            });
        self.inner.config.store(config);
        tracing::info!(target: "cortex::resilience", rate_limiter = %self.inner.name, ?config, "rate limiter reconfigured");
        Ok(())
    }

    /// Permits left in the current period.
    pub fn available_permits(&self) -> u64 {
        let config = self.inner.config.load();
        let clock = Clock::of(&self.inner, &config);
        let taken = u128::from(self.inner.taken.load(Ordering::Acquire)).max(clock.floor());
        clamp((clock.floor() + clock.permits).saturating_sub(taken))
    }

    /// Calls waiting for a later period now.
    pub fn waiting(&self) -> u64 {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Calls `hook` whenever permits are taken or a caller is refused.
    /// Costs nothing while no hook is registered.
    pub fn on_event(&self, hook: impl Fn(&RateLimiterEvent) + Send + Sync + 'static) {
        self.inner.events.add(hook);
    }

    /// Calls `hook` for every refused caller.
    pub fn on_rejected(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.on_event(move |e| {
            if *e == RateLimiterEvent::Rejected {
                hook();
            }
        });
    }

    /// Reserves `n` permits: how long until their period starts, or `None`
    /// if that is past `max_wait` (nothing is reserved then).
    fn reserve(&self, n: u32) -> Option<Duration> {
        let config = self.inner.config.load();
        let clock = Clock::of(&self.inner, &config);
        let max_wait = config.max_wait.as_nanos();
        let n = u128::from(n);
        let mut period = 0u128;
        let mut wait = 0u128;
        let reserved =
            self.inner
                .taken
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                    let after = u128::from(taken).max(clock.floor()) + n;
                    // The period the last of these permits belongs to.
                    period = (after - 1) / clock.permits;
                    wait = (period * clock.period).saturating_sub(clock.now);
                    (wait <= max_wait).then(|| clamp(after))
                });
        match reserved {
            Ok(_) => {
                let waited = Duration::from_nanos(clamp(wait));
                self.inner.events.emit(|| RateLimiterEvent::Acquired {
                    permits: u32::try_from(n).unwrap_or(u32::MAX),
                    period: clamp(period),
                    waited,
                });
                Some(waited)
            }
            Err(_) => None,
        }
    }

    #[cold]
    fn reject(&self) -> Error {
        self.inner.rejected.inc();
        self.inner.events.emit(|| RateLimiterEvent::Rejected);
        self.inner
            .ring
            .record_rejection("FAILED_ACQUIRE", String::new);
        Error::RateLimited {
            name: Arc::clone(&self.inner.name),
        }
    }

    /// Takes a permit, waiting up to `max_wait` for a later period's.
    ///
    /// # Errors
    /// [`Error::RateLimited`] if no permit comes within the wait (refused at
    /// once).
    pub async fn acquire(&self) -> Result<(), Error> {
        self.acquire_n(1).await
    }

    /// Takes `n` permits at once (a weighted call), waiting up to
    /// `max_wait` for the period in which the last of them comes; more than
    /// `permits` spread over the periods they need.
    ///
    /// # Errors
    /// [`Error::RateLimited`] if they would come after `max_wait` (refused at
    /// once; nothing is taken).
    pub async fn acquire_n(&self, n: u32) -> Result<(), Error> {
        match self.reserve(n) {
            Some(wait) if wait.is_zero() => Ok(()),
            Some(wait) => {
                let waiting = &self.inner.waiting;
                waiting.fetch_add(1, Ordering::Relaxed);
                struct Leave<'a>(&'a AtomicU64);
                impl Drop for Leave<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                let _leave = Leave(waiting);
                tokio::time::sleep(wait).await;
                Ok(())
            }
            None => Err(self.reject()),
        }
    }

    /// Takes `n` permits if they are free now, without waiting.
    ///
    /// # Errors
    /// [`Error::RateLimited`] if they are not.
    pub fn try_acquire(&self, n: u32) -> Result<(), Error> {
        let config = self.inner.config.load();
        let clock = Clock::of(&self.inner, &config);
        let ok = self
            .inner
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
                let after = u128::from(taken).max(clock.floor()) + u128::from(n);
                (after <= clock.floor() + clock.permits).then(|| clamp(after))
            })
            .is_ok();
        if ok {
            self.inner.events.emit(|| RateLimiterEvent::Acquired {
                permits: n,
                period: clamp(clock.current),
                waited: Duration::ZERO,
            });
            Ok(())
        } else {
            Err(self.reject())
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

fn clamp(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}
