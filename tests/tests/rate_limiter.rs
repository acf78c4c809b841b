//! Rate limiter: permits per period, waits within `max_wait`.

use std::time::Duration;

use cortex::resilience::{Error, RateLimiter, RateLimiterConfig};

#[tokio::test(start_paused = true)]
async fn rate_limiter_grants_permits_per_period_and_waits_within_max_wait() {
    let limiter = RateLimiter::new(
        "t-rate",
        RateLimiterConfig {
            permits: 3,
            period: Duration::from_secs(1),
            max_wait: Duration::from_secs(2),
        },
    )
    .unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        limiter.acquire().await.unwrap();
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    limiter.acquire().await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "the 4th waits for the next period"
    );
    let strict = RateLimiter::new(
        "t-rate-strict",
        RateLimiterConfig {
            permits: 1,
            period: Duration::from_secs(10),
            max_wait: Duration::from_secs(1),
        },
    )
    .unwrap();
    strict.acquire().await.unwrap();
    assert!(matches!(
        strict.acquire().await,
        Err(Error::RateLimited { .. })
    ));
}
