//! Every hot path on 1 thread and on every core at once, all on one shared
//! instance: the time per operation per thread, so "scales" means the two
//! numbers are close. Peers alongside, in the same run.
//!
//! ```text
//! cargo bench -p cortex-benches --bench contention
//! ```

use std::hint::black_box;
use std::time::Duration;

use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig, Error, Retry, RetryConfig};
use cortex_benches::{cores, on_threads};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use failsafe::CircuitBreaker as _;

#[inline(never)]
fn work(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17))
}

#[inline(never)]
#[cortex::counted]
fn counted(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

#[inline(never)]
#[cortex::counted]
#[cortex::timed]
fn counted_timed(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// The case on 1 thread and on every core.
fn both<M: criterion::measurement::Measurement<Value = Duration>>(
    g: &mut BenchmarkGroup<'_, M>,
    name: &str,
    op: impl Fn() + Sync,
) {
    let n = cores();
    g.bench_function(format!("{name}/1_thread"), |b| {
        b.iter_custom(|iters| on_threads(1, iters, &op))
    });
    g.bench_function(format!("{name}/{n}_threads"), |b| {
        b.iter_custom(|iters| on_threads(n, iters, &op))
    });
}

fn counters(c: &mut Criterion) {
    let mut g = c.benchmark_group("counter_inc");
    let registry = cortex::metrics::Registry::new();
    let cortex_counter = registry.counter("bench_total", "Bench.").unwrap();
    both(&mut g, "cortex", || black_box(&cortex_counter).inc());
    let prom = prometheus::IntCounter::new("bench_total", "Bench.").unwrap();
    both(&mut g, "prometheus", || black_box(&prom).inc());
    let pc: prometheus_client::metrics::counter::Counter = Default::default();
    both(&mut g, "prometheus_client", || {
        black_box(&pc).inc();
    });
    let fm: fastmetrics::metrics::counter::Counter = Default::default();
    both(&mut g, "fastmetrics", || black_box(&fm).inc());
    g.finish();
}

fn histograms(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_observe");
    let value = || black_box(0.042);
    let registry = cortex::metrics::Registry::new();
    let h = registry
        .histogram(
            "bench_seconds",
            "Bench.",
            cortex::metrics::Buckets::default(),
        )
        .unwrap();
    both(&mut g, "cortex", || black_box(&h).observe(value()));
    let prom =
        prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("bench_seconds", "Bench."))
            .unwrap();
    both(&mut g, "prometheus", || black_box(&prom).observe(value()));
    let pc = prometheus_client::metrics::histogram::Histogram::new(
        cortex::metrics::DEFAULT_BUCKETS.iter().copied(),
    );
    both(&mut g, "prometheus_client", || {
        black_box(&pc).observe(value())
    });
    let fm = fastmetrics::metrics::histogram::Histogram::new(
        cortex::metrics::DEFAULT_BUCKETS.iter().copied(),
    );
    both(&mut g, "fastmetrics", || black_box(&fm).observe(value()));
    g.finish();
}

fn annotated(c: &mut Criterion) {
    let mut g = c.benchmark_group("annotated_call");
    both(&mut g, "counted", || {
        black_box(counted(black_box(7)));
    });
    both(&mut g, "counted_timed", || {
        black_box(counted_timed(black_box(7)));
    });
    g.finish();
}

fn policies(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_call");
    let cb = CircuitBreaker::new("contention-breaker", CircuitBreakerConfig::default()).unwrap();
    both(&mut g, "breaker_cortex", || {
        let _ = black_box(cb.call_sync(|| work(black_box(7)), |_| true));
    });
    let fs = failsafe::Config::new().build();
    both(&mut g, "breaker_failsafe", || {
        let _ = black_box(fs.call(|| work(black_box(7))));
    });
    let r = Retry::new("contention-retry", RetryConfig::default()).unwrap();
    both(&mut g, "retry_cortex", || {
        let _ = black_box(r.call_sync_if(|| work(black_box(7)), |_| true));
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(2);
    targets = counters, histograms, annotated, policies
}
criterion_main!(benches);
