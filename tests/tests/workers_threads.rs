//! Dropping a worker pool leaks no thread. Its own test binary, so no
//! other test's threads are counted.

use std::time::Duration;

use cortex::workers::{PoolOptions, WorkerPool};

fn os_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn opts(name: &str, threads: usize) -> PoolOptions {
    PoolOptions::named(name).threads(threads).without_metrics()
}

#[test]
fn dropping_the_pool_leaks_no_thread() {
    let before = os_threads();
    {
        let pool = WorkerPool::new(opts("t-drop", 4));
        for _ in 0..100 {
            let _ = pool.try_submit(|_| ());
        }
        assert!(os_threads() >= before + 4);
    }
    // Give exiting threads a moment to be reaped.
    for _ in 0..100 {
        if os_threads() <= before {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        os_threads() <= before,
        "threads left after drop: {} -> {}",
        before,
        os_threads()
    );
}
