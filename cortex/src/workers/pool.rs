//! The pool itself.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::metrics::{Buckets, Counter, Family, Histogram, Registry};
use crate::util::panic_message;

/// Why a task gave no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the message is kept.
    #[error("task panicked: {0}")]
    Panicked(String),
    /// The task ran past its timeout.
    #[error("task timed out after {0:?}")]
    TimedOut(Duration),
    /// The queue was full (`try_submit`).
    #[error("the worker pool's queue is full")]
    QueueFull,
    /// The pool was shut down before the task ran, or refuses new tasks.
    #[error("the worker pool is shut down")]
    Cancelled,
    /// No worker could start to run it: the per-worker state factory
    /// panicked (its message is kept) on every worker; the pool keeps
    /// retrying with backoff.
    #[error("no worker of the pool could start: the state factory panicked: {0}")]
    NoWorker(String),
}

type Reply<T> = Arc<Mutex<Option<oneshot::Sender<Result<T, TaskError>>>>>;

/// Runs a task on a worker's state; `Err` if it panicked (the caller has
/// already been answered either way).
type RunFn<S> = Box<dyn FnOnce(&mut S) -> Result<(), TaskError> + Send>;
/// Answers the caller with a timeout; `false` if it was answered already.
type TimeoutFn = Box<dyn Fn(Duration) -> bool + Send + Sync>;

enum Item<S> {
    Task(Job<S>),
    /// Sent once per worker at shutdown, after every queued task.
    Stop,
}

struct Job<S> {
    run: RunFn<S>,
    /// Answers the caller with this error instead of running the task.
    cancel: Option<Box<dyn FnOnce(TaskError) + Send>>,
    timeout: Option<Duration>,
    on_timeout: Option<TimeoutFn>,
}

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    name: String,
    threads: usize,
    queue: usize,
    timeout: Option<Duration>,
    metrics: bool,
    max_lost_threads: Option<usize>,
    shutdown_timeout: Duration,
}

