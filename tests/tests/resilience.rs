//! Resilience policies: the circuit breaker's state machine (time driven by
//! a paused Tokio clock), its windows, slow calls, half-open permits,
//! listeners, runtime control, metrics and health.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::resilience::{
    circuit_breaker, CircuitBreaker, CircuitBreakerConfig, Error, State, Window,
};

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

fn config(window: u32, minimum: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        failure_rate: 50,
        minimum_calls: minimum,
        window: Window::Count(window),
        open_for: Duration::from_secs(30),
        half_open_calls: 3,
        ..Default::default()
    }
}

async fn fail(b: &CircuitBreaker) -> Result<(), AppError> {
    b.call(|| async { Err(AppError::Backend) }).await
}

async fn succeed(b: &CircuitBreaker) -> Result<(), AppError> {
    b.call(|| async { Ok(()) }).await
}

#[tokio::test(start_paused = true)]
async fn opens_at_the_failure_rate_once_minimum_calls_are_in() {
    let b = CircuitBreaker::new("t-opens", config(10, 4)).unwrap();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(
        b.state(),
        State::Closed,
        "3 calls are below minimum_calls = 4"
    );
    succeed(&b).await.unwrap();
    // 3 failures of 4 calls = 75 % >= 50 %: the 4th call was a success, so
    // the verdict comes with the next failure.
    assert_eq!(b.state(), State::Closed);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Open);
    match succeed(&b).await {
        Err(AppError::Policy(Error::CircuitOpen { name, retry_after })) => {
            assert_eq!(&*name, "t-opens");
            assert_eq!(retry_after, Duration::from_secs(30));
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
    let stats = b.stats();
    assert_eq!(stats.not_permitted, 1);
    assert_eq!(stats.failure_rate, Some(80.0));
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_exactly_n_trial_calls_through_then_closes() {
    let b = CircuitBreaker::new("t-half-open", config(4, 4)).unwrap();
    for _ in 0..4 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), State::Open);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(
        matches!(b.acquire(), Err(Error::CircuitOpen { retry_after, .. }) if retry_after == Duration::from_secs(1))
    );
    tokio::time::advance(Duration::from_secs(1)).await;

    // 20 concurrent callers while the trial calls run: exactly 3 get through.
    let gate = Arc::new(tokio::sync::Notify::new());
    let admitted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let b = b.clone();
        let gate = Arc::clone(&gate);
        let admitted = Arc::clone(&admitted);
        tasks.push(tokio::spawn(async move {
            b.call(|| async move {
                admitted.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                Ok::<(), AppError>(())
            })
            .await
        }));
    }
    tokio::task::yield_now().await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(admitted.load(Ordering::SeqCst), 3);
    gate.notify_waiters();
    let mut rejected = 0;
    for t in tasks {
        if let Err(AppError::Policy(Error::CircuitOpen { .. })) = t.await.unwrap() {
            rejected += 1;
        }
    }
    assert_eq!(rejected, 17);
    assert_eq!(b.state(), State::Closed, "all trial calls succeeded");
    assert_eq!(b.stats().calls_in_window, 0, "closing empties the window");
}

#[tokio::test(start_paused = true)]
async fn failing_trial_calls_open_it_again() {
    let b = CircuitBreaker::new("t-reopen", config(2, 2)).unwrap();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(30)).await;
    succeed(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    // 2 of 3 trials failed: 67 % >= 50 %.
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_old_failures() {
    let b = CircuitBreaker::new(
        "t-time-window",
        CircuitBreakerConfig {
            window: Window::Time(Duration::from_secs(10)),
            minimum_calls: 3,
            ..config(10, 3)
        },
    )
    .unwrap();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(11)).await;
    succeed(&b).await.unwrap();
    succeed(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    // The two early failures left the window: 1 of 3 = 33 % < 50 %.
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.stats().calls_in_window, 3);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Open, "2 of 4 = 50 %");
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_it() {
    let b = CircuitBreaker::new(
        "t-slow",
        CircuitBreakerConfig {
            slow_call_threshold: Some(Duration::from_millis(100)),
            slow_call_rate: 60,
            ..config(3, 3)
        },
    )
    .unwrap();
    for _ in 0..3 {
        b.call(|| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Ok::<(), AppError>(())
        })
        .await
        .unwrap();
    }
    assert_eq!(b.state(), State::Open, "3 slow successes of 3");
}

#[tokio::test(start_paused = true)]
async fn record_if_decides_which_errors_count() {
    let b = CircuitBreaker::new("t-record-if", config(2, 2)).unwrap();
    for _ in 0..5 {
        let r: Result<(), AppError> = b
            .call_with(
                || async { Err(AppError::NotFound) },
                |e| *e == AppError::Backend,
            )
            .await;
        assert_eq!(r, Err(AppError::NotFound));
    }
    assert_eq!(
        b.state(),
        State::Closed,
        "NotFound is not a backend failure"
    );
}

