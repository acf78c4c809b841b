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