impl Default for PoolOptions {
    /// `workers`, one thread per available core, a queue of 1024, no
    /// default timeout, metrics in the global registry, at most as many
    /// lost threads as workers, a 30 s shutdown timeout.
    fn default() -> Self {
        PoolOptions {
            name: "workers".into(),
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue: 1024,
            timeout: None,
            metrics: true,
            max_lost_threads: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl PoolOptions {
    /// Options for a pool with this name (threads are named `name-N`; the
    /// name is the `pool` label of its metrics).
    pub fn named(name: &str) -> Self {
        PoolOptions {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Number of worker threads (at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Queue capacity (at least 1).
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }

    /// A timeout for every task that does not set its own.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// No metrics.
    pub fn without_metrics(mut self) -> Self {
        self.metrics = false;
        self
    }

    /// The most threads given up on after a timeout (still running their
    /// task) the pool keeps replacing; default: as many as it has workers.
    /// At the cap a timed-out task is still answered on time, but no
    /// replacement thread is started: the pool runs with fewer workers,
    /// says so in [`PoolStats::missing`], its `/health` component
    /// (DEGRADED) and `cortex_worker_pool_missing_workers`, and gets each
    /// worker back when a lost thread's task finally returns. So hanging
    /// tasks cannot make threads grow with the request rate.
    pub fn max_lost_threads(mut self, n: usize) -> Self {
        self.max_lost_threads = Some(n);
        self
    }

    /// How long [`shutdown`](WorkerPool::shutdown), `shutdown_now` and
    /// `Drop` wait for workers to finish (default 30 s); past it the
    /// threads still running are left behind and counted in the
    /// [`PoolShutdown`] report.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// What a pool's shutdown left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolShutdown {
    /// Worker threads still running a task at the shutdown timeout, left
    /// behind (detached).
    pub left_running: usize,
}

/// Counts of a pool, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Tasks waiting in the queue.
    pub queued: usize,
    /// Workers running a task.
    pub active: usize,
    /// Worker threads (not counting lost ones).
    pub threads: usize,
    /// Threads given up on after a timeout, still running their task.
    pub lost: usize,
    /// Workers not replaced because [`PoolOptions::max_lost_threads`] was
    /// reached; each comes back when a lost thread returns.
    pub missing: usize,
    /// Async [`submit`](WorkerPool::submit)s waiting for room in the queue.
    pub waiting: usize,
}

struct Metrics {
    outcomes: Family<Counter>,
    duration: Histogram,
}

struct Shared<S> {
    name: Arc<str>,
    // A lock-free bounded MPMC channel: submitters and workers never take
    // a shared lock to hand a task over.
    tx: crossbeam_channel::Sender<Item<S>>,
    rx: crossbeam_channel::Receiver<Item<S>>,
    space_async: tokio::sync::Notify,
    space_waiters: AtomicUsize,
    closed: AtomicBool,
    active: AtomicUsize,
    lost: AtomicUsize,
    missing: AtomicUsize,
    /// Workers whose state factory is panicking (retried with backoff).
    failing: AtomicUsize,
    max_lost: usize,
    shutdown_timeout: Duration,
    threads: Mutex<Vec<(u64, JoinHandle<()>)>>,
    next_worker: AtomicU64,
    factory: Box<dyn Fn() -> S + Send + Sync>,
    default_timeout: Option<Duration>,
    metrics: Option<Metrics>,
    watchdog: Watchdog,
}

/// A pool of worker threads, each with its own state `S` (`()` for plain
/// pools).
pub struct WorkerPool<S: Send + 'static = ()> {
    shared: Arc<Shared<S>>,
    watchdog: Option<JoinHandle<()>>,
}

impl<S: Send + 'static> fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("name", &self.shared.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl WorkerPool<()> {
    /// A pool of stateless workers.
    pub fn new(options: PoolOptions) -> Self {
        Self::with_state(options, || ())
    }
}

impl<S: Send + 'static> WorkerPool<S> {
    /// A pool whose every worker owns a state made by `factory` (made again
    /// when a worker is replaced after a panic or a timeout).
    pub fn with_state(
        options: PoolOptions,
        factory: impl Fn() -> S + Send + Sync + 'static,
    ) -> Self {
        let metrics = options
            .metrics
            .then(|| metrics(crate::metrics::global(), &options.name))
            .flatten();
        let (tx, rx) = crossbeam_channel::bounded(options.queue);
        let shared = Arc::new(Shared {
            name: options.name.as_str().into(),
            tx,
            rx,
            space_async: tokio::sync::Notify::new(),
            space_waiters: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            missing: AtomicUsize::new(0),
            failing: AtomicUsize::new(0),
            max_lost: options.max_lost_threads.unwrap_or(options.threads),
            shutdown_timeout: options.shutdown_timeout,
            threads: Mutex::new(Vec::new()),
            next_worker: AtomicU64::new(0),
            factory: Box::new(factory),
            default_timeout: options.timeout,
            metrics,
            watchdog: Watchdog::default(),
        });
        if let Some(m) = &shared.metrics {
            attach_gauges(crate::metrics::global(), &shared, m);
            let weak = Arc::downgrade(&shared);
            crate::health::global().register(
                format!("workers.{}", options.name),
                crate::health::CheckOptions::default().critical(false),
                move || {
                    let health = weak
                        .upgrade()
                        .map_or_else(crate::health::Health::unknown, |s| pool_health(&s));
                    async move { health }
                },
            );
        }
        for _ in 0..options.threads {
            start_worker(&shared);
        }
        let weak = Arc::downgrade(&shared);
        let watchdog = std::thread::Builder::new()
            .name(format!("{}-watchdog", options.name))
            .spawn(move || watchdog_loop(weak))
            .ok();
        WorkerPool { shared, watchdog }
    }

    /// Counts now.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            queued: self.shared.rx.len(),
            active: self.shared.active.load(Ordering::Acquire),
            threads: self.shared.threads.lock().len(),
            lost: self.shared.lost.load(Ordering::Acquire),
            missing: self.shared.missing.load(Ordering::Acquire),
            waiting: self.shared.space_waiters.load(Ordering::Acquire),
        }
    }

    /// The pool's health: DOWN while no worker can start (the state
    /// factory panics on every one), DEGRADED while some cannot or workers
    /// are missing (lost threads at their cap), else UP, with the counts as
    /// details. Pools with
    /// metrics also report it in the global health registry as
    /// `workers.<name>` (non-critical).
    pub fn health(&self) -> crate::health::Health {
        pool_health(&self.shared)
    }

    fn job<T, F>(&self, f: F, timeout: Option<Duration>) -> (Job<S>, TaskHandle<T>)
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let reply: Reply<T> = Arc::new(Mutex::new(Some(tx)));
        let (r1, r2, r3) = (Arc::clone(&reply), Arc::clone(&reply), reply);
        // The task runs as a child of the span current at submission.
        let parent = crate::trace::Active::capture();
        let job = Job {
            run: Box::new(move |state: &mut S| {
                let outcome =
                    parent.run(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(state))));
                let (result, status) = match outcome {
                    Ok(v) => (Ok(v), Ok(())),
                    Err(p) => {
                        let m = panic_message(&p);
                        (
                            Err(TaskError::Panicked(m.clone())),
                            Err(TaskError::Panicked(m)),
                        )
                    }
                };
                if let Some(tx) = r1.lock().take() {
                    let _ = tx.send(result);
                }
                status
            }),
            cancel: Some(Box::new(move |error| {
                if let Some(tx) = r2.lock().take() {
                    let _ = tx.send(Err(error));
                }
            })),
            timeout: timeout.or(self.shared.default_timeout),
            on_timeout: Some(Box::new(move |after| match r3.lock().take() {
                Some(tx) => {
                    let _ = tx.send(Err(TaskError::TimedOut(after)));
                    true
                }
                None => false,
            })),
        };
        (job, TaskHandle { rx })
    }

    /// Queues `f` without waiting for a result (fire and forget), if there
    /// is room now. A panic is counted and logged, and the worker replaced.
    ///
    /// # Errors
    /// [`TaskError::QueueFull`], or [`TaskError::Cancelled`] after shutdown.
    pub fn spawn<F>(&self, f: F) -> Result<(), TaskError>
    where
        F: FnOnce(&mut S) + Send + 'static,
    {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(self.rejected(TaskError::Cancelled));
        }
        let parent = crate::trace::Active::capture();
        let job = Job {
            run: Box::new(move |state: &mut S| {
                parent
                    .run(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(state))))
                    .map_err(|p| TaskError::Panicked(panic_message(&p)))
            }),
            cancel: None,
            timeout: self.shared.default_timeout,
            on_timeout: None,
        };
        self.push(job)
    }

    fn push(&self, job: Job<S>) -> Result<(), TaskError> {
        match self.shared.tx.try_send(Item::Task(job)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                Err(self.rejected(TaskError::QueueFull))
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                Err(self.rejected(TaskError::Cancelled))
            }
        }
    }

    /// Queues `f` if there is room now.
    ///
    /// # Errors
    /// [`TaskError::QueueFull`], or [`TaskError::Cancelled`] after shutdown.
    pub fn try_submit<T, F>(&self, f: F) -> Result<TaskHandle<T>, TaskError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        self.try_submit_timeout(f, None)
    }

    /// [`try_submit`](Self::try_submit) with a timeout for this task.
    ///
    /// # Errors
    /// As `try_submit`.
    pub fn try_submit_timeout<T, F>(
        &self,
        f: F,
        timeout: Option<Duration>,
    ) -> Result<TaskHandle<T>, TaskError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(self.rejected(TaskError::Cancelled));
        }
        let (job, handle) = self.job(f, timeout);
        self.push(job).map(|()| handle)
    }

    fn rejected(&self, e: TaskError) -> TaskError {
        count(&self.shared, "rejected");
        e
    }

    /// Queues `f`, blocking the thread while the queue is full.
    ///
    /// # Errors
    /// [`TaskError::Cancelled`] after shutdown.
    pub fn submit_blocking<T, F>(&self, f: F) -> Result<TaskHandle<T>, TaskError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(self.rejected(TaskError::Cancelled));
        }
        let (job, handle) = self.job(f, None);
        self.shared
            .tx
            .send(Item::Task(job))
            .map_err(|_| self.rejected(TaskError::Cancelled))?;
        Ok(handle)
    }

    /// Queues `f`, waiting (asynchronously) while the queue is full.
    ///
    /// # Errors
    /// [`TaskError::Cancelled`] after shutdown.
    pub async fn submit<T, F>(&self, f: F) -> Result<TaskHandle<T>, TaskError>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (job, handle) = self.job(f, None);
        let mut item = Item::Task(job);
        // Counted while waiting; uncounted however the wait ends, also when
        // this future is dropped (a cancelled or timed-out submit).
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            let space = self.shared.space_async.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(self.rejected(TaskError::Cancelled));
            }
            match self.shared.tx.try_send(item) {
                Ok(()) => return Ok(handle),
                Err(crossbeam_channel::TrySendError::Full(back)) => item = back,
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                    return Err(self.rejected(TaskError::Cancelled))
                }
            }
            if waiting.is_none() {
                // Workers only signal space when someone waits for it;
                // re-check after registering so a freed place is not missed.
                self.shared.space_waiters.fetch_add(1, Ordering::SeqCst);
                waiting = Some(Waiting(&self.shared.space_waiters));
                continue;
            }
            space.await;
        }
    }

    /// Refuses new tasks, lets queued ones finish, and joins every worker,
    /// for up to the [shutdown timeout](PoolOptions::shutdown_timeout).
    pub fn shutdown(mut self) -> PoolShutdown {
        self.stop(false)
    }

    /// Refuses new tasks, cancels queued ones ([`TaskError::Cancelled`]),
    /// lets running ones finish, and joins every worker, for up to the
    /// [shutdown timeout](PoolOptions::shutdown_timeout).
    pub fn shutdown_now(mut self) -> PoolShutdown {
        self.stop(true)
    }

    fn stop(&mut self, cancel_queued: bool) -> PoolShutdown {
        let deadline = Instant::now() + self.shared.shutdown_timeout;
        let mut left_running = 0;
        self.shared.closed.store(true, Ordering::Release);
        if cancel_queued {
            while let Ok(item) = self.shared.rx.try_recv() {
                if let Item::Task(job) = item {
                    if let Some(cancel) = job.cancel {
                        cancel(TaskError::Cancelled);
                    }
                    count(&self.shared, "cancelled");
                }
            }
        }
        self.shared.space_async.notify_waiters();
        // Replacements can still be started while we join; loop until none.
        loop {
            let threads: Vec<(u64, JoinHandle<()>)> =
                std::mem::take(&mut *self.shared.threads.lock());
            if threads.is_empty() {
                break;
            }
            // One stop marker per worker, behind every queued task (sent per
            // round, so a replacement started meanwhile gets one too).
            for _ in 0..threads.len() {
                // Never blocks past the deadline on a full queue.
                let wait = deadline.saturating_duration_since(Instant::now());
                let _ = self.shared.tx.send_timeout(Item::Stop, wait);
            }
            for (_, t) in threads {
                while !t.is_finished() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if t.is_finished() {
                    let _ = t.join();
                } else {
                    left_running += 1;
                }
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if left_running > 0 {
            tracing::warn!(target: "cortex::workers", pool = %self.shared.name, left_running, timeout = ?self.shared.shutdown_timeout, "worker pool shutdown timed out; threads still running were left behind");
        }
        self.shared.watchdog.stop();
        if let Some(w) = self.watchdog.take() {
            let _ = w.join();
        }
        if self.shared.metrics.is_some() {
            crate::health::global().remove(&format!("workers.{}", self.shared.name));
        }
        PoolShutdown { left_running }
    }
}

impl<S: Send + 'static> Drop for WorkerPool<S> {
    fn drop(&mut self) {
        if self.watchdog.is_some() {
            let _ = self.stop(true);
        }
    }
}

