//! The calls a policy attribute's layer makes. Each takes the policy's
//! instance, the code below it, and (for policies that reject) the
//! function's converter from a rejection to its return type, checked once
//! in the expansion, so a missing `From<resilience::Error>` is one error on
//! the function's error type.

use std::future::Future;

use crate::resilience::{
    Bulkhead, CallOutcome, CircuitBreaker, Error, RateLimiter, Retry, RetryDecision, Timeout,
};

/// `#[circuit_breaker]` on an async fn; `outcome` classifies the result
/// (see [`crate::resilience::classify`]); `describe` gives an error's
/// message, asked for a failure only (for the breaker's recent events).
pub async fn breaker<T, E, F, Fut>(
    breaker: &CircuitBreaker,
    f: F,
    outcome: impl Fn(&Result<T, E>) -> CallOutcome,
    describe: impl Fn(&Result<T, E>) -> Option<String>,
    reject: fn(Error) -> Result<T, E>,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let permit = match breaker.acquire() {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    let result = f().await;
    permit.record_with(outcome(&result), || describe(&result).unwrap_or_default());
    result
}

/// `#[circuit_breaker]` on a sync fn.
pub fn breaker_sync<T, E>(
    breaker: &CircuitBreaker,
    f: impl FnOnce() -> Result<T, E>,
    outcome: impl Fn(&Result<T, E>) -> CallOutcome,
    describe: impl Fn(&Result<T, E>) -> Option<String>,
    reject: fn(Error) -> Result<T, E>,
) -> Result<T, E> {
    let permit = match breaker.acquire() {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    let result = f();
    permit.record_with(outcome(&result), || describe(&result).unwrap_or_default());
    result
}

/// `#[retry]` on an async fn: `f` makes one attempt, `decide` judges it.
pub async fn retry<T, E, F, Fut>(
    retry: &Retry,
    f: F,
    decide: impl Fn(&Result<T, E>) -> RetryDecision,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    retry.call_when(f, decide).await
}

/// `#[retry]` on a sync fn.
pub fn retry_sync<T, E>(
    retry: &Retry,
    f: impl FnMut() -> Result<T, E>,
    decide: impl Fn(&Result<T, E>) -> RetryDecision,
) -> Result<T, E> {
    retry.call_sync_when(f, decide)
}

/// `#[bulkhead]` on an async fn.
pub async fn bulkhead<T, E, F, Fut>(
    bulkhead: &Bulkhead,
    f: F,
    reject: fn(Error) -> Result<T, E>,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let _permit = match bulkhead.acquire().await {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    f().await
}

/// `#[bulkhead]` on a sync fn.
pub fn bulkhead_sync<T, E>(
    bulkhead: &Bulkhead,
    f: impl FnOnce() -> Result<T, E>,
    reject: fn(Error) -> Result<T, E>,
) -> Result<T, E> {
    let _permit = match bulkhead.acquire_blocking() {
        Ok(p) => p,
        Err(e) => return reject(e),
    };
    f()
}

/// `#[timeout]`.
pub async fn timeout<T, E, Fut>(
    timeout: &Timeout,
    fut: Fut,
    reject: fn(Error) -> Result<T, E>,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    match timeout.run(fut).await {
        Ok(result) => result,
        Err(e) => reject(e),
    }
}

/// `#[rate_limit]`.
pub async fn rate_limit<T, E, F, Fut>(
    limiter: &RateLimiter,
    f: F,
    reject: fn(Error) -> Result<T, E>,
) -> Result<T, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    if let Err(e) = limiter.acquire().await {
        return reject(e);
    }
    f().await
}
