//! Bulkhead: at most `max_concurrent` calls at once; callers wait at most
//! `max_wait` for a place (zero: rejected at once). Async and sync callers
//! share the same places and the same queue.
//!
//! Waiting callers get places in arrival order (`fair`, the default, as
//! Resilience4j's `SemaphoreBulkhead`): a place given back goes straight to
//! the first waiter. With `fair = false` a newcomer may take a place that
//! comes free before the first waiter does. A waiter that gives up (its
//! wait ran out, or its future was dropped) leaves no trace: it takes
//! itself out of the queue, or passes on a place that reached it meanwhile.

mod queue;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use self::queue::{Entry, Places, Waiter, Wake};
use super::events::Hooks;
use super::ring::EventRing;
use super::{BulkheadConfig, ConfigError, Error};
use crate::metrics::{Counter, Registry};

/// What happened in a bulkhead, as [`Bulkhead::on_event`] hooks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BulkheadEvent {
    /// A call got a place.
    Permitted,
    /// A call got no place within its wait.
    Rejected,
    /// A call gave its place back.
    Finished,
}

struct Inner {
    name: Arc<str>,
    places: Places,
    max_wait_nanos: AtomicU64,
    rejected: Counter,
    events: Hooks<BulkheadEvent>,
    ring: EventRing,
}

/// A bulkhead. Cheap to clone.
///
/// ```
/// use cortex::resilience::{Bulkhead, BulkheadConfig};
///
/// let bulkhead = Bulkhead::new("doc-reports", BulkheadConfig { max_concurrent: 1, ..Default::default() })?;
/// let first = bulkhead.try_acquire().expect("a free place");
/// assert!(bulkhead.try_acquire().is_err(), "full: rejected at once");
/// drop(first);
/// assert!(bulkhead.try_acquire().is_ok());
/// # Ok::<(), cortex::resilience::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Bulkhead {
    inner: Arc<Inner>,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.inner.name)
            .field("in_use", &self.in_use())
            .field("waiting", &self.waiting())
            .field(
                "max_concurrent",
                &self.inner.places.max.load(Ordering::Relaxed),
            )
            .finish()
    }
}

/// A place in the bulkhead, given back when dropped.
#[must_use = "the place is given back as soon as the permit is dropped"]
pub struct BulkheadPermit<'a> {
    inner: &'a Inner,
}

impl fmt::Debug for BulkheadPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadPermit")
            .field("bulkhead", &self.inner.name)
            .finish()
    }
}

impl Drop for BulkheadPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.inner.give_back();
    }
}

/// A place that owns a handle to its bulkhead, so it can move into a
/// spawned task (`'static`).
#[must_use = "the place is given back as soon as the permit is dropped"]
pub struct OwnedBulkheadPermit {
    bulkhead: Bulkhead,
}

impl fmt::Debug for OwnedBulkheadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedBulkheadPermit")
            .field("bulkhead", &self.bulkhead.inner.name)
            .finish()
    }
}

impl Drop for OwnedBulkheadPermit {
    fn drop(&mut self) {
        self.bulkhead.inner.give_back();
    }
}

impl Inner {
    #[inline]
    fn give_back(&self) {
        self.places.release();
        self.events.emit(|| BulkheadEvent::Finished);
    }

    #[inline]
    fn permitted(&self) {
        self.events.emit(|| BulkheadEvent::Permitted);
    }

    #[cold]
    fn reject(&self) -> Error {
        self.rejected.inc();
        self.events.emit(|| BulkheadEvent::Rejected);
        self.ring.record_rejection("CALL_REJECTED", String::new);
        Error::BulkheadFull {
            name: Arc::clone(&self.name),
        }
    }

    fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.max_wait_nanos.load(Ordering::Acquire))
    }
}

impl Bulkhead {
    /// The bulkhead registered under `name`, created with `config` if there
    /// is none; its metrics go to the global registry.
    ///
    /// # Errors
    /// The configuration breaks a rule, or `name` exists with another
    /// configuration.
    pub fn new(name: &str, config: BulkheadConfig) -> Result<Self, ConfigError> {
        super::registry::bulkhead_or_create(name, config, crate::metrics::global())
    }

