//! Bulkhead: the limit under many callers, rejection without a wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cortex::metrics::{global, Format};
use cortex::resilience::{Bulkhead, BulkheadConfig, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulkhead_never_exceeds_its_limit_under_100_callers() {
    let bulkhead = Bulkhead::new(
        "t-bulkhead",
        BulkheadConfig {
            max_concurrent: 5,
            max_wait: Duration::from_secs(30),
            ..Default::default()
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
            ..Default::default()
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

fn bulkhead(name: &str, max: u32, wait: Duration, fair: bool) -> Bulkhead {
    Bulkhead::new(
        name,
        BulkheadConfig {
            max_concurrent: max,
            max_wait: wait,
            fair,
        },
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let b = bulkhead("t-fair", 1, Duration::from_secs(60), true);
    let first = b.try_acquire().unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (b, order) = (b.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let _p = b.acquire().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }));
        // Arrive one after the other.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
    assert_eq!(b.waiting(), 5);
    drop(first);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!((b.in_use(), b.waiting()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_no_trace() {
    let b = bulkhead("t-cancel", 1, Duration::from_secs(60), true);
    let held = b.try_acquire().unwrap();
    {
        let waiting = b.acquire();
        tokio::pin!(waiting);
        assert!(futures_poll(waiting.as_mut()).is_pending());
        assert_eq!(b.waiting(), 1);
    }
    // Dropped while waiting: gone from the queue and the gauge.
    assert_eq!(b.waiting(), 0);
    let text = global().encode(Format::PrometheusText);
    assert!(text.contains("cortex_bulkhead_waiting_calls{name=\"t-cancel\"} 0"));
    drop(held);
    assert_eq!(b.in_use(), 0);
    // A waiter whose wait runs out is rejected and leaves no trace either.
    let short = bulkhead("t-cancel-wait", 1, Duration::from_secs(1), true);
    let _held = short.try_acquire().unwrap();
    assert!(matches!(
        short.acquire().await,
        Err(Error::BulkheadFull { .. })
    ));
    assert_eq!((short.waiting(), short.in_use()), (0, 1));
}

fn futures_poll<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    f.poll(&mut cx)
}

#[test]
fn reconfigure_wakes_sync_waiters() {
    let b = bulkhead("t-reconf-sync", 1, Duration::from_secs(30), true);
    let held = b.try_acquire().unwrap();
    let started = std::time::Instant::now();
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || b.acquire_blocking().map(drop).is_ok())
    };
    while b.waiting() == 0 {
        std::thread::yield_now();
    }
    b.reconfigure(BulkheadConfig {
        max_concurrent: 2,
        max_wait: Duration::from_secs(30),
        fair: true,
    })
    .unwrap();
    assert!(waiter.join().unwrap(), "the new place went to the waiter");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(held);
    assert_eq!(b.in_use(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unfair_bulkhead_lets_a_newcomer_take_a_free_place() {
    let b = bulkhead("t-unfair", 1, Duration::from_secs(60), false);
    let held = b.try_acquire().unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.acquire().await.map(drop).is_ok() })
    };
    tokio::task::yield_now().await;
    assert_eq!(b.waiting(), 1);
    drop(held);
    // Before the woken waiter runs, a newcomer takes the place.
    let newcomer = b
        .try_acquire()
        .expect("not fair: the free place is anyone's");
    tokio::task::yield_now().await;
    assert_eq!(b.waiting(), 1, "the waiter lost the race and waits again");
    drop(newcomer);
    assert!(waiter.await.unwrap());
    // A fair one keeps the place for the waiter.
    let fair = bulkhead("t-fair-2", 1, Duration::from_secs(60), true);
    let held = fair.try_acquire().unwrap();
    let waiter = {
        let b = fair.clone();
        tokio::spawn(async move { b.acquire().await.map(drop).is_ok() })
    };
    tokio::task::yield_now().await;
    drop(held);
    assert!(fair.try_acquire().is_err(), "the place went to the waiter");
    assert!(waiter.await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_permits_and_hooks() {
    let b = bulkhead("t-owned-bulkhead", 2, Duration::ZERO, true);
    let rejected = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&rejected);
    b.on_rejected(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    let p1 = b.acquire_owned().await.unwrap();
    let p2 = b.acquire_owned().await.unwrap();
    assert!(b.try_acquire().is_err());
    let t = tokio::spawn(async move {
        drop(p1);
        drop(p2);
    });
    t.await.unwrap();
    assert_eq!(b.in_use(), 0);
    assert_eq!(rejected.load(Ordering::SeqCst), 1);
}
