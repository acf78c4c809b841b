//! The worker pool: limits, timeouts, panics, per-worker state, shutdown,
//! and no leaked threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use cortex::workers::{PoolOptions, TaskError, WorkerPool};

fn opts(name: &str, threads: usize) -> PoolOptions {
    PoolOptions::named(name).threads(threads).without_metrics()
}

#[test]
fn concurrency_never_exceeds_the_thread_count() {
    let pool = WorkerPool::new(opts("t-conc", 3));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..60)
        .map(|_| {
            let (r, p) = (Arc::clone(&running), Arc::clone(&peak));
            pool.submit_blocking(move |_| {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                r.fetch_sub(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.wait().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[test]
fn the_queue_limit_is_respected() {
    let pool = WorkerPool::new(opts("t-queue", 1).queue(2));
    let gate = Arc::new(Barrier::new(2));
    let g = Arc::clone(&gate);
    let busy = pool
        .try_submit(move |_| {
            g.wait();
        })
        .unwrap();
    while pool.stats().active == 0 {
        std::thread::yield_now();
    }
    let a = pool.try_submit(|_| 1).unwrap();
    let b = pool.try_submit(|_| 2).unwrap();
    assert_eq!(pool.try_submit(|_| 3).unwrap_err(), TaskError::QueueFull);
    gate.wait();
    busy.wait().unwrap();
    assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
}

#[test]
fn a_timed_out_task_returns_promptly_and_capacity_recovers() {
    let pool = WorkerPool::new(opts("t-timeout", 1));
    let started = Instant::now();
    let hung = pool
        .try_submit_timeout(
            |_| std::thread::sleep(Duration::from_secs(2)),
            Some(Duration::from_millis(100)),
        )
        .unwrap();
    assert_eq!(
        hung.wait(),
        Err(TaskError::TimedOut(Duration::from_millis(100)))
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "answered at the deadline, not when the task ended"
    );
    // The replacement worker takes new tasks while the lost one still sleeps.
    assert_eq!(pool.try_submit(|_| 5).unwrap().wait(), Ok(5));
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(pool.stats().lost, 1);
    assert_eq!(pool.stats().threads, 1);
}

#[test]
fn panics_are_contained_and_state_is_rebuilt() {
    let built = Arc::new(AtomicUsize::new(0));
    let b = Arc::clone(&built);
    let pool = WorkerPool::with_state(opts("t-state", 1), move || {
        b.fetch_add(1, Ordering::SeqCst);
        Vec::<u32>::new()
    });
    pool.try_submit(|v: &mut Vec<u32>| v.push(1))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(
        pool.try_submit(|v: &mut Vec<u32>| v.len()).unwrap().wait(),
        Ok(1)
    );
    let err = pool
        .try_submit(|v: &mut Vec<u32>| -> usize {
            v.push(2);
            panic!("poisoned state")
        })
        .unwrap()
        .wait()
        .unwrap_err();
    assert_eq!(err, TaskError::Panicked("poisoned state".into()));
    assert_eq!(
        pool.try_submit(|v: &mut Vec<u32>| v.len()).unwrap().wait(),
        Ok(0),
        "a fresh state after the panic"
    );
    assert_eq!(built.load(Ordering::SeqCst), 2);
}

#[test]
fn graceful_shutdown_finishes_queued_tasks() {
    let pool = WorkerPool::new(opts("t-graceful", 1));
    let handles: Vec<_> = (0..20)
        .map(|i| pool.submit_blocking(move |_| i).unwrap())
        .collect();
    pool.shutdown();
    let results: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(results, (0..20).collect::<Vec<_>>());
}

#[test]
fn immediate_shutdown_cancels_queued_tasks() {
    let pool = WorkerPool::new(opts("t-now", 1));
    let gate = Arc::new(Barrier::new(2));
    let g = Arc::clone(&gate);
    let running = pool
        .try_submit(move |_| {
            g.wait();
            1
        })
        .unwrap();
    while pool.stats().active == 0 {
        std::thread::yield_now();
    }
    let queued = pool.try_submit(|_| 2).unwrap();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        gate.wait();
    });
    pool.shutdown_now();
    opener.join().unwrap();
    assert_eq!(running.wait(), Ok(1), "the running task finished");
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_tasks_with_panics_and_timeouts_are_all_accounted() {
    let pool = Arc::new(WorkerPool::new(opts("t-storm", 4).queue(256)));
    let mut handles = Vec::new();
    for i in 0..10_000u32 {
        // A task either panics or hangs, never both (a first panic can take
        // longer than a short timeout to unwind in a debug build).
        let hangs = i % 997 == 0 && i % 101 != 0;
        let timeout = hangs.then_some(Duration::from_millis(20));
        let task = move |_: &mut ()| -> u32 {
            if i % 101 == 0 {
                panic!("task {i}");
            }
            if hangs {
                std::thread::sleep(Duration::from_millis(200));
            }
            i
        };
        let handle = match timeout {
            Some(t) => loop {
                match pool.try_submit_timeout(task, Some(t)) {
                    Ok(h) => break h,
                    Err(TaskError::QueueFull) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e}"),
                }
            },
            None => pool.submit(task).await.unwrap(),
        };
        handles.push((i, handle));
    }
    let (mut ok, mut panicked, mut timed_out) = (0, 0, 0);
    for (i, h) in handles {
        match h.await {
            Ok(v) => {
                assert_eq!(v, i);
                ok += 1;
            }
            Err(TaskError::Panicked(m)) => {
                assert_eq!(m, format!("task {i}"));
                panicked += 1;
            }
            Err(TaskError::TimedOut(_)) => timed_out += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let expected_panics = (0..10_000u32).filter(|i| i % 101 == 0).count();
    let expected_timeouts = (0..10_000u32)
        .filter(|i| i % 997 == 0 && i % 101 != 0)
        .count();
    assert_eq!(panicked, expected_panics);
    assert_eq!(timed_out, expected_timeouts);
    assert_eq!(ok + panicked + timed_out, 10_000);
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix) && !name.contains("watch"))
        .count()
}

#[test]
fn lost_threads_are_capped_and_workers_come_back_when_they_return() {
    use std::sync::atomic::AtomicBool;
    let pool = WorkerPool::new(
        PoolOptions::named("t-capped")
            .threads(1)
            .max_lost_threads(1)
            .timeout(Duration::from_millis(50))
            .without_metrics(),
    );
    let hang = Arc::new(AtomicBool::new(true));
    let hanging = || {
        let hang = Arc::clone(&hang);
        move |_: &mut ()| {
            while hang.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    let mut answered = Vec::new();
    for _ in 0..2 {
        let started = Instant::now();
        let handle = pool.submit_blocking(hanging()).unwrap();
        assert_eq!(
            handle.wait(),
            Err(TaskError::TimedOut(Duration::from_millis(50)))
        );
        answered.push(started.elapsed());
    }
    assert!(
        answered.iter().all(|t| *t < Duration::from_secs(2)),
        "{answered:?}"
    );
    // One replacement for the first lost thread, none for the second.
    std::thread::sleep(Duration::from_millis(50));
    let stats = pool.stats();
    assert_eq!((stats.lost, stats.missing), (2, 1), "{stats:?}");
    assert!(threads_named("t-capped-") <= 2, "threads stay bounded");
    assert_eq!(pool.health().status(), cortex::health::Status::Degraded);
    // More hanging tasks add no thread.
    let more: Vec<_> = (0..5)
        .map(|_| pool.submit_blocking(hanging()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(threads_named("t-capped-") <= 2);
    // The lost threads return: the worker is back, the queue drains.
    hang.store(false, Ordering::SeqCst);
    for h in more {
        let _ = h.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pool.stats().missing > 0 || pool.stats().lost > 0 {
        assert!(Instant::now() < deadline, "{:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(pool.health().status(), cortex::health::Status::Up);
    assert_eq!(pool.submit_blocking(|_| 7).unwrap().wait(), Ok(7));
}

/// A one-thread pool with a 100 ms shutdown timeout, busy with a task that
/// sleeps for 3 s.
fn pool_with_a_hanging_task(name: &str) -> WorkerPool {
    let pool = WorkerPool::new(
        PoolOptions::named(name)
            .threads(1)
            .shutdown_timeout(Duration::from_millis(100))
            .without_metrics(),
    );
    pool.spawn(|_| std::thread::sleep(Duration::from_secs(3)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    pool
}

#[test]
fn shutdown_never_waits_past_its_timeout_for_a_hanging_task() {
    for now in [false, true] {
        let pool = pool_with_a_hanging_task("t-hang-stop");
        let started = Instant::now();
        let report = if now {
            pool.shutdown_now()
        } else {
            pool.shutdown()
        };
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(report.left_running, 1);
    }
    // Drop too.
    let pool = pool_with_a_hanging_task("t-hang-drop");
    let started = Instant::now();
    drop(pool);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_async_submit_leaves_no_waiter_counted() {
    use std::sync::atomic::AtomicBool;
    let pool = Arc::new(WorkerPool::new(
        PoolOptions::named("t-cancel-submit")
            .threads(1)
            .queue(1)
            .without_metrics(),
    ));
    let hold = Arc::new(AtomicBool::new(true));
    let h = Arc::clone(&hold);
    // One task runs, one fills the queue: the next submit must wait.
    pool.spawn(move |_| {
        while h.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    pool.spawn(|_| ()).unwrap();
    for _ in 0..10 {
        let p = Arc::clone(&pool);
        let gave_up =
            tokio::time::timeout(
                Duration::from_millis(20),
                async move { p.submit(|_| 1).await },
            )
            .await;
        assert!(gave_up.is_err(), "the submit had to wait");
    }
    assert_eq!(pool.stats().waiting, 0, "{:?}", pool.stats());
    hold.store(false, Ordering::SeqCst);
    assert_eq!(pool.submit(|_| 5).await.unwrap().await, Ok(5));
}

#[test]
fn a_panicking_state_factory_is_retried_and_fails_tasks_clearly_meanwhile() {
    // Always panics: tasks fail with a clear error instead of waiting.
    let broken = WorkerPool::with_state(
        PoolOptions::named("t-bad-factory")
            .threads(1)
            .without_metrics(),
        || -> u32 { panic!("cannot open the model file") },
    );
    let started = Instant::now();
    let handle = broken.submit_blocking(|n: &mut u32| *n).unwrap();
    match handle.wait() {
        Err(TaskError::NoWorker(message)) => {
            assert!(message.contains("cannot open the model file"), "{message}")
        }
        other => panic!("expected NoWorker, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(broken.health().status(), cortex::health::Status::Down);
    assert!(
        broken.stats().threads >= 1,
        "the pool did not silently shrink"
    );
    drop(broken);

    // Panics three times, then works: the worker comes up after retries.
    let attempts = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&attempts);
    let flaky = WorkerPool::with_state(
        PoolOptions::named("t-flaky-factory")
            .threads(1)
            .without_metrics(),
        move || {
            if a.fetch_add(1, Ordering::SeqCst) < 3 {
                panic!("not yet");
            }
            40u32
        },
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match flaky.submit_blocking(|n: &mut u32| *n + 2).unwrap().wait() {
            Ok(v) => {
                assert_eq!(v, 42);
                break;
            }
            Err(TaskError::NoWorker(_)) => {
                assert!(Instant::now() < deadline, "the worker never came up");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(flaky.health().status(), cortex::health::Status::Up);
}

#[test]
fn a_task_cancelled_before_it_starts_never_runs_and_a_running_one_sees_its_token() {
    use cortex::workers::CancelToken;
    use std::sync::atomic::AtomicBool;
    let pool = WorkerPool::new(opts("t-cancel", 1));
    let release = Arc::new(AtomicBool::new(false));
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let (r, s) = (Arc::clone(&release), Arc::clone(&saw_cancel));
    let running = pool
        .submit_blocking(move |_| {
            let token = CancelToken::current();
            while !r.load(Ordering::SeqCst) {
                if token.is_cancelled() {
                    s.store(true, Ordering::SeqCst);
                    return "stopped early";
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            "finished"
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let ran = Arc::new(AtomicBool::new(false));
    let q = Arc::clone(&ran);
    let queued = pool
        .submit_blocking(move |_| q.store(true, Ordering::SeqCst))
        .unwrap();
    assert!(queued.cancel(), "not started yet: cancelled");
    assert_eq!(queued.wait(), Err(TaskError::Cancelled));
    // The running one is asked to stop; its own answer still comes.
    assert!(!running.cancel(), "already running");
    assert_eq!(running.wait(), Ok("stopped early"));
    assert!(saw_cancel.load(Ordering::SeqCst));
    // The cancelled task never ran, even once its turn came.
    assert_eq!(pool.submit_blocking(|_| 1).unwrap().wait(), Ok(1));
    assert!(!ran.load(Ordering::SeqCst));
    release.store(true, Ordering::SeqCst);
    // Outside a task, the token is never cancelled.
    assert!(!CancelToken::current().is_cancelled());
}
