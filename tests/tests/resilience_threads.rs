//! The policies under real concurrency: many OS threads on one instance,
//! with the counts that must add up exactly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, RateLimiter, RateLimiterConfig,
    RateLimiterEvent, State, Window,
};

const THREADS: usize = 8;

#[test]
fn a_breaker_hammered_through_many_episodes_keeps_every_count() {
    let half_open_calls = 5u64;
    let b = CircuitBreaker::new(
        "threads-breaker",
        CircuitBreakerConfig {
            window: Window::Count(20),
            minimum_calls: 10,
            failure_rate: 50,
            open_for: Duration::from_millis(2),
            half_open_calls: half_open_calls as u32,
            ..Default::default()
        },
    )
    .unwrap();
    let changes = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::clone(&changes);
    b.on_state_change(move |ch| c.lock().unwrap().push((ch.from, ch.to)));

    // The backend alternates between healthy and failing every few
    // milliseconds.
    let sick = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (sick, stop) = (Arc::clone(&sick), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(3));
                sick.fetch_xor(true, Ordering::Relaxed);
            }
        })
    };
    let (succeeded, failed, rejected, trials) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let calls = Arc::new(AtomicU64::new(0));
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let b = b.clone();
            let calls = Arc::clone(&calls);
            let (sick, succeeded, failed, rejected, trials) = (
                Arc::clone(&sick),
                Arc::clone(&succeeded),
                Arc::clone(&failed),
                Arc::clone(&rejected),
                Arc::clone(&trials),
            );
            std::thread::spawn(move || {
                while started.elapsed() < Duration::from_millis(300) {
                    calls.fetch_add(1, Ordering::Relaxed);
                    match b.acquire() {
                        Ok(permit) => {
                            if permit.is_trial() {
                                trials.fetch_add(1, Ordering::Relaxed);
                            }
                            if sick.load(Ordering::Relaxed) {
                                failed.fetch_add(1, Ordering::Relaxed);
                                permit.failure();
                            } else {
                                succeeded.fetch_add(1, Ordering::Relaxed);
                                permit.success();
                            }
                        }
                        Err(_) => {
                            rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();

    let changes = changes.lock().unwrap().clone();
    assert!(changes.len() > 10, "only {} transitions", changes.len());
    // Every change starts where the one before ended, and is one the state
    // machine allows.
    let mut at = State::Closed;
    for &(from, to) in &changes {
        assert_eq!(from, at, "{changes:?}");
        assert!(
            matches!(
                (from, to),
                (State::Closed, State::Open)
                    | (State::Open, State::HalfOpen)
                    | (State::HalfOpen, State::Open)
                    | (State::HalfOpen, State::Closed)
            ),
            "{from:?} -> {to:?}"
        );
        at = to;
    }
    assert_eq!(at, b.state());
    // Exactly half_open_calls trials per finished episode; the last one,
    // if still half-open, has had fewer.
    let episodes = changes
        .iter()
        .filter(|(from, _)| *from == State::HalfOpen)
        .count() as u64;
    let trials = trials.load(Ordering::Relaxed);
    let in_last = trials - half_open_calls * episodes;
    assert!(
        in_last < half_open_calls && (in_last == 0 || at == State::HalfOpen),
        "{trials} trials in {episodes} episodes"
    );
    // No count lost: the breaker's metrics add up to what the threads did.
    let (s, f, r) = (
        succeeded.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        rejected.load(Ordering::Relaxed),
    );
    assert_eq!(s + f + r, calls.load(Ordering::Relaxed));
    let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
    let sample = |kind: &str| -> u64 {
        let key = format!(
            "cortex_circuit_breaker_calls_total{{name=\"threads-breaker\",kind=\"{kind}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {kind}")) as u64
    };
    assert_eq!(sample("successful"), s);
    assert_eq!(sample("failed"), f);
    assert_eq!(sample("not_permitted"), r);
    assert_eq!(b.stats().not_permitted, r);
}

#[test]
fn a_bulkhead_under_threads_panics_and_cancellations_never_leaks_a_place() {
    let max = 3;
    let b = Bulkhead::new(
        "threads-bulkhead",
        BulkheadConfig {
            max_concurrent: max,
            max_wait: Duration::from_millis(20),
            fair: true,
        },
    )
    .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (b, running, peak) = (b.clone(), Arc::clone(&running), Arc::clone(&peak));
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let Ok(_permit) = b.acquire_blocking() else {
                            return;
                        };
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::hint::spin_loop();
                        running.fetch_sub(1, Ordering::SeqCst);
                        if (i + t) % 97 == 0 {
                            panic!("a call panics holding its place");
                        }
                    }));
                    let _ = r;
                }
            })
        })
        .collect();
    // Async callers on the same bulkhead, many of them cancelled while
    // waiting.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200u64 {
            let b = b.clone();
            tasks.push(tokio::spawn(async move {
                let wait = Duration::from_micros(50 + (i * 37) % 500);
                let _ = tokio::time::timeout(wait, async {
                    if let Ok(_p) = b.acquire().await {
                        tokio::task::yield_now().await;
                    }
                })
                .await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    for w in workers {
        w.join().unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= max as usize);
    assert_eq!((b.in_use(), b.waiting()), (0, 0));
    // Every place is there to take.
    let all: Vec<_> = (0..max).map(|_| b.try_acquire().unwrap()).collect();
    assert!(b.try_acquire().is_err());
    drop(all);
}

#[test]
fn a_rate_limiter_under_threads_never_grants_more_than_its_permits_per_period() {
    let permits = 40u64;
    let l = RateLimiter::new(
        "threads-rate",
        RateLimiterConfig {
            permits: permits as u32,
            period: Duration::from_millis(10),
            max_wait: Duration::ZERO,
        },
    )
    .unwrap();
    let per_period = Arc::new(Mutex::new(HashMap::<u64, u64>::new()));
    let p = Arc::clone(&per_period);
    l.on_event(move |e| {
        if let RateLimiterEvent::Acquired {
            permits, period, ..
        } = e
        {
            *p.lock().unwrap().entry(*period).or_default() += u64::from(*permits);
        }
    });
    let granted = Arc::new(AtomicU64::new(0));
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (l, granted) = (l.clone(), Arc::clone(&granted));
            std::thread::spawn(move || {
                while started.elapsed() < Duration::from_millis(150) {
                    if l.try_acquire(1).is_ok() {
                        granted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let per_period = per_period.lock().unwrap();
    assert!(per_period.values().all(|&n| n <= permits), "{per_period:?}");
    assert_eq!(
        per_period.values().sum::<u64>(),
        granted.load(Ordering::Relaxed)
    );
    // The threads kept it busy: most periods were used to the full.
    let full = per_period.values().filter(|&&n| n == permits).count();
    assert!(full >= per_period.len() / 2, "{per_period:?}");
}
