//! How a pool is built, what it reports, and why a task gave no value.

use std::time::Duration;

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

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub(super) name: String,
    pub(super) threads: usize,
    pub(super) queue: usize,
    pub(super) timeout: Option<Duration>,
    pub(super) metrics: bool,
    pub(super) max_lost_threads: Option<usize>,
    pub(super) shutdown_timeout: Duration,
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

    /// How long [`shutdown`](super::WorkerPool::shutdown), `shutdown_now` and
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
    /// Async [`submit`](super::WorkerPool::submit)s waiting for room in the queue.
    pub waiting: usize,
}
