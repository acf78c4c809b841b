//! Retry: re-run a failed call, with fixed or exponential backoff, jitter
//! (proportional, full or decorrelated), a decision on each result, an
//! overall deadline, and an optional retry budget.
//!
//! The budget keeps a failing backend from getting a retry storm: each call
//! deposits `budget` tokens and each retry spends one, so retries stay below
//! that share of calls (after a reserve of 10 retries, which is also the
//! most a quiet period can save up).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::atomic::AtomicCell;
use tokio::time::Instant;

use super::events::Hooks;
use super::ring::EventRing;
use super::{Backoff, ConfigError, Error, JitterMode, RetryConfig};
use crate::metrics::{Counter, Registry};

// A retry costs one token; budgets down to MIN_RETRY_BUDGET (a millionth
// of a retry per call) still refill.
const TOKEN: i64 = 1_000_000;
const RESERVE: i64 = 10 * TOKEN;

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryDecision {
    /// Return this result.
    Done,
    /// Try again after the backoff's delay.
    Retry,
    /// Try again, but not before this long (a breaker's `retry_after`);
    /// given up when the remaining attempts would not have waited as long.
    RetryAfter(Duration),
}

impl RetryDecision {
    /// The decision for a policy's rejection: a timeout is retried; an open
    /// breaker only once it lets calls through again (if that fits the
    /// remaining attempts); a full bulkhead, an exhausted rate limiter or a
    /// forced-open breaker is not retried (that would only burn attempts).
    pub fn for_rejection(error: &Error) -> RetryDecision {
        match error {
            Error::Timeout { .. } => RetryDecision::Retry,
            Error::CircuitOpen { retry_after, .. } if *retry_after == Duration::MAX => {
                RetryDecision::Done
            }
            Error::CircuitOpen { retry_after, .. } => RetryDecision::RetryAfter(*retry_after),
            Error::BulkheadFull { .. } | Error::RateLimited { .. } => RetryDecision::Done,
        }
    }
}

/// What happened in a retry, as [`Retry::on_event`] hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryEvent {
    /// Another attempt follows, after `delay`.
    Retry {
        /// The attempt that just ended (1 for the first).
        attempt: u32,
        /// The wait before the next one.
        delay: Duration,
    },
    /// The call succeeded (after `attempts` attempts).
    Success {
        /// Attempts made.
        attempts: u32,
    },
    /// The call ended without success, for `reason`.
    Error {
        /// Attempts made.
        attempts: u32,
        /// Why no more attempts were made.
        reason: &'static str,
    },
}

struct Inner {
    name: Arc<str>,
    config: AtomicCell<RetryConfig>,
    /// `budget` as f64 bits (`u64::MAX`: none), read on every call.
    budget_ratio: AtomicU64,
    /// `max_elapsed` is set: the first attempt's start is kept.
    has_deadline: AtomicBool,
    budget: AtomicI64,
    events: Hooks<RetryEvent>,
    ring: EventRing,
    without_retry_ok: Counter,
    with_retry_ok: Counter,
    without_retry_failed: Counter,
    with_retry_failed: Counter,
    attempts: Counter,
}

/// A retry policy. Cheap to clone.
///
/// ```
/// use cortex::resilience::{Retry, RetryConfig};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let retry = Retry::new("doc-fetch", RetryConfig { max: 3, delay: Duration::from_millis(10), ..Default::default() })?;
/// let tries = AtomicU32::new(0);
/// let result: Result<u32, String> = retry
///     .call(|| async {
///         let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
///         if n < 3 { Err(format!("attempt {n} failed")) } else { Ok(n) }
///     })
///     .await;
/// assert_eq!(result, Ok(3));
/// # Ok::<(), cortex::resilience::ConfigError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Retry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config.load())
            .finish()
    }
}