/// The caller's side of a submitted task: `.await` it, or
/// [`wait`](TaskHandle::wait) from a plain thread.
#[derive(Debug)]
pub struct TaskHandle<T> {
    rx: oneshot::Receiver<Result<T, TaskError>>,
}

impl<T> TaskHandle<T> {
    /// Blocks until the task ends. Do not call it on an async worker thread;
    /// `.await` the handle there.
    ///
    /// # Errors
    /// The task's [`TaskError`].
    pub fn wait(self) -> Result<T, TaskError> {
        self.rx.blocking_recv().unwrap_or(Err(TaskError::Cancelled))
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(TaskError::Cancelled)))
    }
}

fn metrics(registry: &Registry, pool: &str) -> Option<Metrics> {
    let outcomes = registry
        .counter_family(
            "cortex_worker_pool_tasks_total",
            "Tasks of a worker pool, by outcome.",
            &["pool", "outcome"],
        )
        .ok()?;
    for outcome in [
        "completed",
        "panicked",
        "timed_out",
        "rejected",
        "cancelled",
        "factory_panicked",
    ] {
        let _ = outcomes.with_labels(&[pool, outcome]);
    }
    let duration = registry
        .histogram_family(
            "cortex_worker_pool_task_duration_seconds",
            "Time a worker pool's task ran.",
            &["pool"],
            Buckets::default(),
        )
        .and_then(|f| f.with_labels(&[pool]))
        .ok()?;
    Some(Metrics { outcomes, duration })
}

