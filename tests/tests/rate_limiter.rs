//! Rate limiter: permits per period, waits within `max_wait`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::resilience::{Error, RateLimiter, RateLimiterConfig, RateLimiterEvent};

fn limiter(name: &str, permits: u32, period_ms: u64, max_wait_ms: u64) -> RateLimiter {
    RateLimiter::new(
        name,
        RateLimiterConfig {
            permits,
            period: Duration::from_millis(period_ms),
            max_wait: Duration::from_millis(max_wait_ms),
        },
    )
    .unwrap()
}

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
    // Its permit would come in 10 s, past the 1 s wait: refused at once,
    // not after waiting.
    let asked = tokio::time::Instant::now();
    assert!(matches!(
        strict.acquire().await,
        Err(Error::RateLimited { .. })
    ));
    assert_eq!(asked.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn waiters_reserve_later_periods_instead_of_racing() {
    let l = limiter("t-rate-reserve", 2, 1000, 5000);
    let started = tokio::time::Instant::now();
    // Seven callers at once: two per period, each told its period when it
    // asks.
    let mut tasks = Vec::new();
    for _ in 0..7 {
        let l = l.clone();
        tasks.push(tokio::spawn(async move {
            l.acquire().await.unwrap();
            tokio::time::Instant::now()
        }));
    }
    tokio::task::yield_now().await;
    assert_eq!(l.waiting(), 5);
    let mut at: Vec<u64> = Vec::new();
    for t in tasks {
        at.push((t.await.unwrap() - started).as_secs());
    }
    at.sort();
    assert_eq!(at, [0, 0, 1, 1, 2, 2, 3]);
    assert_eq!(l.waiting(), 0);
}

#[tokio::test(start_paused = true)]
async fn weighted_permits_and_try_acquire() {
    let l = limiter("t-rate-weighted", 10, 1000, 3000);
    let started = tokio::time::Instant::now();
    l.acquire_n(7).await.unwrap();
    assert_eq!(l.available_permits(), 3);
    assert!(l.try_acquire(4).is_err(), "only 3 left now");
    l.try_acquire(3).unwrap();
    // 25 permits: the rest of this period is used up, so they come from the
    // next three periods.
    l.acquire_n(25).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    // More than max_wait would allow: refused, nothing taken.
    assert!(l.acquire_n(100).await.is_err());
    assert_eq!(l.available_permits(), 5);
}

#[tokio::test(start_paused = true)]
async fn unused_permits_are_not_saved_up() {
    let l = limiter("t-rate-idle", 3, 1000, 0);
    tokio::time::advance(Duration::from_secs(60)).await;
    for _ in 0..3 {
        l.acquire().await.unwrap();
    }
    assert!(l.acquire().await.is_err(), "an idle minute gives no burst");
}

#[tokio::test(start_paused = true)]
async fn events_name_the_period_and_reconfigure_keeps_the_period_used() {
    let l = limiter("t-rate-events", 2, 1000, 2000);
    let periods = Arc::new(Mutex::new(Vec::new()));
    let p = Arc::clone(&periods);
    l.on_event(move |e| {
        if let RateLimiterEvent::Acquired { period, .. } = e {
            p.lock().unwrap().push(*period);
        }
    });
    for _ in 0..4 {
        l.acquire().await.unwrap();
    }
    assert_eq!(*periods.lock().unwrap(), [0, 0, 1, 1]);
    // Period 1 has used its two; a larger limit keeps those two counted.
    l.reconfigure(RateLimiterConfig {
        permits: 5,
        period: Duration::from_secs(1),
        max_wait: Duration::ZERO,
    })
    .unwrap();
    assert_eq!(l.available_permits(), 3);
}
