//! The pool itself.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::options::{PoolOptions, PoolShutdown, PoolStats, TaskError};
use super::report::{attach_gauges, count, metrics, pool_health, Metrics};
use super::watchdog::{watchdog_loop, Watchdog};
use super::worker::start_worker;
use crate::util::panic_message;

type Reply<T> = Arc<Mutex<Option<oneshot::Sender<Result<T, TaskError>>>>>;

/// Runs a task on a worker's state; `Err` if it panicked (the caller has
/// already been answered either way).
/// `Ok(false)`: it was cancelled before it started and did not run.
pub(super) type RunFn<S> = Box<dyn FnOnce(&mut S) -> Result<bool, TaskError> + Send>;
/// Answers the caller with a timeout; `false` if it was answered already.
pub(super) type TimeoutFn = Box<dyn Fn(Duration) -> bool + Send + Sync>;

pub(super) enum Item<S> {
    Task(Job<S>),
    /// Sent once per worker at shutdown, after every queued task.
    Stop,
}

pub(super) struct Job<S> {
    pub(super) run: RunFn<S>,
    /// Answers the caller with this error instead of running the task.
    pub(super) cancel: Option<Box<dyn FnOnce(TaskError) + Send>>,
    pub(super) timeout: Option<Duration>,
    pub(super) on_timeout: Option<TimeoutFn>,
}

pub(super) struct Shared<S> {
    pub(super) name: Arc<str>,
    // A lock-free bounded MPMC channel: submitters and workers never take
    // a shared lock to hand a task over.
    pub(super) tx: crossbeam_channel::Sender<Item<S>>,
    pub(super) rx: crossbeam_channel::Receiver<Item<S>>,
    pub(super) space_async: tokio::sync::Notify,
    pub(super) space_waiters: AtomicUsize,
    pub(super) closed: AtomicBool,
    pub(super) active: AtomicUsize,
    pub(super) lost: AtomicUsize,
    pub(super) missing: AtomicUsize,
    /// Workers whose state factory is panicking (retried with backoff).
    pub(super) failing: AtomicUsize,
    pub(super) max_lost: usize,
    pub(super) shutdown_timeout: Duration,
    pub(super) threads: Mutex<Vec<(u64, JoinHandle<()>)>>,
    pub(super) next_worker: AtomicU64,
    pub(super) factory: Box<dyn Fn() -> S + Send + Sync>,
    pub(super) default_timeout: Option<Duration>,
    pub(super) metrics: Option<Metrics>,
    pub(super) watchdog: Watchdog,
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
        let (r1, r2, r3) = (Arc::clone(&reply), Arc::clone(&reply), Arc::clone(&reply));
        let control = Arc::new(Control {
            started: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
        });
        let (c1, c3) = (Arc::clone(&control), Arc::clone(&control));
        // The task runs as a child of the span current at submission.
        let parent = crate::trace::Active::capture();
        let job = Job {
            run: Box::new(move |state: &mut S| {
                {
                    // Cancelled before it started: nothing to run.
                    let reply = r1.lock();
                    if reply.is_none() {
                        return Ok(false);
                    }
                    c1.started.store(true, Ordering::Release);
                }
                let token = CancelToken(Some(c1));
                let outcome = parent
                    .run(|| token.run(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(state)))));
                let (result, status) = match outcome {
                    Ok(v) => (Ok(v), Ok(true)),
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
                    // A task that looks at its token can stop early and
                    // give its thread back.
                    c3.cancelled.store(true, Ordering::Release);
                    true
                }
                None => false,
            })),
        };
        (job, TaskHandle { rx, reply, control })
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
                    .map(|()| true)
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
pub struct TaskHandle<T> {
    rx: oneshot::Receiver<Result<T, TaskError>>,
    reply: Reply<T>,
    control: Arc<Control>,
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("started", &self.control.started.load(Ordering::Acquire))
            .field("cancelled", &self.control.cancelled.load(Ordering::Acquire))
            .finish()
    }
}

/// What a task's handle, its job and its [`CancelToken`] share.
#[derive(Debug)]
struct Control {
    started: AtomicBool,
    cancelled: AtomicBool,
}

/// A task's cancellation flag, for tasks that want to stop early: a task
/// reads its own with [`CancelToken::current`]. It is cancelled by
/// [`TaskHandle::cancel`] and when the task times out.
///
/// ```
/// use cortex::workers::{CancelToken, PoolOptions, WorkerPool};
/// use std::time::Duration;
///
/// let pool = WorkerPool::new(PoolOptions::named("doc-cancel").threads(1).without_metrics());
/// let long = pool
///     .try_submit_timeout(
///         |_| {
///             let token = CancelToken::current();
///             let mut steps = 0;
///             while !token.is_cancelled() && steps < 10_000 {
///                 std::thread::sleep(Duration::from_millis(1));
///                 steps += 1;
///             }
///             steps
///         },
///         Some(Duration::from_millis(30)),
///     )
///     .unwrap();
/// assert!(long.wait().is_err()); // timed out, and the task stopped early
/// pool.shutdown();
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Option<Arc<Control>>);

thread_local! {
    static CURRENT_TOKEN: std::cell::RefCell<Option<CancelToken>> =
        const { std::cell::RefCell::new(None) };
}

impl CancelToken {
    /// The token of the task running on this thread (a token never
    /// cancelled outside a pool's task).
    pub fn current() -> CancelToken {
        CURRENT_TOKEN
            .try_with(|t| t.borrow().clone())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Whether the task was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|c| c.cancelled.load(Ordering::Acquire))
    }

    /// Runs `f` with this token as the thread's current one.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let previous = CURRENT_TOKEN
            .try_with(|t| t.replace(Some(self.clone())))
            .ok()
            .flatten();
        let out = f();
        let _ = CURRENT_TOKEN.try_with(|t| *t.borrow_mut() = previous);
        out
    }
}

impl<T> TaskHandle<T> {
    /// Cancels the task: if it has not started yet it never runs and the
    /// handle answers [`TaskError::Cancelled`] (returns `true`); if it is
    /// running, its [`CancelToken`] is cancelled so it can stop early, and
    /// its result still comes (returns `false`).
    pub fn cancel(&self) -> bool {
        let mut reply = self.reply.lock();
        self.control.cancelled.store(true, Ordering::Release);
        if self.control.started.load(Ordering::Acquire) {
            return false;
        }
        match reply.take() {
            Some(tx) => {
                let _ = tx.send(Err(TaskError::Cancelled));
                true
            }
            None => false,
        }
    }

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