fn attach_gauges<S: Send + 'static>(registry: &Registry, shared: &Arc<Shared<S>>, _m: &Metrics) {
    let name = shared.name.to_string();
    if let Ok(depth) = registry.gauge_family(
        "cortex_worker_pool_queue_depth",
        "Tasks waiting in a worker pool's queue.",
        &["pool"],
    ) {
        let w = Arc::downgrade(shared);
        depth.core().attach_derived(
            &[&name],
            Arc::new(move || w.upgrade().map_or(0.0, |s| s.rx.len() as f64)),
        );
    }
    for (metric, help, read) in [
        (
            "cortex_worker_pool_lost_threads",
            "Threads of a worker pool given up on after a timeout, still running their task.",
            (|s: &Shared<S>| s.lost.load(Ordering::Relaxed)) as fn(&Shared<S>) -> usize,
        ),
        (
            "cortex_worker_pool_missing_workers",
            "Workers of a pool not replaced because its lost threads reached max_lost_threads.",
            |s: &Shared<S>| s.missing.load(Ordering::Relaxed),
        ),
    ] {
        if let Ok(family) = registry.gauge_family(metric, help, &["pool"]) {
            let w = Arc::downgrade(shared);
            family.core().attach_derived(
                &[&name],
                Arc::new(move || w.upgrade().map_or(0.0, |s| read(&s) as f64)),
            );
        }
    }
    if let Ok(active) = registry.gauge_family(
        "cortex_worker_pool_active_workers",
        "Workers of a pool running a task.",
        &["pool"],
    ) {
        let w = Arc::downgrade(shared);
        active.core().attach_derived(
            &[&name],
            Arc::new(move || {
                w.upgrade()
                    .map_or(0.0, |s| s.active.load(Ordering::Relaxed) as f64)
            }),
        );
    }
}

