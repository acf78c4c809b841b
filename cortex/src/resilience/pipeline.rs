//! Stacking policies in one documented order.

use std::future::Future;

use super::{Bulkhead, CircuitBreaker, Error, RateLimiter, Retry, Timeout};

/// Policies applied together, always in this order (outermost first), the
/// same as Resilience4j's:
///
/// `Retry ( CircuitBreaker ( RateLimiter ( Timeout ( Bulkhead ( call ) ) ) ) )`
///
/// so a retry re-runs everything inside it, the breaker judges every
/// attempt, and the timeout bounds one attempt including its wait for a
/// bulkhead place. Any policy may be left out.
///
/// ```
/// use cortex::resilience::{Bulkhead, BulkheadConfig, Error, Pipeline, Retry, RetryConfig, Timeout};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let pipeline = Pipeline::new()
///     .retry(Retry::new("doc-stack", RetryConfig { max: 2, delay: Duration::from_millis(1), ..Default::default() })?)
///     .timeout(Timeout::new("doc-stack", Duration::from_secs(1))?)
///     .bulkhead(Bulkhead::new("doc-stack", BulkheadConfig::default())?);
/// let answer: Result<u32, Error> = pipeline.call(|| async { Ok(42) }).await;
/// assert_eq!(answer, Ok(42));
/// # Ok::<(), cortex::resilience::ConfigError>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    retry: Option<Retry>,
    breaker: Option<CircuitBreaker>,
    rate_limiter: Option<RateLimiter>,
    timeout: Option<Timeout>,
    bulkhead: Option<Bulkhead>,
}

impl Pipeline {
    /// No policies yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the retry.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Adds the circuit breaker.
    pub fn circuit_breaker(mut self, breaker: CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Adds the rate limiter.
    pub fn rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.rate_limiter = Some(limiter);
        self
    }

    /// Adds the timeout.
    pub fn timeout(mut self, timeout: Timeout) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds the bulkhead.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Runs `op` through every policy; every error is retried and counts as
    /// a breaker failure.
    ///
    /// # Errors
    /// `op`'s error, or a policy's [`Error`] converted into `E`.
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        match &self.retry {
            Some(retry) => retry.call(|| self.attempt(&op)).await,
            None => self.attempt(&op).await,
        }
    }

    async fn attempt<T, E, F, Fut>(&self, op: &F) -> Result<T, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let permit = match &self.breaker {
            Some(b) => Some(b.acquire()?),
            None => None,
        };
        if let Some(limiter) = &self.rate_limiter {
            limiter.acquire().await?;
        }
        let inner = async {
            let _place = match &self.bulkhead {
                Some(b) => Some(b.acquire().await?),
                None => None,
            };
            op().await
        };
        let result = match &self.timeout {
            Some(t) => t.call(inner).await,
            None => inner.await,
        };
        if let Some(permit) = permit {
            if result.is_ok() {
                permit.success();
            } else {
                permit.failure();
            }
        }
        result
    }
}
