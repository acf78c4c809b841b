//! Timeout: an async call that takes too long is dropped (its future is
//! never polled again) and the caller gets [`Error::Timeout`].

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::events::Hooks;
use super::ring::EventRing;
use super::{ConfigError, Error};
use crate::metrics::{Counter, Registry};

/// How a call under a timeout ended, as [`Timeout::on_event`] hooks see
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutEvent {
    /// It returned `Ok` in time.
    Success,
    /// It returned `Err` in time.
    Error,
    /// It took too long and was dropped.
    TimedOut,
}

struct Inner {
    name: Arc<str>,
    nanos: AtomicU64,
    successful: Counter,
    failed: Counter,
    timed_out: Counter,
    events: Hooks<TimeoutEvent>,
    ring: EventRing,
}

/// A timeout policy. Cheap to clone.
///
/// ```
/// use cortex::resilience::{Error, Timeout};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let timeout = Timeout::new("doc-slow", Duration::from_millis(100))?;
/// let r: Result<(), Error> = timeout
///     .call(async {
///         tokio::time::sleep(Duration::from_secs(5)).await;
///         Ok(())
///     })
///     .await;
/// assert!(matches!(r, Err(Error::Timeout { .. })));
/// # Ok::<(), cortex::resilience::ConfigError>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Timeout {
    inner: Arc<Inner>,
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("name", &self.inner.name)
            .field("after", &self.duration())
            .finish()
    }
}

impl Timeout {
    /// The timeout registered under `name`, created if there is none.
    ///
    /// # Errors
    /// A zero duration, or `name` exists with another duration.
    pub fn new(name: &str, after: Duration) -> Result<Self, ConfigError> {
        super::registry::timeout_or_create(name, after, crate::metrics::global())
    }

    pub(crate) fn build(
        name: &str,
        after: Duration,
        metrics: &Registry,
    ) -> Result<Self, ConfigError> {
        cortex_rules::resilience::check_timeout(after)?;
        let conflict = super::metrics_conflict("timeout", name);
        let calls = metrics
            .counter_family(
                "cortex_timeout_calls_total",
                "Calls under a timeout, by kind.",
                &["name", "kind"],
            )
            .map_err(conflict)?;
        let kind = |k: &str| calls.with_labels(&[name, k]).map_err(conflict);
        Ok(Timeout {
            inner: Arc::new(Inner {
                name: name.into(),
                nanos: AtomicU64::new(u64::try_from(after.as_nanos()).unwrap_or(u64::MAX)),
                successful: kind("successful")?,
                failed: kind("failed")?,
                timed_out: kind("timeout")?,
                events: Hooks::default(),
                ring: EventRing::new("timeout", name.into()),
            }),
        })
    }

    /// Calls `hook` whenever a call ends, in time or not. Costs nothing
    /// while no hook is registered.
    pub fn on_event(&self, hook: impl Fn(&TimeoutEvent) + Send + Sync + 'static) {
        self.inner.events.add(hook);
    }

    pub(crate) fn ring(&self) -> &EventRing {
        &self.inner.ring
    }

    /// The name it is registered under.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The limit.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.inner.nanos.load(Ordering::Acquire))
    }

    /// Changes the limit.
    ///
    /// # Errors
    /// A zero duration; nothing changes then.
    pub fn reconfigure(&self, after: Duration) -> Result<(), ConfigError> {
        cortex_rules::resilience::check_timeout(after)?;
        self.inner.nanos.store(
            u64::try_from(after.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
        Ok(())
    }

    /// Runs `fut`, dropping it when the time is up.
    ///
    /// # Errors
    /// `fut`'s error, or [`Error::Timeout`] converted into `E`.
    pub async fn call<T, E, Fut>(&self, fut: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        match self.run(fut).await {
            Ok(result) => result,
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `fut`; `Err` when the time ran out (the future is dropped).
    pub(crate) async fn run<T, E, Fut>(&self, fut: Fut) -> Result<Result<T, E>, Error>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let after = self.duration();
        match tokio::time::timeout(after, fut).await {
            Ok(Ok(v)) => {
                self.inner.successful.inc();
                self.inner.events.emit(|| TimeoutEvent::Success);
                Ok(Ok(v))
            }
            Ok(Err(e)) => {
                self.inner.failed.inc();
                self.inner.events.emit(|| TimeoutEvent::Error);
                self.inner.ring.record("ERROR", String::new);
                Ok(Err(e))
            }
            Err(_) => {
                self.inner.timed_out.inc();
                self.inner.events.emit(|| TimeoutEvent::TimedOut);
                self.inner
                    .ring
                    .record("TIMEOUT", || format!("no answer within {after:?}"));
                Err(Error::Timeout {
                    name: Arc::clone(&self.inner.name),
                    after,
                })
            }
        }
    }
}