#[tokio::test(start_paused = true)]
async fn listeners_control_and_reconfigure() {
    let b = CircuitBreaker::new("t-control", config(2, 2)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    b.on_state_change(move |c| s.lock().unwrap().push((c.from, c.to)));
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    b.force_open();
    b.disable();
    for _ in 0..5 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(
        b.state(),
        State::Disabled,
        "a disabled breaker judges nothing"
    );
    b.reset();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::ForcedOpen),
            (State::ForcedOpen, State::Disabled),
            (State::Disabled, State::Closed),
        ]
    );

    // Through the registry, by name.
    let handle = circuit_breaker("t-control").unwrap();
    let bad = CircuitBreakerConfig {
        failure_rate: 0,
        ..config(2, 2)
    };
    let err = handle.reconfigure(bad).unwrap_err();
    assert_eq!(err.key, "failure_rate");
    assert_eq!(
        handle.config().failure_rate,
        50,
        "a rejected config changes nothing"
    );
    handle
        .reconfigure(CircuitBreakerConfig {
            failure_rate: 100,
            ..config(2, 2)
        })
        .unwrap();
    fail(&b).await.unwrap_err();
    succeed(&b).await.unwrap();
    assert_eq!(b.state(), State::Closed, "50 % < the new 100 %");
    // Same name, other config: refused.
    assert_eq!(
        CircuitBreaker::new("t-control", config(5, 5))
            .unwrap_err()
            .key,
        "name"
    );
}

#[tokio::test(start_paused = true)]
async fn metrics_and_health_follow_the_state() {
    let b = CircuitBreaker::new("t-observed", config(2, 2)).unwrap();
    succeed(&b).await.unwrap();
    fail(&b).await.unwrap_err();
    let text = global().encode(Format::PrometheusText);
    for line in [
        "cortex_circuit_breaker_state{name=\"t-observed\",state=\"open\"} 1",
        "cortex_circuit_breaker_state{name=\"t-observed\",state=\"closed\"} 0",
        "cortex_circuit_breaker_calls_total{name=\"t-observed\",kind=\"successful\"} 1",
        "cortex_circuit_breaker_calls_total{name=\"t-observed\",kind=\"failed\"} 1",
        "cortex_circuit_breaker_failure_rate{name=\"t-observed\"} 50",
    ] {
        assert!(text.contains(line), "missing {line}");
    }
    let report = cortex::health::global().check(None).await;
    let component = report.component("circuit_breaker.t-observed").unwrap();
    assert_eq!(
        component.health().status(),
        cortex::health::Status::Degraded
    );
    assert_eq!(component.health().details()["state"], "open");
    assert_eq!(component.health().details()["failure_rate_threshold"], 50);
}

// ---- retry ----

use cortex::resilience::{
    Backoff, Bulkhead, BulkheadConfig, Pipeline, RateLimiter, RateLimiterConfig, Retry,
    RetryConfig, Timeout,
};

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

// ---- bulkhead ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulkhead_never_exceeds_its_limit_under_100_callers() {
    let bulkhead = Bulkhead::new(
        "t-bulkhead",
        BulkheadConfig {
            max_concurrent: 5,
            max_wait: Duration::from_secs(30),
        },
    )
    .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (b, running, peak) = (bulkhead.clone(), Arc::clone(&running), Arc::clone(&peak));
        let work = move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
        };
        if i % 2 == 0 {
            tasks.push(tokio::spawn(async move {
                b.call(|| async move {
                    work();
                    Ok::<(), Error>(())
                })
                .await
            }));
        } else {
            tasks.push(tokio::task::spawn_blocking(move || {
                b.call_sync(|| {
                    work();
                    Ok::<(), Error>(())
                })
            }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert!(
        peak.load(Ordering::SeqCst) <= 5,
        "peak {}",
        peak.load(Ordering::SeqCst)
    );
    assert_eq!(bulkhead.in_use(), 0);
}

#[tokio::test]
async fn a_full_bulkhead_rejects_at_once_without_a_wait() {
    let bulkhead = Bulkhead::new(
        "t-bulkhead-reject",
        BulkheadConfig {
            max_concurrent: 1,
            max_wait: Duration::ZERO,
        },
    )
    .unwrap();
    let _held = bulkhead.acquire().await.unwrap();
    let err = bulkhead.acquire().await.unwrap_err();
    assert_eq!(err.to_string(), "bulkhead `t-bulkhead-reject` is full");
    let text = global().encode(Format::PrometheusText);
    assert!(text.contains("cortex_bulkhead_rejected_total{name=\"t-bulkhead-reject\"} 1"));
    assert!(
        text.contains("cortex_bulkhead_available_concurrent_calls{name=\"t-bulkhead-reject\"} 0")
    );
    assert!(
        text.contains("cortex_bulkhead_max_allowed_concurrent_calls{name=\"t-bulkhead-reject\"} 1")
    );
}

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

// ---- rate limiter ----

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
