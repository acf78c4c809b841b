//! The circuit breaker: its state machine (time driven by a paused Tokio
//! clock), windows, outcome classification, slow calls, half-open
//! permits, listeners and hooks, runtime control, metrics and health.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::resilience::{
    circuit_breaker, CircuitBreaker, CircuitBreakerConfig, Error, State, Window,
};
use cortex_tests::policy::{config, AppError};

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
    // 3 failures of 4 calls = 75 % >= 50 %: judged on every recorded call,
    // the success that makes the fourth call opens it (Resilience4j).
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
    assert_eq!(stats.failure_rate, Some(75.0));
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
    // The two early failures left the window: 0 of 2.
    assert_eq!(b.stats().calls_in_window, 2);
    fail(&b).await.unwrap_err();
    // 1 of 3 = 33 % < 50 %.
    assert_eq!(b.state(), State::Closed);
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Open, "2 of 4 = 50 %");
}

#[tokio::test(start_paused = true)]
async fn a_rate_that_rises_as_successes_age_out_opens_it() {
    let b = CircuitBreaker::new(
        "t-aging",
        CircuitBreakerConfig {
            window: Window::Time(Duration::from_secs(10)),
            minimum_calls: 3,
            failure_rate: 60,
            ..config(10, 3)
        },
    )
    .unwrap();
    succeed(&b).await.unwrap();
    succeed(&b).await.unwrap();
    tokio::time::advance(Duration::from_secs(5)).await;
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(b.state(), State::Closed, "2 of 4 = 50 % < 60 %");
    // The two successes leave the window; the next call, a success too,
    // finds 2 failures of 3 = 67 %.
    tokio::time::advance(Duration::from_secs(6)).await;
    succeed(&b).await.unwrap();
    assert_eq!(b.state(), State::Open);
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
async fn errors_outside_record_if_count_as_successes() {
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
    // They count, as successes (Resilience4j), not as nothing.
    let stats = b.stats();
    assert_eq!((stats.calls_in_window, stats.failed_in_window), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn ignore_if_and_record_result_classify_outcomes() {
    let b = CircuitBreaker::new("t-classify", config(4, 4)).unwrap();
    let classify = |r: &Result<u32, AppError>| {
        cortex::resilience::classify(
            r,
            |e| *e == AppError::Backend,
            |e| *e == AppError::NotFound,
            |v| *v == 0,
        )
    };
    // Ignored errors count as nothing.
    for _ in 0..10 {
        let r = b
            .call_classified(|| async { Err(AppError::NotFound) }, classify)
            .await;
        assert_eq!(r, Err(AppError::NotFound));
    }
    assert_eq!(b.stats().calls_in_window, 0);
    // An `Ok(0)` is a failure: with two real failures, 3 of 4 = 75 %.
    b.call_classified(|| async { Ok(0) }, classify)
        .await
        .unwrap();
    b.call_classified(|| async { Ok(7) }, classify)
        .await
        .unwrap();
    b.call_classified(|| async { Err(AppError::Backend) }, classify)
        .await
        .unwrap_err();
    assert_eq!(b.state(), State::Closed);
    b.call_classified(|| async { Err(AppError::Backend) }, classify)
        .await
        .unwrap_err();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.stats().failed_in_window, 3);
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
    // Same name, other config: refused; the config it has now: the same
    // instance.
    assert_eq!(
        CircuitBreaker::new("t-control", config(5, 5))
            .unwrap_err()
            .key,
        "name"
    );
    let again = CircuitBreaker::new("t-control", handle.config()).unwrap();
    again.force_open();
    assert_eq!(b.state(), State::ForcedOpen);
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

// ---- timed states ----

fn recorder(b: &CircuitBreaker) -> Arc<Mutex<Vec<(State, State)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    b.on_state_change(move |c| s.lock().unwrap().push((c.from, c.to)));
    seen
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn automatic_half_open_needs_no_call() {
    let b = CircuitBreaker::new(
        "t-automatic",
        CircuitBreakerConfig {
            automatic_half_open: true,
            ..config(2, 2)
        },
    )
    .unwrap();
    let seen = recorder(&b);
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(29)).await;
    settle().await;
    assert_eq!(seen.lock().unwrap().len(), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    settle().await;
    // No call and no look at the state: the timer moved it.
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(State::Closed, State::Open), (State::Open, State::HalfOpen)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_half_open_breaker_whose_trials_hang_opens_again() {
    let b = CircuitBreaker::new(
        "t-max-wait",
        CircuitBreakerConfig {
            half_open_calls: 1,
            max_wait_in_half_open: Some(Duration::from_secs(5)),
            ..config(2, 2)
        },
    )
    .unwrap();
    let seen = recorder(&b);
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(30)).await;
    let hung = b.acquire().unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    tokio::time::advance(Duration::from_secs(5)).await;
    settle().await;
    assert_eq!(
        seen.lock().unwrap().last(),
        Some(&(State::HalfOpen, State::Open))
    );
    // The hung trial belongs to the episode that gave up: its success
    // closes nothing.
    hung.success();
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn open_for_grows_over_consecutive_openings_and_resets_on_close() {
    let b = CircuitBreaker::new(
        "t-open-backoff",
        CircuitBreakerConfig {
            open_for: Duration::from_secs(10),
            open_for_backoff: Some(cortex::resilience::OpenForBackoff {
                multiplier: 2.0,
                max: Duration::from_secs(30),
            }),
            half_open_calls: 1,
            ..config(2, 2)
        },
    )
    .unwrap();
    let retry_after = |b: &CircuitBreaker| match b.acquire() {
        Err(Error::CircuitOpen { retry_after, .. }) => retry_after,
        other => panic!("{other:?}"),
    };
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    let mut waits = vec![retry_after(&b)];
    for _ in 0..3 {
        tokio::time::advance(*waits.last().unwrap()).await;
        fail(&b).await.unwrap_err(); // the trial fails: open again
        waits.push(retry_after(&b));
    }
    assert_eq!(
        waits,
        [10, 20, 30, 30].map(Duration::from_secs),
        "doubling, capped"
    );
    tokio::time::advance(Duration::from_secs(30)).await;
    succeed(&b).await.unwrap(); // the trial succeeds: closed
    assert_eq!(b.state(), State::Closed);
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(retry_after(&b), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_permit_dropped_past_the_slow_threshold_is_a_slow_call() {
    let b = CircuitBreaker::new(
        "t-abandoned",
        CircuitBreakerConfig {
            slow_call_threshold: Some(Duration::from_millis(100)),
            ..config(2, 2)
        },
    )
    .unwrap();
    // A caller gives up early: ignored.
    let quick = b.acquire().unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    drop(quick);
    assert_eq!(b.stats().calls_in_window, 0);
    // Callers that gave up on a hanging backend: slow calls, and a slow
    // call rate of 100 % opens it.
    for _ in 0..2 {
        let hanging = b.acquire().unwrap();
        tokio::time::advance(Duration::from_millis(150)).await;
        drop(hanging);
    }
    assert_eq!(b.stats().slow_in_window, 2);
    assert_eq!(b.state(), State::Open);
}

// ---- episodes ----

#[tokio::test(start_paused = true)]
async fn a_trial_permit_outliving_its_episode_counts_in_no_later_one() {
    let b = CircuitBreaker::new(
        "t-episodes",
        CircuitBreakerConfig {
            half_open_calls: 1,
            ..config(2, 2)
        },
    )
    .unwrap();
    let open_then_half_open = || async {
        fail(&b).await.unwrap_err();
        fail(&b).await.unwrap_err();
        tokio::time::advance(Duration::from_secs(30)).await;
    };
    open_then_half_open().await;
    let old_trial = b.acquire().unwrap();
    b.reset();
    open_then_half_open().await;
    let trial = b.acquire().unwrap();
    // Exactly one place per episode: the old trial gives none back...
    drop(old_trial);
    assert!(matches!(
        b.acquire(),
        Err(Error::CircuitOpen { retry_after, .. }) if retry_after == Duration::ZERO
    ));
    // ...and the episode's own trial decides it.
    trial.success();
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn listeners_may_read_the_breaker_and_register_listeners() {
    let b = CircuitBreaker::new("t-listeners", config(2, 2)).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s, handle) = (Arc::clone(&seen), b.clone());
    let registered = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&registered);
    b.on_state_change(move |c| {
        // Reading the breaker and registering a listener from a listener:
        // no deadlock.
        s.lock().unwrap().push((c.to, handle.state()));
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            let s2 = Arc::clone(&s);
            handle.on_state_change(move |c| s2.lock().unwrap().push((c.to, State::Disabled)));
            // A transition from inside a listener is told after this one.
            handle.force_open();
        }
    });
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            // The first change, read from inside its listener.
            (State::Open, State::Open),
            // The one that listener caused, told to both listeners after.
            (State::ForcedOpen, State::ForcedOpen),
            (State::ForcedOpen, State::Disabled),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn reconfigure_keeps_the_state_and_stale_permits_decide_nothing() {
    let b = CircuitBreaker::new("t-reconf-state", config(2, 2)).unwrap();
    let before = b.acquire().unwrap();
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err();
    tokio::time::advance(Duration::from_secs(10)).await;
    b.reconfigure(CircuitBreakerConfig {
        failure_rate: 90,
        ..config(4, 4)
    })
    .unwrap();
    // Still open, for the rest of its 30 s.
    assert!(matches!(
        b.acquire(),
        Err(Error::CircuitOpen { retry_after, .. }) if retry_after == Duration::from_secs(20)
    ));
    // A permit from before counts in nothing now.
    before.failure();
    assert_eq!(b.state(), State::Open);
    b.reset();
    let stale = b.acquire().unwrap();
    b.reconfigure(config(1, 1)).unwrap();
    stale.failure();
    assert_eq!(
        b.state(),
        State::Closed,
        "a permit of the old configuration opens nothing"
    );
}

// ---- hooks, owned permits, metrics ----

#[tokio::test(start_paused = true)]
async fn event_hooks_see_every_call() {
    let b = CircuitBreaker::new(
        "t-hooks",
        CircuitBreakerConfig {
            slow_call_threshold: Some(Duration::from_secs(5)),
            ..config(2, 2)
        },
    )
    .unwrap();
    let counts = Arc::new(Mutex::new([0u32; 4]));
    let bump = |i: usize| {
        let c = Arc::clone(&counts);
        move |_| c.lock().unwrap()[i] += 1
    };
    b.on_success(bump(0));
    b.on_error(bump(1));
    b.on_ignored_error(bump(2));
    let c = Arc::clone(&counts);
    b.on_not_permitted(move || c.lock().unwrap()[3] += 1);
    let elapsed = Arc::new(Mutex::new(None));
    let e = Arc::clone(&elapsed);
    b.on_success(move |d| *e.lock().unwrap() = d);
    b.call(|| async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok::<(), AppError>(())
    })
    .await
    .unwrap();
    b.acquire().unwrap().ignore();
    // A success and a failure: 50 %, open.
    fail(&b).await.unwrap_err();
    fail(&b).await.unwrap_err(); // rejected
    fail(&b).await.unwrap_err(); // rejected
    assert_eq!(*counts.lock().unwrap(), [1, 1, 1, 2]);
    assert_eq!(*elapsed.lock().unwrap(), Some(Duration::from_millis(250)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_permit_moves_into_a_spawned_task() {
    let b = CircuitBreaker::new("t-owned", config(2, 2)).unwrap();
    let permits: Vec<_> = (0..2).map(|_| b.acquire_owned().unwrap()).collect();
    let tasks: Vec<_> = permits
        .into_iter()
        .map(|p| tokio::spawn(async move { p.failure() }))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(b.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn dashboards_find_rates_buffered_calls_and_durations() {
    let b = CircuitBreaker::new(
        "t-dashboard",
        CircuitBreakerConfig {
            slow_call_threshold: Some(Duration::from_millis(100)),
            slow_call_rate: 100,
            ..config(4, 4)
        },
    )
    .unwrap();
    succeed(&b).await.unwrap();
    b.call(|| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok::<(), AppError>(())
    })
    .await
    .unwrap();
    fail(&b).await.unwrap_err();
    succeed(&b).await.unwrap();
    let text = global().encode(Format::PrometheusText);
    for line in [
        "cortex_circuit_breaker_slow_call_rate{name=\"t-dashboard\"} 25",
        "cortex_circuit_breaker_failure_rate{name=\"t-dashboard\"} 25",
        "cortex_circuit_breaker_buffered_calls{name=\"t-dashboard\",kind=\"successful\"} 3",
        "cortex_circuit_breaker_buffered_calls{name=\"t-dashboard\",kind=\"failed\"} 1",
        "cortex_circuit_breaker_call_duration_seconds_count{name=\"t-dashboard\",kind=\"successful\"} 3",
        "cortex_circuit_breaker_call_duration_seconds_count{name=\"t-dashboard\",kind=\"failed\"} 1",
        "cortex_circuit_breaker_call_duration_seconds_bucket{name=\"t-dashboard\",kind=\"successful\",le=\"0.1\"} 2",
    ] {
        assert!(text.contains(line), "missing {line}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_successful_series_counts_each_success_once_whatever_path_it_took() {
    let b = CircuitBreaker::new(
        "t-every-success",
        CircuitBreakerConfig {
            slow_call_threshold: Some(Duration::from_millis(100)),
            slow_call_rate: 100,
            half_open_calls: 1,
            ..config(4, 4)
        },
    )
    .unwrap();
    let sample = || {
        let text = global().encode(Format::PrometheusText);
        let key =
            "cortex_circuit_breaker_calls_total{name=\"t-every-success\",kind=\"successful\"} ";
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.parse::<u64>().unwrap())
            .unwrap()
    };
    // Fast and slow successes in a count window.
    succeed(&b).await.unwrap();
    b.call(|| async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Ok::<(), AppError>(())
    })
    .await
    .unwrap();
    assert_eq!(sample(), 2);
    // A stale permit: granted in a closed episode, finished after a
    // reconfiguration to a time window.
    let stale = b.acquire().unwrap();
    b.reconfigure(CircuitBreakerConfig {
        window: Window::Time(Duration::from_secs(10)),
        ..b.config()
    })
    .unwrap();
    stale.success();
    assert_eq!(sample(), 3);
    // Successes in the time window.
    succeed(&b).await.unwrap();
    succeed(&b).await.unwrap();
    assert_eq!(sample(), 5);
    // A trial success, back in a count window.
    b.reconfigure(CircuitBreakerConfig {
        window: Window::Count(4),
        ..b.config()
    })
    .unwrap();
    b.force_open();
    b.reset();
    for _ in 0..4 {
        fail(&b).await.unwrap_err();
    }
    assert_eq!(b.state(), State::Open);
    tokio::time::advance(Duration::from_secs(31)).await;
    succeed(&b).await.unwrap();
    assert_eq!(b.state(), State::Closed, "the one trial succeeded");
    assert_eq!(sample(), 6);
    // Failures and rejections are not successes.
    for _ in 0..4 {
        fail(&b).await.unwrap_err();
    }
    succeed(&b).await.unwrap_err();
    assert_eq!(sample(), 6);
}

#[tokio::test]
async fn a_breaker_belongs_to_readiness_not_liveness() {
    use cortex::health::Group;
    let breaker = cortex::resilience::CircuitBreaker::new(
        "probe-groups",
        cortex::resilience::CircuitBreakerConfig {
            health: cortex::resilience::OpenHealth::Down,
            ..Default::default()
        },
    )
    .unwrap();
    breaker.force_open();
    let name = "circuit_breaker.probe-groups";
    let ready = cortex::health::global().check(Some(Group::Readiness)).await;
    assert_eq!(
        ready.component(name).map(|c| c.health().status()),
        Some(cortex::health::Status::Down),
        "an open breaker with health = down takes the pod out of rotation"
    );
    let live = cortex::health::global().check(Some(Group::Liveness)).await;
    assert!(
        live.component(name).is_none(),
        "but never makes the orchestrator restart it"
    );
}
