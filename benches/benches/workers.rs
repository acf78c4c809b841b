//! Tiny-task throughput of the worker pool against `threadpool` and
//! `rayon::spawn`, in the same run: 10,000 tasks that each add to a counter,
//! then wait for all of them.
//!
//! ```text
//! cargo bench -p cortex-benches --bench workers
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use cortex::workers::{PoolOptions, WorkerPool};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const TASKS: u64 = 10_000;

fn workers(c: &mut Criterion) {
    let mut g = c.benchmark_group("tiny_tasks");
    g.throughput(Throughput::Elements(TASKS));
    g.sample_size(20);

    let pool = WorkerPool::new(
        PoolOptions::named("bench")
            .threads(2)
            .queue(TASKS as usize)
            .without_metrics(),
    );
    g.bench_function("cortex_spawn", |b| {
        let counter = Arc::new(AtomicU64::new(0));
        b.iter(|| {
            let (tx, rx) = mpsc::channel::<()>();
            for _ in 0..TASKS {
                let (c, tx) = (Arc::clone(&counter), tx.clone());
                pool.spawn(move |_| {
                    c.fetch_add(1, Ordering::Relaxed);
                    drop(tx);
                })
                .unwrap();
            }
            drop(tx);
            let _ = rx.recv();
        })
    });
    g.bench_function("cortex_submit_with_result", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..TASKS)
                .map(|i| pool.try_submit(move |_| i).unwrap())
                .collect();
            handles.into_iter().map(|h| h.wait().unwrap()).sum::<u64>()
        })
    });

    let tp = threadpool::ThreadPool::new(2);
    // Every pool is waited on the same way (the last sender dropped), so
    // the comparison measures the pools, not the waiting.
    g.bench_function("threadpool", |b| {
        let counter = Arc::new(AtomicU64::new(0));
        b.iter(|| {
            let (tx, rx) = mpsc::channel::<()>();
            for _ in 0..TASKS {
                let (c, tx) = (Arc::clone(&counter), tx.clone());
                tp.execute(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                    drop(tx);
                });
            }
            drop(tx);
            let _ = rx.recv();
        })
    });

    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    g.bench_function("rayon_spawn", |b| {
        let counter = Arc::new(AtomicU64::new(0));
        b.iter(|| {
            let (tx, rx) = mpsc::channel::<()>();
            for _ in 0..TASKS {
                let (c, tx) = (Arc::clone(&counter), tx.clone());
                rayon_pool.spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                    drop(tx);
                });
            }
            drop(tx);
            let _ = rx.recv();
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(3);
    targets = workers
}
criterion_main!(benches);