impl Retry {
    /// The retry registered under `name`, created with `config` if there is
    /// none; its metrics go to the global registry.
    ///
    /// # Errors
    /// The configuration breaks a rule, or `name` exists with another
    /// configuration.
    pub fn new(name: &str, config: RetryConfig) -> Result<Self, ConfigError> {
        super::registry::retry_or_create(name, config, crate::metrics::global())
    }

    pub(crate) fn build(
        name: &str,
        config: RetryConfig,
        metrics: &Registry,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let conflict = super::metrics_conflict("retry", name);
        let calls = metrics
            .counter_family(
                "cortex_retry_calls_total",
                "Calls through a retry, by kind.",
                &["name", "kind"],
            )
            .map_err(conflict)?;
        let kind = |k: &str| calls.with_labels(&[name, k]).map_err(conflict);
        Ok(Retry {
            inner: Arc::new(Inner {
                name: name.into(),
                config: AtomicCell::new(config),
                budget_ratio: AtomicU64::new(ratio_bits(config.budget)),
                has_deadline: AtomicBool::new(config.max_elapsed.is_some()),
                budget: AtomicI64::new(RESERVE),
                events: Hooks::default(),
                ring: EventRing::new("retry", name.into()),
                without_retry_ok: kind("successful_without_retry")?,
                with_retry_ok: kind("successful_with_retry")?,
                without_retry_failed: kind("failed_without_retry")?,
                with_retry_failed: kind("failed_with_retry")?,
                attempts: metrics
                    .counter_family(
                        "cortex_retry_attempts_total",
                        "Retry attempts (after the first).",
                        &["name"],
                    )
                    .and_then(|f| f.with_labels(&[name]))
                    .map_err(conflict)?,
            }),
        })
    }

    /// The name.
    /// Calls so far: successful without a retry, successful after
    /// retries, failed without a retry, failed after retries; and retries.
    pub(crate) fn counts(&self) -> [u64; 5] {
        let i = &self.inner;
        [
            i.without_retry_ok.get(),
            i.with_retry_ok.get(),
            i.without_retry_failed.get(),
            i.with_retry_failed.get(),
            i.attempts.get(),
        ]
        .map(|v| v as u64)
    }

    pub(crate) fn ring(&self) -> &EventRing {
        &self.inner.ring
    }

    /// The name it is registered under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current configuration.
    pub fn config(&self) -> RetryConfig {
        self.inner.config.load()
    }

