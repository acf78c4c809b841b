//! Bulkhead: at most `max_concurrent` calls at once; callers wait at most
//! `max_wait` for a place (zero: rejected at once). Works for async and
//! sync callers, which share the same places.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{BulkheadConfig, ConfigError, Error};
use crate::metrics::{Counter, Registry};

struct Inner {
    name: Arc<str>,
    max: AtomicU32,
    max_wait_nanos: AtomicU64,
    in_use: AtomicU32,
    notify: tokio::sync::Notify,
    async_waiters: AtomicU32,
    sync_waiters: AtomicU32,
    lock: Mutex<()>,
    cond: Condvar,
    rejected: Counter,
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
            .field("max_concurrent", &self.inner.max.load(Ordering::Relaxed))
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
        // SeqCst pairs with the waiters' registration: either a waiter sees
        // this place free, or this sees the waiter and wakes it.
        self.inner.in_use.fetch_sub(1, Ordering::SeqCst);
        if self.inner.async_waiters.load(Ordering::SeqCst) > 0 {
            self.inner.notify.notify_one();
        }
        if self.inner.sync_waiters.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this wake-up after a waiter's check.
            let _guard = self.inner.lock.lock();
            self.inner.cond.notify_one();
        }
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
                max: AtomicU32::new(config.max_concurrent),
                max_wait_nanos: AtomicU64::new(nanos(config.max_wait)),
                in_use: AtomicU32::new(0),
                notify: tokio::sync::Notify::new(),
                async_waiters: AtomicU32::new(0),
                sync_waiters: AtomicU32::new(0),
                lock: Mutex::new(()),
                cond: Condvar::new(),
                rejected,
            }),
        };
        let weak = Arc::downgrade(&bulkhead.inner);
        let available = metrics
            .gauge_family(
                "cortex_bulkhead_available_concurrent_calls",
                "Free places in a bulkhead.",
                &["name"],
            )
            .map_err(conflict)?;
        let w = weak.clone();
        available.core().attach_derived(
            &[name],
            Arc::new(move || {
                w.upgrade().map_or(0.0, |i| {
                    f64::from(
                        i.max
                            .load(Ordering::Relaxed)
                            .saturating_sub(i.in_use.load(Ordering::Relaxed)),
                    )
                })
            }),
        );
        let max = metrics
            .gauge_family(
                "cortex_bulkhead_max_allowed_concurrent_calls",
                "A bulkhead's limit.",
                &["name"],
            )
            .map_err(conflict)?;
        max.core().attach_derived(
            &[name],
            Arc::new(move || {
                weak.upgrade()
                    .map_or(0.0, |i| f64::from(i.max.load(Ordering::Relaxed)))
            }),
        );
        Ok(bulkhead)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Calls running now.
    pub fn in_use(&self) -> u32 {
        self.inner.in_use.load(Ordering::Acquire)
    }

    /// The current configuration.
    pub fn config(&self) -> BulkheadConfig {
        BulkheadConfig {
            max_concurrent: self.inner.max.load(Ordering::Acquire),
            max_wait: Duration::from_nanos(self.inner.max_wait_nanos.load(Ordering::Acquire)),
            fair: true,
        }
    }

    /// Changes the limit and the wait (checked by the same rules as the
    /// attribute). Calls already running keep their places.
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: BulkheadConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.inner
            .max
            .store(config.max_concurrent, Ordering::Release);
        self.inner
            .max_wait_nanos
            .store(nanos(config.max_wait), Ordering::Release);
        self.inner.notify.notify_waiters();
        Ok(())
    }

    /// Takes a place if one is free, without waiting.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`].
    #[inline]
    pub fn try_acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        self.take().ok_or_else(|| self.reject())
    }

    #[inline]
    fn take(&self) -> Option<BulkheadPermit<'_>> {
        let max = self.inner.max.load(Ordering::Acquire);
        self.inner
            .in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| BulkheadPermit { inner: &self.inner })
    }

    #[cold]
    fn reject(&self) -> Error {
        self.inner.rejected.inc();
        Error::BulkheadFull {
            name: Arc::clone(&self.inner.name),
        }
    }

    fn max_wait(&self) -> Duration {
        Duration::from_nanos(self.inner.max_wait_nanos.load(Ordering::Acquire))
    }

    /// Takes a place, waiting up to `max_wait` for one.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`] if none came free in time.
    pub async fn acquire(&self) -> Result<BulkheadPermit<'_>, Error> {
        if let Some(p) = self.take() {
            return Ok(p);
        }
        let wait = self.max_wait();
        if wait.is_zero() {
            return Err(self.reject());
        }
        let deadline = tokio::time::Instant::now() + wait;
        self.inner.async_waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(p) = self.take() {
                break Ok(p);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break self.take().ok_or_else(|| self.reject());
            }
        };
        self.inner.async_waiters.fetch_sub(1, Ordering::SeqCst);
        result
    }

    /// The blocking form of [`acquire`](Self::acquire), for sync callers.
    ///
    /// # Errors
    /// [`Error::BulkheadFull`] if none came free in time.
    pub fn acquire_blocking(&self) -> Result<BulkheadPermit<'_>, Error> {
        if let Some(p) = self.take() {
            return Ok(p);
        }
        let wait = self.max_wait();
        if wait.is_zero() {
            return Err(self.reject());
        }
        let deadline = std::time::Instant::now() + wait;
        let mut guard = self.inner.lock.lock();
        self.inner.sync_waiters.fetch_add(1, Ordering::SeqCst);
        let result = loop {
            if let Some(p) = self.take() {
                break Ok(p);
            }
            if self.inner.cond.wait_until(&mut guard, deadline).timed_out() {
                break self.take().ok_or_else(|| self.reject());
            }
        };
        self.inner.sync_waiters.fetch_sub(1, Ordering::SeqCst);
        result
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

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