fn pool_health<S>(shared: &Shared<S>) -> crate::health::Health {
    let missing = shared.missing.load(Ordering::Acquire);
    let failing = shared.failing.load(Ordering::Acquire);
    let threads = shared.threads.lock().len();
    let health = if failing > 0 && failing >= threads {
        crate::health::Health::down()
    } else if missing > 0 || failing > 0 {
        crate::health::Health::degraded()
    } else {
        crate::health::Health::up()
    };
    let health = health.with_detail("failing_to_start", failing);
    health
        .with_detail("threads", shared.threads.lock().len())
        .with_detail("lost", shared.lost.load(Ordering::Acquire))
        .with_detail("missing", missing)
}

fn count<S>(shared: &Shared<S>, outcome: &str) {
    if let Some(m) = &shared.metrics {
        let _ = m.outcomes.with(&[&shared.name, outcome], Counter::inc);
    }
}

fn start_worker<S: Send + 'static>(shared: &Arc<Shared<S>>) {
    let id = shared.next_worker.fetch_add(1, Ordering::Relaxed);
    let weak = Arc::downgrade(shared);
    let handle = std::thread::Builder::new()
        .name(format!("{}-{id}", shared.name))
        .spawn(move || worker_loop(weak, id));
    match handle {
        Ok(h) => shared.threads.lock().push((id, h)),
        Err(error) => {
            tracing::error!(target: "cortex::workers", pool = %shared.name, %error, "cannot start a worker thread")
        }
    }
}