    /// Replaces the configuration (checked by the same rules as the
    /// attribute).
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: RetryConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.inner.config.store(config);
        self.inner
            .budget_ratio
            .store(ratio_bits(config.budget), Ordering::Relaxed);
        self.inner
            .has_deadline
            .store(config.max_elapsed.is_some(), Ordering::Relaxed);
        tracing::info!(target: "cortex::resilience", retry = %self.inner.name, ?config, "retry reconfigured");
        Ok(())
    }

    /// The delay before retry number `retry` (1 for the first retry), with
    /// jitter applied (decorrelated jitter as after a first retry of
    /// `delay`).
    pub fn delay_for(&self, retry: u32) -> Duration {
        let config = self.inner.config.load();
        delay_for(&config, retry, config.delay)
    }

    /// Calls `hook` on every retry, success after retries, and give-up.
    /// Costs nothing while no hook is registered.
    pub fn on_event(&self, hook: impl Fn(&RetryEvent) + Send + Sync + 'static) {
        self.inner.events.add(hook);
    }

    /// Calls `hook(attempt, delay)` before every retry.
    pub fn on_retry(&self, hook: impl Fn(u32, Duration) + Send + Sync + 'static) {
        self.on_event(move |e| {
            if let RetryEvent::Retry { attempt, delay } = e {
                hook(*attempt, *delay);
            }
        });
    }

    /// Runs `op` until it succeeds or `max` attempts are made; every error
    /// is retried.
    ///
    /// # Errors
    /// The last attempt's error.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_if(op, |_| true).await
    }

    /// Like [`call`](Self::call), retrying only errors for which
    /// `retry_if` is true.
    ///
    /// # Errors
    /// The last attempt's error, or the first one `retry_if` refused.
    pub async fn call_if<T, E, F, Fut>(&self, op: F, retry_if: impl Fn(&E) -> bool) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_when(op, |r| match r {
            Err(e) if retry_if(e) => RetryDecision::Retry,
            _ => RetryDecision::Done,
        })
        .await
    }

    /// Runs `op`, deciding after each attempt from its result whether to try
    /// again: `Ok` values can ask for a retry too (Resilience4j's
    /// `retryOnResult`). When the attempts run out the last result is
    /// returned, `Ok` or not.
    ///
    /// ```
    /// use cortex::resilience::{Retry, RetryConfig, RetryDecision};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let retry = Retry::new("doc-poll", RetryConfig { max: 5, delay: Duration::from_millis(10), ..Default::default() })?;
    /// let polls = AtomicU32::new(0);
    /// // "Not ready yet" is an `Ok` that asks for another attempt.
    /// let r: Result<&str, ()> = retry
    ///     .call_when(
    ///         || async { Ok(if polls.fetch_add(1, Ordering::SeqCst) < 2 { "pending" } else { "ready" }) },
    ///         |r| if *r == Ok("pending") { RetryDecision::Retry } else { RetryDecision::Done },
    ///     )
    ///     .await;
    /// assert_eq!(r, Ok("ready"));
    /// assert_eq!(polls.load(Ordering::SeqCst), 3);
    /// # Ok::<(), cortex::resilience::ConfigError>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    /// The result the last attempt returned.
    pub async fn call_when<T, E, F, Fut>(
        &self,
        mut op: F,
        decide: impl Fn(&Result<T, E>) -> RetryDecision,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = self.begin();
        let first = op().await;
        let decision = decide(&first);
        if self.done_at_once(first.is_ok(), decision) {
            return first;
        }
        let mut run = Run::after_first(started);
        let mut next = run.next(self, first.is_ok(), decision);
        let mut result = first;
        while let Some(delay) = next {
            tokio::time::sleep(delay).await;
            result = op().await;
            next = run.next(self, result.is_ok(), decide(&result));
        }
        result
    }

    /// The synchronous form of [`call_if`](Self::call_if) (sleeps the thread
    /// between attempts).
    ///
    /// # Errors
    /// The last attempt's error, or the first one `retry_if` refused.
    pub fn call_sync_if<T, E>(
        &self,
        op: impl FnMut() -> Result<T, E>,
        retry_if: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        self.call_sync_when(op, |r| match r {
            Err(e) if retry_if(e) => RetryDecision::Retry,
            _ => RetryDecision::Done,
        })
    }

    /// The synchronous form of [`call_when`](Self::call_when).
    ///
    /// # Errors
    /// The result the last attempt returned.
    pub fn call_sync_when<T, E>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        decide: impl Fn(&Result<T, E>) -> RetryDecision,
    ) -> Result<T, E> {
        let started = self.begin();
        let first = op();
        let decision = decide(&first);
        if self.done_at_once(first.is_ok(), decision) {
            return first;
        }
        let mut run = Run::after_first(started);
        let mut next = run.next(self, first.is_ok(), decision);
        let mut result = first;
        while let Some(delay) = next {
            std::thread::sleep(delay);
            result = op();
            next = run.next(self, result.is_ok(), decide(&result));
        }
        result
    }

    /// A call starts: its budget deposit, and its start time under
    /// `max_elapsed`.
    #[inline]
    fn begin(&self) -> Option<Instant> {
        self.deposit();
        self.inner
            .has_deadline
            .load(Ordering::Relaxed)
            .then(Instant::now)
    }

    /// The first attempt succeeded and needs no retry: counted, and done.
    #[inline]
    fn done_at_once(&self, ok: bool, decision: RetryDecision) -> bool {
        let done = ok && decision == RetryDecision::Done;
        if done {
            self.inner.without_retry_ok.inc();
        }
        done
    }

    #[inline]
    fn deposit(&self) {
        let bits = self.inner.budget_ratio.load(Ordering::Relaxed);
        if bits == u64::MAX {
            return;
        }
        // A full budget (no failures lately) stays full: a plain read, no
        // read-modify-write on the call path.
        if self.inner.budget.load(Ordering::Relaxed) >= RESERVE {
            return;
        }
        let add = ((f64::from_bits(bits) * TOKEN as f64) as i64).max(1);
        let _ = self
            .inner
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((b + add).min(RESERVE))
            });
    }

    fn spend(&self) -> bool {
        self.inner
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= TOKEN).then_some(b - TOKEN)
            })
            .is_ok()
    }
}

