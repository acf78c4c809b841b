//! Resilience policies together: the timeout, pipelines of policies, and
//! configurations refused with the offending key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cortex::resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, Error, Pipeline, RateLimiter, RateLimiterConfig,
    Retry, RetryConfig, Timeout,
};
use cortex_tests::policy::{config, AppError};

// ---- timeout ----

struct DropGuard(Arc<AtomicUsize>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_drops_the_inner_future() {
    let timeout = Timeout::new("t-timeout", Duration::from_millis(50)).unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let guard = DropGuard(Arc::clone(&dropped));
    let r: Result<(), Error> = timeout
        .call(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await;
    assert_eq!(
        r,
        Err(Error::timeout("t-timeout", Duration::from_millis(50)))
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the inner future was dropped"
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "`t-timeout` timed out after 50ms"
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_hooks_see_how_calls_ended() {
    let t = Timeout::new("t-timeout-hooks", Duration::from_millis(50)).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    t.on_event(move |e| s.lock().unwrap().push(*e));
    let _: Result<(), Error> = t.call(async { Ok(()) }).await;
    let _: Result<(), Error> = t
        .call(async { Err(Error::timeout("x", Duration::ZERO)) })
        .await;
    let _: Result<(), Error> = t
        .call(async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    use cortex::resilience::TimeoutEvent;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            TimeoutEvent::Success,
            TimeoutEvent::Error,
            TimeoutEvent::TimedOut
        ]
    );
}

// ---- composition ----

#[tokio::test(start_paused = true)]
async fn pipeline_order_is_observable() {
    // Retry outside the breaker: each attempt is a breaker call.
    let breaker = CircuitBreaker::new("t-pipeline", config(10, 10)).unwrap();
    let pipeline = Pipeline::new()
        .retry(
            Retry::new(
                "t-pipeline",
                RetryConfig {
                    max: 3,
                    delay: Duration::from_millis(1),
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .circuit_breaker(breaker.clone())
        .timeout(Timeout::new("t-pipeline", Duration::from_millis(100)).unwrap());
    let r: Result<(), AppError> = pipeline
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
    // The timeout bounds each attempt; three attempts, three breaker failures.
    assert_eq!(
        r,
        Err(AppError::Policy(Error::timeout(
            "t-pipeline",
            Duration::from_millis(100)
        )))
    );
    assert_eq!(breaker.stats().failed_in_window, 3);
}

#[tokio::test]
async fn bad_configs_are_refused_with_the_key() {
    let err = Retry::new(
        "t-bad",
        RetryConfig {
            max: 0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`max`: must be at least 1 (it counts the first attempt)"
    );
    assert_eq!(
        Bulkhead::new(
            "t-bad",
            BulkheadConfig {
                max_concurrent: 0,
                ..Default::default()
            }
        )
        .unwrap_err()
        .key,
        "max_concurrent"
    );
    assert_eq!(
        Timeout::new("t-bad", Duration::ZERO).unwrap_err().key,
        "timeout"
    );
    assert_eq!(
        RateLimiter::new(
            "t-bad",
            RateLimiterConfig {
                permits: 0,
                ..Default::default()
            }
        )
        .unwrap_err()
        .key,
        "permits"
    );
}