    pub(crate) fn build(
        name: &str,
        config: BulkheadConfig,
        metrics: &Registry,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let conflict = super::metrics_conflict("bulkhead", name);
        let rejected = metrics
            .counter_family(
                "cortex_bulkhead_rejected_total",
                "Calls a bulkhead rejected.",
                &["name"],
            )
            .and_then(|f| f.with_labels(&[name]))
            .map_err(conflict)?;
        let bulkhead = Bulkhead {
            inner: Arc::new(Inner {
                name: name.into(),
                places: Places::new(config.max_concurrent, config.fair),
                max_wait_nanos: AtomicU64::new(nanos(config.max_wait)),
                rejected,
                events: Hooks::default(),
                ring: EventRing::new("bulkhead", name.into()),
            }),
        };
        let gauge = |metric: &str, help: &str, f: fn(&Inner) -> f64| {
            let weak = Arc::downgrade(&bulkhead.inner);
            metrics
                .gauge_family(metric, help, &["name"])
                .map(|family| {
                    family.core().attach_derived(
                        &[name],
                        Arc::new(move || weak.upgrade().map_or(0.0, |i| f(&i))),
                    )
                })
                .map_err(conflict)
        };
        gauge(
            "cortex_bulkhead_available_concurrent_calls",
            "Free places in a bulkhead.",
            |i| {
                f64::from(
                    i.places
                        .max
                        .load(Ordering::Relaxed)
                        .saturating_sub(i.places.in_use()),
                )
            },
        )?;
        gauge(
            "cortex_bulkhead_max_allowed_concurrent_calls",
            "A bulkhead's limit.",
            |i| f64::from(i.places.max.load(Ordering::Relaxed)),
        )?;
        gauge(
            "cortex_bulkhead_waiting_calls",
            "Calls waiting for a place in a bulkhead.",
            |i| f64::from(i.places.waiting()),
        )?;
        Ok(bulkhead)
    }

    /// The name.
    pub(crate) fn ring(&self) -> &EventRing {
        &self.inner.ring
    }

    /// The name it is registered under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Calls running now.
    pub fn in_use(&self) -> u32 {
        self.inner.places.in_use()
    }

    /// Calls waiting for a place now.
    pub fn waiting(&self) -> u32 {
        self.inner.places.waiting()
    }

    /// The current configuration.
    pub fn config(&self) -> BulkheadConfig {
        BulkheadConfig {
            max_concurrent: self.inner.places.max.load(Ordering::Acquire),
            max_wait: self.inner.max_wait(),
            fair: self.inner.places.fair.load(Ordering::Acquire),
        }
    }

