//! The circuit breaker: closed, open, half-open, disabled and forced-open,
//! with Resilience4j's documented semantics.
//!
//! While closed it counts outcomes in a sliding window (the last N calls, or
//! the calls of the last period) and opens when the failure rate, or the
//! slow-call rate, reaches its threshold once `minimum_calls` are in the
//! window; the rates are judged whenever they can have risen: after a
//! failure or a slow call, when the window first holds `minimum_calls`
//! calls (three failures then a success with `minimum_calls = 4` opens at
//! 75 %), and, in a time window, when old calls (successes too) leave it.
//! Open, it rejects calls with [`Error::CircuitOpen`] until `open_for` has
//! passed (growing with `open_for_backoff` over consecutive openings), then
//! goes half-open, by itself with `automatic_half_open` or on the next
//! call; half-open, it lets exactly `half_open_calls` trial calls through
//! (others are rejected while they run) and closes if their rates stay
//! below the thresholds, or opens again; with `max_wait_in_half_open` it
//! also opens again when the trials have not all finished in time.
//!
//! A call's outcome is classified as Resilience4j does (see [`classify`]):
//! an `Err` counts as a failure when `record_if` says so, is not counted
//! when `ignore_if` says so, and otherwise counts as a success; an `Ok` can
//! count as a failure (`record_result`).
//!
//! The closed path takes no lock: a permit is one atomic load, and a
//! success in a full window writes nothing but the call's sequence number.
//! Every transition moves on a generation counter: a permit given in one
//! episode (before a `reset`, a `reconfigure`, or the next opening) counts
//! in the metrics only, never in a later episode's window or trials.
//!
//! Differences from Resilience4j: slow-call timing (and the call-duration
//! histogram) is off unless `slow_call_threshold` is set, so the closed path
//! reads no clock; a dropped permit (a cancelled call) is ignored and, when
//! half-open, gives its trial place back, unless it ran past the slow-call
//! threshold: then it counts as a slow call.

mod build;
mod core;
pub(crate) mod machine;
#[cfg(test)]
mod model;
mod permit;
mod window;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use self::core::Inner;
use self::machine::code;
pub use self::permit::{classify, CallOutcome, OwnedPermit, Permit};
use super::{CircuitBreakerConfig, ConfigError, Error, OpenHealth};
use crate::health::Health;

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Calls pass and are counted.
    Closed,
    /// Calls are rejected until `open_for` has passed.
    Open,
    /// A limited number of trial calls pass.
    HalfOpen,
    /// Calls pass and nothing is judged.
    Disabled,
    /// Calls are rejected until [`CircuitBreaker::reset`].
    ForcedOpen,
}

const STATES: [State; 5] = [
    State::Closed,
    State::Open,
    State::HalfOpen,
    State::Disabled,
    State::ForcedOpen,
];

impl State {
    fn from_code(code: u64) -> State {
        STATES[usize::try_from(code).unwrap_or(4).min(4)]
    }

    /// The label value: `closed`, `open`, `half_open`, `disabled`,
    /// `forced_open`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::Disabled => "disabled",
            State::ForcedOpen => "forced_open",
        }
    }

    /// The state as Resilience4j and the admin API write it: `CLOSED`,
    /// `OPEN`, `HALF_OPEN`, `DISABLED`, `FORCED_OPEN`.
    pub const fn name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Open => "OPEN",
            State::HalfOpen => "HALF_OPEN",
            State::Disabled => "DISABLED",
            State::ForcedOpen => "FORCED_OPEN",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, as listeners see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The breaker's name.
    pub name: Arc<str>,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
}

/// What happened to one call, as [`CircuitBreaker::on_event`] hooks see
/// it. `elapsed` is known for a breaker that times its calls (one with a
/// `slow_call_threshold`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CircuitBreakerEvent {
    /// A call counted as a success.
    Success {
        /// How long it ran.
        elapsed: Option<Duration>,
    },
    /// A call counted as a failure.
    Error {
        /// How long it ran.
        elapsed: Option<Duration>,
    },
    /// A call whose outcome does not count (`ignore_if`, or a dropped
    /// permit).
    IgnoredError {
        /// How long it ran.
        elapsed: Option<Duration>,
    },
    /// A call the breaker rejected.
    NotPermitted,
}

