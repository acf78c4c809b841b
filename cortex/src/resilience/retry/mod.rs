//! Retry: re-run a failed call, with fixed or exponential backoff, jitter, a
//! predicate on the error, and an optional retry budget.
//!
//! The budget keeps a failing backend from getting a retry storm: each call
//! deposits `budget` tokens and each retry spends one, so retries stay below
//! that share of calls (after a reserve of 10 retries, which is also the
//! most a quiet period can save up).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Backoff, ConfigError, RetryConfig};
use crate::metrics::{Counter, Registry};
use crate::util::Versioned;

const TOKEN: i64 = 1000;
const RESERVE: i64 = 10 * TOKEN;

struct Inner {
    name: Arc<str>,
    config: Versioned<RetryConfig>,
    budget: AtomicI64,
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
            .field("config", self.inner.config.get())
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
                config: Versioned::new(config),
                budget: AtomicI64::new(RESERVE),
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
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current configuration.
    pub fn config(&self) -> RetryConfig {
        *self.inner.config.get()
    }

    /// Replaces the configuration (checked by the same rules as the
    /// attribute).
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: RetryConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.inner.config.set(config);
        tracing::info!(target: "cortex::resilience", retry = %self.inner.name, ?config, "retry reconfigured");
        Ok(())
    }

    /// The delay before retry number `retry` (1 for the first retry), with
    /// jitter applied.
    pub fn delay_for(&self, retry: u32) -> Duration {
        delay_for(self.inner.config.get(), retry)
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
    pub async fn call_if<T, E, F, Fut>(
        &self,
        mut op: F,
        retry_if: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.deposit();
        let mut attempt = 1u32;
        loop {
            let result = op().await;
            match self.next_delay(&result, attempt, &retry_if) {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                None => return result,
            }
        }
    }

    /// The synchronous form of [`call_if`](Self::call_if) (sleeps the thread
    /// between attempts).
    ///
    /// # Errors
    /// The last attempt's error, or the first one `retry_if` refused.
    pub fn call_sync_if<T, E>(
        &self,
        mut op: impl FnMut() -> Result<T, E>,
        retry_if: impl Fn(&E) -> bool,
    ) -> Result<T, E> {
        self.deposit();
        let mut attempt = 1u32;
        loop {
            let result = op();
            match self.next_delay(&result, attempt, &retry_if) {
                Some(delay) => {
                    std::thread::sleep(delay);
                    attempt += 1;
                }
                None => return result,
            }
        }
    }

    #[inline]
    fn deposit(&self) {
        let config = self.inner.config.get();
        if let Some(ratio) = config.budget {
            // A full budget (no failures lately) stays full: a plain read,
            // no read-modify-write on the call path.
            if self.inner.budget.load(Ordering::Relaxed) >= RESERVE {
                return;
            }
            let add = (ratio * TOKEN as f64) as i64;
            let _ = self
                .inner
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some((b + add).min(RESERVE))
                });
        }
    }

    /// Records the attempt's outcome; `Some(delay)` if another attempt
    /// should follow.
    #[inline]
    fn next_delay<T, E>(
        &self,
        result: &Result<T, E>,
        attempt: u32,
        retry_if: &impl Fn(&E) -> bool,
    ) -> Option<Duration> {
        let Err(error) = result else {
            if attempt == 1 {
                self.inner.without_retry_ok.inc();
            } else {
                self.inner.with_retry_ok.inc();
            }
            return None;
        };
        let config = self.inner.config.get();
        let give_up = |reason: &str| {
            if attempt == 1 {
                self.inner.without_retry_failed.inc();
            } else {
                self.inner.with_retry_failed.inc();
                tracing::warn!(target: "cortex::resilience", retry = %self.inner.name, attempts = attempt, reason, "retries exhausted");
            }
            None
        };
        if !retry_if(error) {
            return give_up("error not retryable");
        }
        if attempt >= config.max {
            return give_up("max attempts reached");
        }
        if config.budget.is_some() {
            let spent = self
                .inner
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    (b >= TOKEN).then_some(b - TOKEN)
                });
            if spent.is_err() {
                return give_up("retry budget spent");
            }
        }
        self.inner.attempts.inc();
        let delay = delay_for(config, attempt);
        tracing::debug!(target: "cortex::resilience", retry = %self.inner.name, attempt, ?delay, "retrying");
        Some(delay)
    }
}

fn delay_for(config: &RetryConfig, retry: u32) -> Duration {
    let base = match config.backoff {
        Backoff::Fixed => config.delay,
        Backoff::Exponential {
            multiplier,
            max_delay,
        } => {
            let factor =
                multiplier.powi(i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX));
            let secs = (config.delay.as_secs_f64() * factor).min(max_delay.as_secs_f64());
            Duration::from_secs_f64(secs)
        }
    };
    if config.jitter == 0.0 {
        return base;
    }
    let spread = config.jitter * (2.0 * fastrand::f64() - 1.0);
    base.mul_f64((1.0 + spread).max(0.0))
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
        let d: Vec<_> = (1..=5).map(|r| delay_for(&exp, r).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
        let jittered = RetryConfig { jitter: 0.5, ..exp };
        for _ in 0..200 {
            let ms = delay_for(&jittered, 1).as_millis();
            assert!((50..=150).contains(&ms), "{ms}");
        }
    }
}
