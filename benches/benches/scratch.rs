use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
fn b(c: &mut Criterion) {
    let clock = quanta::Clock::new();
    c.bench_function("raw", |b| b.iter(|| black_box(clock.raw())));
    c.bench_function("raw2_delta", |b| b.iter(|| { let s = clock.raw(); let e = clock.raw(); black_box(clock.delta_as_nanos(s, e)) }));
    let a = AtomicU64::new(0);
    c.bench_function("fetch_add", |b| b.iter(|| black_box(&a).fetch_add(1, Relaxed)));
    c.bench_function("rdtsc", |b| b.iter(|| unsafe { black_box(core::arch::x86_64::_rdtsc()) }));
}
criterion_group!(benches, b);
criterion_main!(benches);