/// A snapshot of a breaker's numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The state.
    pub state: State,
    /// Failed calls in the window, in percent; `None` below `minimum_calls`.
    pub failure_rate: Option<f64>,
    /// Slow calls in the window, in percent; `None` below `minimum_calls`.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window.
    pub calls_in_window: u64,
    /// Failed calls in the window.
    pub failed_in_window: u64,
    /// Slow calls in the window.
    pub slow_in_window: u64,
    /// Calls rejected since creation.
    pub not_permitted: u64,
}

/// A circuit breaker. Cheap to clone (a shared handle); every instance is
/// registered by name (see [`circuit_breaker`](fn@super::circuit_breaker)).
///
/// ```
/// use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig, State};
///
/// let breaker = CircuitBreaker::new("doc-inventory", CircuitBreakerConfig::default())?;
/// let permit = breaker.acquire()?;   // by hand: acquire, call, record
/// permit.success();
/// assert_eq!(breaker.state(), State::Closed);
/// breaker.force_open();
/// assert!(breaker.acquire().is_err());
/// breaker.reset();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ## Many cores
///
/// A call through a closed breaker reads the state word (written only at
/// transitions) and records a success in a cell of its own thread group:
/// no cache line is written by every core, so a breaker that every core
/// calls through costs each about what it costs one (the `contention` bench
/// in `BENCHMARKS.md`). Failures and slow calls take a short lock, with
/// their position among the window's calls, and every one of them is judged
/// against the thresholds there; a success is judged while the window is
/// still filling up to `minimum_calls` (and, in a time window, when a second
/// turns and old calls leave), since a success in a window that holds
/// `minimum_calls` calls can only lower the rates. Counts stay exact: the
/// window, the metrics and [`stats`](Self::stats) miss no call.
///
/// Memory, beyond the breaker's metric series (which stripe like any other,
/// see [metrics](crate::metrics#many-cores)): a count window of N calls
/// holds 16 bytes per call (N rounded up to a power of two) and a time
/// window 24 bytes per second (likewise rounded), each plus 128 bytes per
/// stripe for its successes (2 KiB on 16 cores, at most 8 KiB).
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish()
    }
}

impl CircuitBreaker {
    /// The breaker registered under `name`, created with `config` if there
    /// is none. Its metrics go to the global registry and it appears in the
    /// global `/health`.
    ///
    /// # Errors
    /// The configuration breaks a rule, or `name` exists with another
    /// configuration (the one it has now, after any `reconfigure`).
    pub fn new(name: &str, config: CircuitBreakerConfig) -> Result<Self, ConfigError> {
        super::registry::breaker_or_create(
            name,
            config,
            crate::metrics::global(),
            Some(crate::health::global()),
        )
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub(crate) fn ring(&self) -> &crate::resilience::ring::EventRing {
        &self.inner.ring
    }

    /// The current state. An open breaker with `automatic_half_open` whose
    /// time is up, or a half-open one past `max_wait_in_half_open`, moves on
    /// when asked.
    pub fn state(&self) -> State {
        self.inner.tick();
        State::from_code(code(self.inner.machine.word()))
    }

    /// The current configuration.
    pub fn config(&self) -> CircuitBreakerConfig {
        self.inner.config()
    }

    /// Asks to make a call. Record the outcome on the permit
    /// ([`Permit::success`], [`Permit::failure`], [`Permit::record`]); a
    /// dropped permit counts as ignored (or slow, past the threshold).
    ///
    /// # Errors
    /// [`Error::CircuitOpen`] when open, forced open, or half-open with every
    /// trial place taken.
    #[inline(always)]
    pub fn acquire(&self) -> Result<Permit<'_>, Error> {
        let grant = self.inner.acquire()?;
        Ok(Permit {
            breaker: self,
            grant,
        })
    }

    /// Like [`acquire`](Self::acquire), with a permit that owns a handle to
    /// the breaker, to move into a spawned task.
    ///
    /// ```
    /// use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let breaker = CircuitBreaker::new("doc-owned", CircuitBreakerConfig::default())?;
    /// let permit = breaker.acquire_owned()?;
    /// tokio::spawn(async move { permit.success() }).await.unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    /// As [`acquire`](Self::acquire).
    pub fn acquire_owned(&self) -> Result<OwnedPermit, Error> {
        let grant = self.inner.acquire()?;
        Ok(OwnedPermit {
            breaker: Some(self.clone()),
            grant,
        })
    }