/// Why a worker stops taking tasks.
enum Exit {
    Shutdown,
    Replace,
}

/// The worker's state, from the factory; a panicking factory is retried
/// with backoff (10 ms doubling to 1 s), logged and counted, and while no
/// worker of the pool can start, queued tasks fail with
/// [`TaskError::NoWorker`] instead of waiting forever. `None` once the
/// pool shuts down.
fn make_state<S: Send + 'static>(shared: &Shared<S>, id: u64) -> Option<S> {
    let mut backoff = Duration::from_millis(10);
    let mut failing = false;
    let state = loop {
        match std::panic::catch_unwind(AssertUnwindSafe(|| (shared.factory)())) {
            Ok(state) => break Some(state),
            Err(payload) => {
                let message = panic_message(&payload);
                count(shared, "factory_panicked");
                tracing::error!(target: "cortex::workers", pool = %shared.name, worker = id, %message, retry_in = ?backoff, "worker state factory panicked");
                if !failing {
                    failing = true;
                    shared.failing.fetch_add(1, Ordering::AcqRel);
                }
                if shared.failing.load(Ordering::Acquire) >= shared.threads.lock().len() {
                    // No worker can run anything: answer what waits.
                    while let Ok(item) = shared.rx.try_recv() {
                        if let Item::Task(job) = item {
                            if let Some(cancel) = job.cancel {
                                cancel(TaskError::NoWorker(message.clone()));
                            }
                        }
                    }
                }
                if shared.closed.load(Ordering::Acquire) {
                    break None;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    };
    if failing {
        shared.failing.fetch_sub(1, Ordering::AcqRel);
    }
    state
}

fn worker_loop<S: Send + 'static>(weak: Weak<Shared<S>>, id: u64) {
    let Some(shared) = weak.upgrade() else { return };
    let Some(mut state) = make_state(&shared, id) else {
        return;
    };
    let exit = loop {
        let job = match shared.rx.recv() {
            Ok(Item::Task(job)) => Some(job),
            Ok(Item::Stop) | Err(_) => None,
        };
        let Some(job) = job else { break Exit::Shutdown };
        if shared.space_waiters.load(Ordering::SeqCst) > 0 {
            shared.space_async.notify_one();
        }
        shared.active.fetch_add(1, Ordering::AcqRel);
        // The clock is read only when something needs it.
        let started = (job.timeout.is_some() || shared.metrics.is_some()).then(Instant::now);
        // A fire-and-forget task has no caller to answer; it is still
        // watched so a hung worker is replaced.
        let on_timeout = job.on_timeout.unwrap_or_else(|| Box::new(|_| true));
        let ticket = match (job.timeout, started) {
            (Some(t), Some(started)) => Some(shared.watchdog.watch(started + t, t, id, on_timeout)),
            _ => None,
        };
        let result = (job.run)(&mut state);
        let timed_out = ticket.is_some_and(|t| shared.watchdog.finish(t));
        if !timed_out {
            // A timed-out worker was taken off the active count by the
            // watchdog when it gave up on it.
            shared.active.fetch_sub(1, Ordering::AcqRel);
        }
        if let (Some(m), Some(started)) = (&shared.metrics, started) {
            m.duration.observe_duration(started.elapsed());
        }
        if timed_out {
            // The watchdog answered the caller and detached this thread
            // (counting it lost before it could see the timeout, so this
            // never underflows). If the lost-thread cap kept it from
            // starting a replacement, the worker comes back now.
            shared.lost.fetch_sub(1, Ordering::AcqRel);
            let owed = shared
                .missing
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if owed && !shared.closed.load(Ordering::Acquire) {
                tracing::info!(target: "cortex::workers", pool = %shared.name, "a lost thread returned; its worker is back");
                start_worker(&shared);
            }
            break Exit::Replace;
        }
        match result {
            Ok(()) => count(&shared, "completed"),
            Err(_) => {
                count(&shared, "panicked");
                tracing::warn!(target: "cortex::workers", pool = %shared.name, worker = id, "task panicked; replacing the worker");
                if !shared.closed.load(Ordering::Acquire) {
                    start_worker(&shared);
                }
                break Exit::Replace;
            }
        }
    };
    if let Exit::Replace = exit {
        // Leave the list of threads to join: this one is done.
        let mut threads = shared.threads.lock();
        if let Some(pos) = threads.iter().position(|(i, _)| *i == id) {
            threads.swap_remove(pos);
        }
    }
}

/// Watches running tasks' deadlines from its own thread.
#[derive(Default)]
struct Watchdog {
    state: Mutex<WatchState>,
    wake: Condvar,
}

#[derive(Default)]
struct WatchState {
    next: u64,
    running: Vec<Watched>,
    stopped: bool,
    expired: Vec<u64>,
}

struct Watched {
    ticket: u64,
    worker: u64,
    deadline: Instant,
    after: Duration,
    on_timeout: TimeoutFn,
}

impl Watchdog {
    fn watch(&self, deadline: Instant, after: Duration, worker: u64, on_timeout: TimeoutFn) -> u64 {
        let mut s = self.state.lock();
        s.next += 1;
        let ticket = s.next;
        s.running.push(Watched {
            ticket,
            worker,
            deadline,
            after,
            on_timeout,
        });
        drop(s);
        self.wake.notify_one();
        ticket
    }

    /// The task ended; whether the watchdog had already timed it out.
    fn finish(&self, ticket: u64) -> bool {
        let mut s = self.state.lock();
        if let Some(pos) = s.running.iter().position(|w| w.ticket == ticket) {
            s.running.swap_remove(pos);
            return false;
        }
        if let Some(pos) = s.expired.iter().position(|t| *t == ticket) {
            s.expired.swap_remove(pos);
            return true;
        }
        false
    }

    fn stop(&self) {
        self.state.lock().stopped = true;
        self.wake.notify_one();
    }
}

fn watchdog_loop<S: Send + 'static>(weak: Weak<Shared<S>>) {
    let Some(shared) = weak.upgrade() else { return };
    let dog = &shared.watchdog;
    loop {
        let mut s = dog.state.lock();
        if s.stopped {
            return;
        }
        let now = Instant::now();
        let mut fired = Vec::new();
        let mut i = 0;
        while i < s.running.len() {
            if s.running[i].deadline <= now {
                let w = s.running.swap_remove(i);
                // `false`: the task finished just now and answered its
                // caller itself; its worker carries on as usual.
                if (w.on_timeout)(w.after) {
                    fired.push(w.worker);
                    // Counted before the worker can see it expired.
                    shared.lost.fetch_add(1, Ordering::AcqRel);
                    s.expired.push(w.ticket);
                }
            } else {
                i += 1;
            }
        }
        if fired.is_empty() {
            // Sleep until the nearest deadline, or until a task is watched
            // or the pool stops.
            match s.running.iter().map(|w| w.deadline).min() {
                Some(deadline) => {
                    dog.wake.wait_until(&mut s, deadline);
                }
                None => dog.wake.wait(&mut s),
            }
            continue;
        }
        drop(s);
        for worker in fired {
            count(&shared, "timed_out");
            shared.active.fetch_sub(1, Ordering::AcqRel);
            // Detach the hung thread: a shutdown must not wait for it.
            {
                let mut threads = shared.threads.lock();
                if let Some(pos) = threads.iter().position(|(i, _)| *i == worker) {
                    drop(threads.swap_remove(pos));
                }
            }
            if shared.closed.load(Ordering::Acquire) {
                continue;
            }
            let lost = shared.lost.load(Ordering::Acquire);
            if lost > shared.max_lost {
                let missing = shared.missing.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::warn!(target: "cortex::workers", pool = %shared.name, lost, missing, "task timed out at the lost-thread cap; its worker is not replaced until a lost thread returns");
            } else {
                tracing::warn!(target: "cortex::workers", pool = %shared.name, "task timed out; its worker is given up on and replaced");
                start_worker(&shared);
            }
        }
    }
}