    /// Changes the limit, the wait and fairness (checked by the same rules
    /// as the attribute). Calls already running keep their places; a larger
    /// limit goes to waiting callers first, async and sync alike.
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: BulkheadConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let places = &self.inner.places;
        places.fair.store(config.fair, Ordering::Release);
        places.max.store(config.max_concurrent, Ordering::Release);
        self.inner
            .max_wait_nanos
            .store(nanos(config.max_wait), Ordering::Release);
        places.admit();
        tracing::info!(target: "cortex::resilience", bulkhead = %self.inner.name, ?config, "bulkhead reconfigured");
        Ok(())
    }

    /// Calls `hook` whenever a call gets a place, is rejected, or gives its
    /// place back. Costs nothing while no hook is registered.
    pub fn on_event(&self, hook: impl Fn(&BulkheadEvent) + Send + Sync + 'static) {
        self.inner.events.add(hook);
    }

    /// Calls `hook` for every rejected call.
    pub fn on_rejected(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.on_event(move |e| {
            if *e == BulkheadEvent::Rejected {
                hook();
            }
        });
    }

    /// Takes a place if one is free, without waiting.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`].
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        if self.inner.places.try_take() {
            self.inner.permitted();
            Ok(BulkheadPermit { inner: &self.inner })
        } else {
            Err(self.inner.reject())
        }
    }

    /// Takes a place, waiting up to `max_wait` for one, in arrival order.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`] if none came within the wait.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        self.wait_async().await?;
        Ok(BulkheadPermit { inner: &self.inner })
    }

    /// Like [`acquire`](Self::acquire), with a permit that owns a handle to
    /// the bulkhead, to move into a spawned task.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`] if no place came within the wait.
    pub async fn acquire_owned(&self) -> Result<OwnedBulkheadPermit, Error> {
        self.wait_async().await?;
        Ok(OwnedBulkheadPermit {
            bulkhead: self.clone(),
        })
    }

    async fn wait_async(&self) -> Result<(), Error> {
        let inner = &self.inner;
        if inner.places.try_take() {
            inner.permitted();
            return Ok(());
        }
        let wait = inner.max_wait();
        if wait.is_zero() {
            return Err(inner.reject());
        }
        let deadline = tokio::time::Instant::now() + wait;
        let waiter = match inner.places.enter() {
            Entry::Took => {
                inner.permitted();
                return Ok(());
            }
            Entry::Waiting(w) => w,
        };
        loop {
            let waiting = Waiting {
                places: &inner.places,
                waiter: Some(Arc::clone(&waiter)),
            };
            match tokio::time::timeout_at(deadline, waiting).await {
                Ok(Granted::Place) => {
                    inner.permitted();
                    return Ok(());
                }
                Ok(Granted::Try) => {
                    // Not fair: a place came free; take it if nobody was
                    // faster, else wait again, first in line.
                    if inner.places.requeue(&waiter) {
                        inner.permitted();
                        return Ok(());
                    }
                }
                Err(_) => {
                    // `Waiting` was dropped on the timeout and took itself
                    // out, passing on any place that reached it.
                    return Err(inner.reject());
                }
            }
        }
    }

    /// The blocking form of [`acquire`](Self::acquire), for sync callers.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`] if none came within the wait.
    pub fn acquire_blocking(&self) -> Result<BulkheadPermit<'_>, Error> {
        let inner = &self.inner;
        if inner.places.try_take() {
            inner.permitted();
            return Ok(BulkheadPermit { inner });
        }
        let wait = inner.max_wait();
        if wait.is_zero() {
            return Err(inner.reject());
        }
        let deadline = std::time::Instant::now() + wait;
        let waiter = match inner.places.enter() {
            Entry::Took => {
                inner.permitted();
                return Ok(BulkheadPermit { inner });
            }
            Entry::Waiting(w) => w,
        };
        loop {
            *waiter.wake.lock() = Wake::Thread(std::thread::current());
            if waiter.granted.load(Ordering::Acquire) {
                inner.permitted();
                return Ok(BulkheadPermit { inner });
            }
            if waiter.notified.swap(false, Ordering::AcqRel) {
                if inner.places.requeue(&waiter) {
                    inner.permitted();
                    return Ok(BulkheadPermit { inner });
                }
                continue;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                if inner.places.leave(&waiter) {
                    inner.permitted();
                    return Ok(BulkheadPermit { inner });
                }
                return Err(inner.reject());
            }
            std::thread::park_timeout(deadline - now);
        }
    }

    /// Runs `f` in a place of the bulkhead.
    ///
    /// # Errors
    /// `f`'s error, or [`Error::BulkheadFull`] converted into `E`.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let _permit = self.acquire().await?;
        f().await
    }

    /// Runs `f` in a place of the bulkhead, from sync code.
    ///
    /// # Errors
    /// `f`'s error, or [`Error::BulkheadFull`] converted into `E`.
    pub fn call_sync<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        E: From<Error>,
    {
        let _permit = self.acquire_blocking()?;
        f()
    }
}

/// What woke a waiter.
enum Granted {
    /// A place was handed to it.
    Place,
    /// A place came free (not fair): try to take it.
    Try,
}

/// An async waiter's wait. Dropped before it ends (a timeout, a cancelled
/// caller), it takes the waiter out of the queue; a place that reached it
/// meanwhile is passed on.
struct Waiting<'a> {
    places: &'a Places,
    waiter: Option<Arc<Waiter>>,
}

impl Future for Waiting<'_> {
    type Output = Granted;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Granted> {
        let Some(waiter) = self.waiter.as_ref() else {
            return Poll::Pending;
        };
        *waiter.wake.lock() = Wake::Task(cx.waker().clone());
        if waiter.granted.load(Ordering::Acquire) {
            self.waiter = None;
            return Poll::Ready(Granted::Place);
        }
        if waiter.notified.swap(false, Ordering::AcqRel) {
            self.waiter = None;
            return Poll::Ready(Granted::Try);
        }
        Poll::Pending
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            if self.places.leave(&waiter) {
                // A place reached it as it gave up: pass it on.
                self.places.release();
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