    /// Runs `f` under the breaker; every `Err` counts as a failure.
    ///
    /// # Errors
    /// `f`'s error, or [`Error::CircuitOpen`] converted into `E`.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.call_with(f, |_| true).await
    }

    /// Runs `f` under the breaker; an `Err` counts as a failure if
    /// `record_if` says so and as a success otherwise (as in Resilience4j).
    ///
    /// # Errors
    /// `f`'s error, or [`Error::CircuitOpen`] converted into `E`.
    pub async fn call_with<T, E, F, Fut>(
        &self,
        f: F,
        record_if: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.call_classified(f, |r| classify(r, &record_if, |_| false, |_| false))
            .await
    }

    /// Runs `f` under the breaker; `outcome` says how its result counts (see
    /// [`classify`] for Resilience4j's rules).
    ///
    /// # Errors
    /// `f`'s error, or [`Error::CircuitOpen`] converted into `E`.
    pub async fn call_classified<T, E, F, Fut>(
        &self,
        f: F,
        outcome: impl Fn(&Result<T, E>) -> CallOutcome,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let permit = self.acquire()?;
        let result = f().await;
        permit.record(outcome(&result));
        result
    }

    /// The synchronous form of [`call_with`](Self::call_with).
    ///
    /// # Errors
    /// `f`'s error, or [`Error::CircuitOpen`] converted into `E`.
    pub fn call_sync<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        record_if: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        E: From<Error>,
    {
        self.call_sync_classified(f, |r| classify(r, &record_if, |_| false, |_| false))
    }

    /// The synchronous form of [`call_classified`](Self::call_classified).
    ///
    /// # Errors
    /// `f`'s error, or [`Error::CircuitOpen`] converted into `E`.
    pub fn call_sync_classified<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        outcome: impl Fn(&Result<T, E>) -> CallOutcome,
    ) -> Result<T, E>
    where
        E: From<Error>,
    {
        let permit = self.acquire()?;
        let result = f();
        permit.record(outcome(&result));
        result
    }

    /// Calls `listener` on every state change, in the order the changes
    /// happened, after the lock that ordered them is released (a listener
    /// may read the breaker, change its state or register another
    /// listener).
    pub fn on_state_change(&self, listener: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.inner.listeners.add(listener);
    }

    /// Calls `hook` for every call: counted as a success or an error,
    /// ignored, or not permitted. Costs nothing while no hook is registered.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig, CircuitBreakerEvent};
    ///
    /// let breaker = CircuitBreaker::new("doc-events", CircuitBreakerConfig::default())?;
    /// let errors = Arc::new(AtomicU32::new(0));
    /// let seen = Arc::clone(&errors);
    /// breaker.on_event(move |e| {
    ///     if let CircuitBreakerEvent::Error { .. } = e {
    ///         seen.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// breaker.acquire()?.failure();
    /// assert_eq!(errors.load(Ordering::Relaxed), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_event(&self, hook: impl Fn(&CircuitBreakerEvent) + Send + Sync + 'static) {
        self.inner.events.add(hook);
    }

    /// Calls `hook` with the duration (if timed) of every call counted as a
    /// success.
    pub fn on_success(&self, hook: impl Fn(Option<Duration>) + Send + Sync + 'static) {
        self.on_event(move |e| {
            if let CircuitBreakerEvent::Success { elapsed } = e {
                hook(*elapsed);
            }
        });
    }

    /// Calls `hook` for every call counted as a failure.
    pub fn on_error(&self, hook: impl Fn(Option<Duration>) + Send + Sync + 'static) {
        self.on_event(move |e| {
            if let CircuitBreakerEvent::Error { elapsed } = e {
                hook(*elapsed);
            }
        });
    }

    /// Calls `hook` for every call whose outcome does not count.
    pub fn on_ignored_error(&self, hook: impl Fn(Option<Duration>) + Send + Sync + 'static) {
        self.on_event(move |e| {
            if let CircuitBreakerEvent::IgnoredError { elapsed } = e {
                hook(*elapsed);
            }
        });
    }

    /// Calls `hook` for every rejected call.
    pub fn on_not_permitted(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.on_event(move |e| {
            if let CircuitBreakerEvent::NotPermitted = e {
                hook();
            }
        });
    }

    /// Closes the breaker and empties its window; trial permits still out
    /// belong to the episode before and count in nothing.
    pub fn reset(&self) {
        self.inner.force(machine::CLOSED);
    }

    /// Rejects every call until [`reset`](Self::reset). Never lost to an
    /// automatic transition decided at the same moment.
    pub fn force_open(&self) {
        self.inner.force(machine::FORCED_OPEN);
    }

    /// Lets every call through and judges nothing until
    /// [`reset`](Self::reset).
    pub fn disable(&self) {
        self.inner.force(machine::DISABLED);
    }

    /// Replaces the configuration (checked by the same rules as the
    /// attribute). The state stays: an open breaker stays open for the rest
    /// of its `open_for`, a half-open one starts its trials over with the
    /// new `half_open_calls`, and the window keeps its calls unless its
    /// kind or size changed. Permits given under the old configuration
    /// count in the metrics only.
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: CircuitBreakerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        self.inner.reconfigure(config);
        tracing::info!(target: "cortex::resilience", circuit_breaker = %self.inner.name, ?config, "circuit breaker reconfigured");
        Ok(())
    }

    /// The breaker's numbers now.
    pub fn stats(&self) -> Stats {
        let state = self.state();
        let config = self.config();
        let totals = self.inner.totals();
        let enough = totals.calls >= u64::from(config.minimum_calls) && totals.calls > 0;
        let pct = |n: u64| enough.then(|| n as f64 * 100.0 / totals.calls as f64);
        Stats {
            state,
            failure_rate: pct(totals.failed),
            slow_call_rate: pct(totals.slow),
            calls_in_window: totals.calls,
            failed_in_window: totals.failed,
            slow_in_window: totals.slow,
            not_permitted: self.inner.meters.not_permitted.get() as u64,
        }
    }

    /// The breaker as a health component: UP unless open (DEGRADED, or DOWN
    /// with `health = "down"`), with its state, rates, thresholds and counts.
    pub fn health(&self) -> Health {
        let stats = self.stats();
        let config = self.config();
        let base = match stats.state {
            State::Open | State::ForcedOpen => match config.health {
                OpenHealth::Degraded => Health::degraded(),
                OpenHealth::Down => Health::down(),
            },
            _ => Health::up(),
        };
        base.with_detail("state", stats.state.as_str())
            .with_detail("failure_rate", stats.failure_rate.unwrap_or(-1.0))
            .with_detail("failure_rate_threshold", config.failure_rate)
            .with_detail("slow_call_rate", stats.slow_call_rate.unwrap_or(-1.0))
            .with_detail("slow_call_rate_threshold", config.slow_call_rate)
            .with_detail("calls_in_window", stats.calls_in_window)
            .with_detail("failed_in_window", stats.failed_in_window)
            .with_detail("not_permitted", stats.not_permitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::Window;

    #[test]
    fn reconfiguring_reuses_windows() {
        let registry = crate::metrics::Registry::new();
        let b = CircuitBreaker::build(
            "unit-reconfigure",
            CircuitBreakerConfig::default(),
            &registry,
            None,
        )
        .unwrap();
        for i in 0..2000u32 {
            let window = if i % 2 == 0 {
                Window::Count(1 + (i * 7919) % 100_000)
            } else {
                Window::Time(Duration::from_secs(u64::from(1 + (i * 104_729) % 3600)))
            };
            b.reconfigure(CircuitBreakerConfig {
                window,
                minimum_calls: 1,
                ..CircuitBreakerConfig::default()
            })
            .unwrap();
        }
        // One allocation per power of two of each kind, at most.
        assert!(
            b.inner.windows.allocations() <= 17 + 12 + 2,
            "{}",
            b.inner.windows.allocations()
        );
        b.acquire().unwrap().failure();
        assert_eq!(b.state(), State::Open);
    }
}
