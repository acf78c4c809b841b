//! Retry: delays, backoff and jitter, decisions on results, budgets,
//! deadlines, metrics and hooks (time driven by a paused Tokio clock).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::resilience::{Backoff, Error, Retry, RetryConfig};
use cortex_tests::policy::AppError;

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
    // Without a budget: 200 retries. With 10 %: the reserve of 10 (two per
    // call for the first five calls, each call adding a tenth of a retry
    // from the second on), then one retry per ten calls: calls 11, 21, ...,
    // 91.
    assert_eq!(retries, 10 + 9);
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
    let delays: Vec<u128> = (0..500).map(|_| retry.delay_for(1).as_millis()).collect();
    assert!(delays.iter().all(|d| (75..=125).contains(d)), "{delays:?}");
    // And it does spread them: a jitter that did nothing would fail here.
    assert!(delays.iter().any(|&d| d < 90) && delays.iter().any(|&d| d > 110));
}

#[tokio::test(start_paused = true)]
async fn a_tiny_budget_still_refills() {
    let retry = Retry::new(
        "t-retry-tiny-budget",
        RetryConfig {
            max: 2,
            delay: Duration::from_millis(1),
            budget: Some(0.0001),
            ..Default::default()
        },
    )
    .unwrap();
    let attempts = AtomicUsize::new(0);
    // The reserve of 10 retries, then one per 10,000 calls.
    for _ in 0..20_011 {
        let _: Result<(), &str> = retry
            .call(|| {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err("down") }
            })
            .await;
    }
    assert_eq!(attempts.load(Ordering::SeqCst) - 20_011, 10 + 2);
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_retrying() {
    let retry = Retry::new(
        "t-retry-deadline",
        RetryConfig {
            max: 100,
            delay: Duration::from_millis(100),
            max_elapsed: Some(Duration::from_millis(350)),
            ..Default::default()
        },
    )
    .unwrap();
    let attempts = AtomicUsize::new(0);
    let started = tokio::time::Instant::now();
    let _: Result<(), &str> = retry
        .call(|| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err("down") }
        })
        .await;
    // Attempts at 0, 100, 200 and 300 ms; the next would start at 400.
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_is_retried_only_when_its_wait_fits() {
    let retry = Retry::new(
        "t-retry-after",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
    let open = |after: Duration| Error::CircuitOpen {
        name: "b".into(),
        retry_after: after,
    };
    let decide = |r: &Result<(), Error>| match r {
        Err(e) => cortex::resilience::RetryDecision::for_rejection(e),
        Ok(_) => cortex::resilience::RetryDecision::Done,
    };
    // Open for 150 ms: the two remaining retries would wait 200 ms, so it
    // waits the 150; the second attempt finds 50 ms left: the usual 100.
    let attempts = AtomicUsize::new(0);
    let started = tokio::time::Instant::now();
    let _ = retry
        .call_when(
            || {
                let n = attempts.fetch_add(1, Ordering::SeqCst);
                let left = if n == 0 { 150 } else { 50 };
                async move { Err(open(Duration::from_millis(left))) }
            },
            decide,
        )
        .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    // Open for a minute: not worth it.
    let attempts = AtomicUsize::new(0);
    let _ = retry
        .call_when(
            || {
                attempts.fetch_add(1, Ordering::SeqCst);
                async { Err(open(Duration::from_secs(60))) }
            },
            decide,
        )
        .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    // A full bulkhead or an exhausted rate limiter: never.
    for e in [
        Error::BulkheadFull { name: "b".into() },
        Error::RateLimited { name: "r".into() },
    ] {
        assert_eq!(
            cortex::resilience::RetryDecision::for_rejection(&e),
            cortex::resilience::RetryDecision::Done
        );
    }
}

#[tokio::test(start_paused = true)]
async fn hooks_see_retries_and_the_outcome() {
    let retry = Retry::new(
        "t-retry-hooks",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(5),
            ..Default::default()
        },
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    retry.on_retry(move |attempt, delay| s.lock().unwrap().push((attempt, delay)));
    let outcome = Arc::new(Mutex::new(None));
    let o = Arc::clone(&outcome);
    retry.on_event(move |e| {
        if let cortex::resilience::RetryEvent::Error { attempts, reason } = e {
            *o.lock().unwrap() = Some((*attempts, *reason));
        }
    });
    let _: Result<(), &str> = retry.call(|| async { Err("down") }).await;
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, Duration::from_millis(5)), (2, Duration::from_millis(5))]
    );
    assert_eq!(*outcome.lock().unwrap(), Some((3, "max attempts reached")));
}

#[test]
fn proportional_jitter_is_applied_after_the_max_delay_cap() {
    use cortex::resilience::JitterMode;
    let config = |jitter_mode| RetryConfig {
        max: 20,
        delay: Duration::from_millis(10),
        backoff: Backoff::Exponential {
            multiplier: 2.0,
            max_delay: Duration::from_millis(100),
        },
        jitter: 0.5,
        jitter_mode,
        ..Default::default()
    };
    let proportional = Retry::new("jitter-after-cap", config(JitterMode::Proportional)).unwrap();
    let delays: Vec<Duration> = (0..500).map(|_| proportional.delay_for(10)).collect();
    assert!(
        delays.iter().all(|d| *d <= Duration::from_millis(150)),
        "within cap + jitter"
    );
    assert!(
        delays.iter().any(|d| *d > Duration::from_millis(100)),
        "some above the cap, as documented"
    );
    let full = Retry::new("jitter-full-in-cap", config(JitterMode::Full)).unwrap();
    assert!((0..500).all(|_| full.delay_for(10) <= Duration::from_millis(100)));
}