fn ratio_bits(budget: Option<f64>) -> u64 {
    budget.map_or(u64::MAX, f64::to_bits)
}

/// One call's attempts. The configuration is read, and the clock, only
/// once a first attempt fails: a call that succeeds at once costs a budget
/// check and nothing else.
struct Run {
    attempt: u32,
    /// When the first attempt started; only kept under `max_elapsed`.
    started: Option<Instant>,
    previous: Duration,
}

impl Run {
    #[cold]
    fn after_first(started: Option<Instant>) -> Run {
        Run {
            attempt: 1,
            started,
            previous: Duration::ZERO,
        }
    }

    /// Records the attempt that ended; `Some(delay)` if another follows.
    #[inline]
    fn next(&mut self, retry: &Retry, ok: bool, decision: RetryDecision) -> Option<Duration> {
        let attempt = self.attempt;
        let inner = &retry.inner;
        if decision == RetryDecision::Done {
            if ok {
                if attempt == 1 {
                    inner.without_retry_ok.inc();
                } else {
                    inner.with_retry_ok.inc();
                    inner
                        .events
                        .emit(|| RetryEvent::Success { attempts: attempt });
                }
                return None;
            }
            return self.give_up(retry, "result not retryable");
        }
        self.retry_after(retry, decision)
    }

    #[cold]
    fn retry_after(&mut self, retry: &Retry, decision: RetryDecision) -> Option<Duration> {
        let config = retry.inner.config.load();
        if self.attempt == 1 {
            self.previous = config.delay;
        }
        let config = &config;
        if self.attempt >= config.max {
            return self.give_up(retry, "max attempts reached");
        }
        let mut delay = delay_for(config, self.attempt, self.previous);
        if let RetryDecision::RetryAfter(wait) = decision {
            // Worth waiting for only if the remaining attempts would have
            // waited as long anyway.
            let budget: Duration = (self.attempt..config.max)
                .map(|n| {
                    delay_for(
                        &RetryConfig {
                            jitter: 0.0,
                            ..*config
                        },
                        n,
                        config.delay,
                    )
                })
                .sum();
            if wait > budget {
                return self.give_up(
                    retry,
                    "the circuit breaker stays open longer than the retries would wait",
                );
            }
            delay = delay.max(wait);
        }
        if let (Some(limit), Some(started)) = (config.max_elapsed, self.started) {
            if started.elapsed() + delay > limit {
                return self.give_up(retry, "max_elapsed reached");
            }
        }
        if config.budget.is_some() && !retry.spend() {
            return self.give_up(retry, "retry budget spent");
        }
        retry.inner.attempts.inc();
        tracing::debug!(target: "cortex::resilience", retry = %retry.inner.name, attempt = self.attempt, ?delay, "retrying");
        let attempt = self.attempt;
        retry
            .inner
            .events
            .emit(|| RetryEvent::Retry { attempt, delay });
        retry.inner.ring.record("RETRY", || {
            format!("attempt {attempt} failed, next in {delay:?}")
        });
        self.attempt += 1;
        self.previous = delay;
        Some(delay)
    }

