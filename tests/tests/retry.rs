//! Retry: delays, backoff and jitter, decisions on results, budgets,
//! deadlines, metrics and hooks (time driven by a paused Tokio clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::resilience::{Backoff, Error, Retry, RetryConfig};

#[derive(Debug, PartialEq)]
enum AppError {
    Backend,
    NotFound,
    Policy(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Policy(e)
    }
}

#[tokio::test(start_paused = true)]
async fn retry_delays_are_exact_without_jitter() {
    let retry = Retry::new(
        "t-retry-delays",
        RetryConfig {
            max: 4,
            delay: Duration::from_millis(100),
            backoff: Backoff::Exponential {
                multiplier: 2.0,
                max_delay: Duration::from_millis(300),
            },
            ..Default::default()
        },
    )
    .unwrap();
    let started = tokio::time::Instant::now();
    let times = Mutex::new(Vec::new());
    let r: Result<(), &str> = retry
        .call(|| {
            times.lock().unwrap().push(started.elapsed().as_millis());
            async { Err("down") }
        })
        .await;
    assert_eq!(r, Err("down"));
    // Attempts at 0, then +100, +200, +300 (capped).
    assert_eq!(*times.lock().unwrap(), vec![0, 100, 300, 600]);
}

#[tokio::test(start_paused = true)]
async fn retry_predicate_and_metrics() {
    let retry = Retry::new(
        "t-retry-if",
        RetryConfig {
            max: 5,
            delay: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let calls = AtomicUsize::new(0);
    let r: Result<(), AppError> = retry
        .call_if(
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(AppError::NotFound) }
            },
            |e| *e == AppError::Backend,
        )
        .await;
    assert_eq!(r, Err(AppError::NotFound));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "NotFound is not retried");
    let n = AtomicUsize::new(0);
    let ok: Result<usize, AppError> = retry
        .call(|| {
            let k = n.fetch_add(1, Ordering::SeqCst);
            async move {
                if k < 2 {
                    Err(AppError::Backend)
                } else {
                    Ok(k)
                }
            }
        })
        .await;
    assert_eq!(ok, Ok(2));
    let text = global().encode(Format::PrometheusText);
    assert!(text
        .contains("cortex_retry_calls_total{name=\"t-retry-if\",kind=\"failed_without_retry\"} 1"));
    assert!(text.contains(
        "cortex_retry_calls_total{name=\"t-retry-if\",kind=\"successful_with_retry\"} 1"
    ));
    assert!(text.contains("cortex_retry_attempts_total{name=\"t-retry-if\"} 2"));
}

#[tokio::test(start_paused = true)]
async fn retry_budget_stops_a_retry_storm() {
    let retry = Retry::new(
        "t-retry-budget",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(1),
            budget: Some(0.1),
            ..Default::default()
        },
    )
    .unwrap();
    let attempts = AtomicUsize::new(0);
    for _ in 0..100 {
        let _: Result<(), &str> = retry
            .call(|| {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err("down") }
            })
            .await;
    }
    let retries = attempts.load(Ordering::SeqCst) - 100;
    // Without a budget: 200 retries. With 10 %: the reserve of 10 plus about
    // one per ten calls.
    assert!(retries <= 10 + 100 / 10 + 1, "{retries} retries");
    assert!(retries >= 10, "{retries} retries");
}

#[tokio::test(start_paused = true)]
async fn retry_jitter_stays_within_bounds() {
    let retry = Retry::new(
        "t-retry-jitter",
        RetryConfig {
            delay: Duration::from_millis(100),
            jitter: 0.25,
            ..Default::default()
        },
    )
    .unwrap();
    for _ in 0..500 {
        let d = retry.delay_for(1).as_millis();
        assert!((75..=125).contains(&d), "{d}");
    }
}
