//! Resilience policies against their peers, in the same run: a closed
//! circuit breaker against `failsafe` and a plain call; a retry that does not
//! fail; a bulkhead acquire/release against `tokio::sync::Semaphore`; and the
//! breaker and the bulkhead with every core on one instance.
//!
//! ```text
//! cargo bench -p cortex-benches --bench resilience
//! ```

use std::hint::black_box;
use std::time::Duration;

use cortex::resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Error, Retry, RetryConfig,
};
use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::CircuitBreaker as _;

#[inline(never)]
fn work(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
}

#[inline(never)]
#[cortex::circuit_breaker(name = "bench-annotated")]
fn annotated(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
}

fn breaker(c: &mut Criterion) {
    let mut g = c.benchmark_group("circuit_breaker_closed_call");
    g.bench_function("plain_call", |b| b.iter(|| work(black_box(7))));
    let cb = CircuitBreaker::new("bench-breaker", CircuitBreakerConfig::default()).unwrap();
    g.bench_function("cortex", |b| {
        b.iter(|| cb.call_sync(|| work(black_box(7)), |_| true))
    });
    g.bench_function("cortex_attribute", |b| b.iter(|| annotated(black_box(7))));
    let fs = failsafe::Config::new().build();
    g.bench_function("failsafe", |b| b.iter(|| fs.call(|| work(black_box(7)))));
    g.finish();
}

fn retry(c: &mut Criterion) {
    let mut g = c.benchmark_group("retry_without_failure");
    g.bench_function("plain_call", |b| b.iter(|| work(black_box(7))));
    let r = Retry::new("bench-retry", RetryConfig::default()).unwrap();
    g.bench_function("cortex", |b| {
        b.iter(|| r.call_sync_if(|| work(black_box(7)), |_| true))
    });
    g.finish();
}

fn bulkhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulkhead_acquire_release");
    let bh = Bulkhead::new(
        "bench-bulkhead",
        BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    g.bench_function("cortex", |b| {
        b.iter(|| drop(black_box(bh.try_acquire().unwrap())))
    });
    let sem = tokio::sync::Semaphore::new(25);
    g.bench_function("tokio_semaphore", |b| {
        b.iter(|| drop(black_box(sem.try_acquire().unwrap())))
    });
    g.finish();
}

/// Every core on one instance: time per call per thread.
fn contended(c: &mut Criterion) {
    let threads = cortex_benches::cores();
    let mut g = c.benchmark_group(format!("all_{threads}_cores_on_one_instance"));
    let cb = CircuitBreaker::new("bench-breaker-shared", CircuitBreakerConfig::default()).unwrap();
    g.bench_function("breaker_cortex", |b| {
        b.iter_custom(|iters| {
            cortex_benches::on_threads(threads, iters, || {
                let _ = black_box(cb.call_sync(|| work(black_box(7)), |_| true));
            })
        })
    });
    let fs = failsafe::Config::new().build();
    g.bench_function("breaker_failsafe", |b| {
        b.iter_custom(|iters| {
            cortex_benches::on_threads(threads, iters, || {
                let _ = black_box(fs.call(|| work(black_box(7))));
            })
        })
    });
    let bh = Bulkhead::new(
        "bench-bulkhead-shared",
        BulkheadConfig {
            max_concurrent: 1000,
            max_wait: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    g.bench_function("bulkhead_cortex", |b| {
        b.iter_custom(|iters| {
            cortex_benches::on_threads(threads, iters, || {
                drop(black_box(bh.try_acquire()));
            })
        })
    });
    let sem = tokio::sync::Semaphore::new(1000);
    g.bench_function("bulkhead_tokio_semaphore", |b| {
        b.iter_custom(|iters| {
            cortex_benches::on_threads(threads, iters, || {
                drop(black_box(sem.try_acquire()));
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(2);
    targets = breaker, retry, bulkhead, contended
}
criterion_main!(benches);