    #[cold]
    fn give_up(&self, retry: &Retry, reason: &'static str) -> Option<Duration> {
        let inner = &retry.inner;
        let attempts = self.attempt;
        if attempts == 1 {
            inner.without_retry_failed.inc();
        } else {
            inner.with_retry_failed.inc();
            tracing::warn!(target: "cortex::resilience", retry = %inner.name, attempts, reason, "retries exhausted");
        }
        inner.events.emit(|| RetryEvent::Error { attempts, reason });
        inner
            .ring
            .record("ERROR", || format!("{reason} after {attempts} attempts"));
        None
    }
}

/// The wait before retry number `retry`; `previous` is the wait before the
/// one before (for decorrelated jitter).
fn delay_for(config: &RetryConfig, retry: u32, previous: Duration) -> Duration {
    let (base, cap) = match config.backoff {
        Backoff::Fixed => (config.delay, config.delay),
        Backoff::Exponential {
            multiplier,
            max_delay,
        } => {
            let factor =
                multiplier.powi(i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX));
            let secs = (config.delay.as_secs_f64() * factor).min(max_delay.as_secs_f64());
            (Duration::from_secs_f64(secs), max_delay)
        }
    };
    match config.jitter_mode {
        JitterMode::Proportional if config.jitter == 0.0 => base,
        JitterMode::Proportional => {
            let spread = config.jitter * (2.0 * fastrand::f64() - 1.0);
            base.mul_f64((1.0 + spread).max(0.0))
        }
        JitterMode::Full => base.mul_f64(fastrand::f64()),
        JitterMode::Decorrelated => {
            let low = config.delay.as_secs_f64();
            let high = (previous.as_secs_f64() * 3.0).max(low);
            let pick = low + (high - low) * fastrand::f64();
            Duration::from_secs_f64(pick.min(cap.max(config.delay).as_secs_f64()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        let exp = RetryConfig {
            delay: Duration::from_millis(100),
            backoff: Backoff::Exponential {
                multiplier: 2.0,
                max_delay: Duration::from_millis(500),
            },
            ..Default::default()
        };
        let d: Vec<_> = (1..=5)
            .map(|r| delay_for(&exp, r, exp.delay).as_millis())
            .collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
        let jittered = RetryConfig { jitter: 0.5, ..exp };
        for _ in 0..200 {
            let ms = delay_for(&jittered, 1, exp.delay).as_millis();
            assert!((50..=150).contains(&ms), "{ms}");
        }
    }

    #[test]
    fn full_and_decorrelated_jitter_stay_in_their_ranges_and_vary() {
        let exp = RetryConfig {
            delay: Duration::from_millis(100),
            backoff: Backoff::Exponential {
                multiplier: 2.0,
                max_delay: Duration::from_millis(1000),
            },
            ..Default::default()
        };
        let full = RetryConfig {
            jitter_mode: JitterMode::Full,
            ..exp
        };
        let picks: Vec<u128> = (0..200)
            .map(|_| delay_for(&full, 3, exp.delay).as_millis())
            .collect();
        assert!(picks.iter().all(|&ms| ms <= 400));
        assert!(picks.iter().any(|&ms| ms < 100) && picks.iter().any(|&ms| ms > 300));
        let decorrelated = RetryConfig {
            jitter_mode: JitterMode::Decorrelated,
            ..exp
        };
        let prev = Duration::from_millis(200);
        let picks: Vec<u128> = (0..200)
            .map(|_| delay_for(&decorrelated, 2, prev).as_millis())
            .collect();
        assert!(
            picks.iter().all(|&ms| (100..=600).contains(&ms)),
            "{picks:?}"
        );
        assert!(picks.iter().any(|&ms| ms < 200) && picks.iter().any(|&ms| ms > 450));
    }
}
