//! The circuit breaker: closed, open, half-open, disabled and forced-open.
//!
//! While closed it counts outcomes in a sliding window (the last N calls, or
//! the calls of the last period) and opens when the failure rate, or the
//! slow-call rate, reaches its threshold once `minimum_calls` are in the
//! window. Open, it rejects calls with [`Error::CircuitOpen`] until
//! `open_for` has passed; then it lets exactly `half_open_calls` trial calls
//! through (others are rejected while they run) and closes if their rates
//! stay below the thresholds, or opens again.
//!
//! The closed path takes no lock: a permit is an atomic load, and recording
//! an outcome is three atomic operations on a lock-free ring.
//!
//! Differences from Resilience4j: slow-call timing is off unless
//! `slow_call_threshold` is set (so the closed path reads no clock); a
//! dropped permit (a cancelled call) is recorded as ignored and, when
//! half-open, gives its trial place back.

mod window;

use std::fmt;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use self::window::{CountWindow, Outcome, TimeWindow, Totals};
use super::{CircuitBreakerConfig, ConfigError, Error, OpenHealth, Window};
use crate::health::{CheckOptions, Health, HealthRegistry};
use crate::metrics::{Counter, Registry};

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
    fn code(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::Disabled => 3,
            State::ForcedOpen => 4,
        }
    }

    fn from_code(code: u8) -> State {
        STATES[usize::from(code).min(4)]
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
    /// Calls rejected since creation.
    pub not_permitted: u64,
}

type Listener = Arc<dyn Fn(&StateChange) + Send + Sync>;

enum WindowKind {
    Count(CountWindow),
    Time(TimeWindow),
}

/// What a configuration owns: rebuilt whole by `reconfigure`.
struct Core {
    config: CircuitBreakerConfig,
    window: WindowKind,
    state: AtomicU8,
    open_until: AtomicU64,
    trial_left: AtomicU32,
    trial_done: AtomicU32,
    trial_failed: AtomicU32,
    trial_slow: AtomicU32,
}

impl Core {
    fn new(config: CircuitBreakerConfig) -> Self {
        let window = match config.window {
            Window::Count(n) => WindowKind::Count(CountWindow::new(n)),
            Window::Time(d) => WindowKind::Time(TimeWindow::new(d.as_secs().max(1))),
        };
        Core {
            config,
            window,
            state: AtomicU8::new(State::Closed.code()),
            open_until: AtomicU64::new(0),
            trial_left: AtomicU32::new(0),
            trial_done: AtomicU32::new(0),
            trial_failed: AtomicU32::new(0),
            trial_slow: AtomicU32::new(0),
        }
    }

    #[inline(always)]
    fn state(&self) -> State {
        State::from_code(self.state.load(Ordering::Acquire))
    }
}

struct Inner {
    name: Arc<str>,
    epoch: Instant,
    current: AtomicPtr<Core>,
    // Every core ever installed, so `current` always points at live memory;
    // one per `reconfigure`. Boxed so a core never moves when the Vec grows.
    #[allow(clippy::vec_box)]
    cores: Mutex<Vec<Box<Core>>>,
    transition: Mutex<()>,
    recorded: AtomicU64,
    failed: Counter,
    slow: Counter,
    ignored: Counter,
    not_permitted: Counter,
    listeners: RwLock<Vec<Listener>>,
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
    /// configuration.
    pub fn new(name: &str, config: CircuitBreakerConfig) -> Result<Self, ConfigError> {
        super::registry::breaker_or_create(
            name,
            config,
            crate::metrics::global(),
            Some(crate::health::global()),
        )
    }

    pub(crate) fn build(
        name: &str,
        config: CircuitBreakerConfig,
        metrics: &Registry,
        health: Option<&HealthRegistry>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let conflict = super::metrics_conflict("breaker", name);
        let calls = metrics
            .counter_family(
                "cortex_circuit_breaker_calls_total",
                "Calls through a circuit breaker, by kind.",
                &["name", "kind"],
            )
            .map_err(conflict)?;
        let series = |kind: &str| calls.with_labels(&[name, kind]).map_err(conflict);
        let failed = series("failed")?;
        let ignored = series("ignored")?;
        let not_permitted = series("not_permitted")?;
        let slow = metrics
            .counter_family(
                "cortex_circuit_breaker_slow_calls_total",
                "Calls slower than the breaker's slow_call_threshold.",
                &["name"],
            )
            .and_then(|f| f.with_labels(&[name]))
            .map_err(conflict)?;
        let mut core = Box::new(Core::new(config));
        let current = AtomicPtr::new(&mut *core as *mut Core);
        let breaker = CircuitBreaker {
            inner: Arc::new(Inner {
                name: name.into(),
                epoch: Instant::now(),
                current,
                cores: Mutex::new(vec![core]),
                transition: Mutex::new(()),
                recorded: AtomicU64::new(0),
                failed,
                slow,
                ignored,
                not_permitted,
                listeners: RwLock::new(Vec::new()),
            }),
        };
        // Derived series: computed when /metrics is scraped, free per call.
        let weak = Arc::downgrade(&breaker.inner);
        let b = weak.clone();
        calls.core().attach_derived(
            &[name, "successful"],
            Arc::new(move || {
                b.upgrade().map_or(0.0, |i| {
                    (i.recorded.load(Ordering::Relaxed) as f64 - i.failed.get()).max(0.0)
                })
            }),
        );
        let states = metrics
            .gauge_family(
                "cortex_circuit_breaker_state",
                "1 for a circuit breaker's current state, 0 for the others.",
                &["name", "state"],
            )
            .map_err(conflict)?;
        for state in STATES {
            let b = weak.clone();
            states.core().attach_derived(
                &[name, state.as_str()],
                Arc::new(move || {
                    b.upgrade().map_or(0.0, |i| {
                        f64::from(u8::from(CircuitBreaker { inner: i }.state() == state))
                    })
                }),
            );
        }
        let rate = metrics
            .gauge_family(
                "cortex_circuit_breaker_failure_rate",
                "Failed calls in a circuit breaker's window, in percent (-1 below minimum_calls).",
                &["name"],
            )
            .map_err(conflict)?;
        let b = weak.clone();
        rate.core().attach_derived(
            &[name],
            Arc::new(move || {
                b.upgrade()
                    .and_then(|i| CircuitBreaker { inner: i }.stats().failure_rate)
                    .unwrap_or(-1.0)
            }),
        );
        if let Some(health) = health {
            let b = weak;
            health.register(
                format!("circuit_breaker.{name}"),
                CheckOptions::default(),
                move || {
                    let h = b.upgrade().map(|i| CircuitBreaker { inner: i }.health());
                    async move { h.unwrap_or_else(Health::unknown) }
                },
            );
        }
        Ok(breaker)
    }

    #[inline(always)]
    fn core(&self) -> &Core {
        // SAFETY: `current` always points into a `Box<Core>` owned by
        // `cores`, which only grows and lives as long as `inner`.
        unsafe { &*self.inner.current.load(Ordering::Acquire) }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.core().state()
    }

    /// The current configuration.
    pub fn config(&self) -> CircuitBreakerConfig {
        self.core().config
    }

    /// Asks to make a call. On success, record the outcome on the permit
    /// ([`Permit::success`], [`Permit::failure`]); a dropped permit counts as
    /// ignored.
    ///
    /// # Errors
    /// [`Error::CircuitOpen`] when open, forced open, or half-open with every
    /// trial place taken.
    #[inline(always)]
    pub fn acquire(&self) -> Result<Permit<'_>, Error> {
        let core = self.core();
        // The closed path, kept small enough to inline into every call.
        if core.state.load(Ordering::Acquire) == 0 {
            return Ok(self.permit(core, false));
        }
        self.acquire_slow(core)
    }

    #[inline(never)]
    fn acquire_slow<'a>(&'a self, core: &'a Core) -> Result<Permit<'a>, Error> {
        loop {
            match core.state() {
                State::Closed | State::Disabled => return Ok(self.permit(core, false)),
                State::HalfOpen => {
                    let took = core
                        .trial_left
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok();
                    if took {
                        return Ok(self.permit(core, true));
                    }
                    return Err(self.reject(Duration::ZERO));
                }
                State::Open => {
                    let now = self.now_nanos();
                    let until = core.open_until.load(Ordering::Acquire);
                    if now >= until {
                        self.transition(core, State::Open, State::HalfOpen);
                        continue;
                    }
                    return Err(self.reject(Duration::from_nanos(until - now)));
                }
                State::ForcedOpen => return Err(self.reject(Duration::MAX)),
            }
        }
    }

    #[inline(always)]
    fn permit<'a>(&'a self, core: &'a Core, trial: bool) -> Permit<'a> {
        Permit {
            breaker: self,
            core,
            trial,
            started: core.config.slow_call_threshold.map(|_| Instant::now()),
            done: false,
        }
    }

    #[cold]
    fn reject(&self, retry_after: Duration) -> Error {
        self.inner.not_permitted.inc();
        Error::CircuitOpen {
            name: Arc::clone(&self.inner.name),
            retry_after,
        }
    }

    /// Runs `f` under the breaker; every `Err` counts as a failure.
    ///
    /// # Errors
    /// `f`'s error, or [`Error::CircuitOpen`] converted into `E`.
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        self.call_with(f, |_| true).await
    }

    /// Runs `f` under the breaker; an `Err` counts as a failure only if
    /// `record_if` says so (others are ignored).
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
        Fut: std::future::Future<Output = Result<T, E>>,
        E: From<Error>,
    {
        let permit = self.acquire()?;
        let result = f().await;
        permit.record_result(&result, &record_if);
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
        let permit = self.acquire()?;
        let result = f();
        permit.record_result(&result, &record_if);
        result
    }

    #[inline(always)]
    fn record(&self, core: &Core, trial: bool, outcome: Outcome) {
        let index = self.inner.recorded.fetch_add(1, Ordering::Relaxed);
        if outcome.failed {
            self.inner.failed.inc();
        }
        if outcome.slow {
            self.inner.slow.inc();
        }
        if trial {
            self.record_trial(core, outcome);
            return;
        }
        let totals = match &core.window {
            WindowKind::Count(w) => w.record(index, outcome),
            WindowKind::Time(w) => w.record(self.now_nanos() / 1_000_000_000, outcome),
        };
        if (outcome.failed || outcome.slow)
            && core.state() == State::Closed
            && should_open(&core.config, totals)
        {
            self.transition(core, State::Closed, State::Open);
        }
    }

    #[cold]
    fn record_trial(&self, core: &Core, outcome: Outcome) {
        if outcome.failed {
            core.trial_failed.fetch_add(1, Ordering::AcqRel);
        }
        if outcome.slow {
            core.trial_slow.fetch_add(1, Ordering::AcqRel);
        }
        let done = core.trial_done.fetch_add(1, Ordering::AcqRel) + 1;
        if done < core.config.half_open_calls {
            return;
        }
        let totals = Totals {
            calls: u64::from(done),
            failed: u64::from(core.trial_failed.load(Ordering::Acquire)),
            slow: u64::from(core.trial_slow.load(Ordering::Acquire)),
        };
        let config = CircuitBreakerConfig {
            minimum_calls: 1,
            ..core.config
        };
        let to = if should_open(&config, totals) {
            State::Open
        } else {
            State::Closed
        };
        self.transition(core, State::HalfOpen, to);
    }

    #[cold]
    fn transition(&self, core: &Core, from: State, to: State) -> bool {
        let guard = self.inner.transition.lock();
        if core.state() != from {
            return false;
        }
        match to {
            State::Open => {
                let until = self.now_nanos().saturating_add(
                    u64::try_from(core.config.open_for.as_nanos()).unwrap_or(u64::MAX),
                );
                core.open_until.store(until, Ordering::Release);
            }
            State::HalfOpen => {
                core.trial_done.store(0, Ordering::Release);
                core.trial_failed.store(0, Ordering::Release);
                core.trial_slow.store(0, Ordering::Release);
                core.trial_left
                    .store(core.config.half_open_calls, Ordering::Release);
            }
            State::Closed => reset_window(core),
            State::Disabled | State::ForcedOpen => {}
        }
        core.state.store(to.code(), Ordering::Release);
        drop(guard);
        self.announce(from, to);
        true
    }

    fn announce(&self, from: State, to: State) {
        tracing::warn!(
            target: "cortex::resilience",
            circuit_breaker = %self.inner.name,
            %from,
            %to,
            "circuit breaker changed state"
        );
        let change = StateChange {
            name: Arc::clone(&self.inner.name),
            from,
            to,
        };
        for listener in self.inner.listeners.read().iter() {
            listener(&change);
        }
    }

    fn force(&self, to: State) {
        let core = self.core();
        let from = core.state();
        if from != to {
            self.transition(core, from, to);
        }
    }

    /// Calls `listener` on every state change (from the thread that caused
    /// it).
    pub fn on_state_change(&self, listener: impl Fn(&StateChange) + Send + Sync + 'static) {
        self.inner.listeners.write().push(Arc::new(listener));
    }

    /// Closes the breaker and empties its window.
    pub fn reset(&self) {
        let core = self.core();
        let from = core.state();
        if from == State::Closed {
            let _guard = self.inner.transition.lock();
            reset_window(core);
        } else {
            self.transition(core, from, State::Closed);
        }
    }

    /// Rejects every call until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.force(State::ForcedOpen);
    }

    /// Lets every call through and judges nothing until
    /// [`reset`](Self::reset).
    pub fn disable(&self) {
        self.force(State::Disabled);
    }

    /// Replaces the configuration (checked by the same rules as the
    /// attribute); the breaker starts closed with an empty window.
    ///
    /// # Errors
    /// The new configuration breaks a rule; nothing changes then.
    pub fn reconfigure(&self, config: CircuitBreakerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let from = self.state();
        let mut core = Box::new(Core::new(config));
        let ptr = &mut *core as *mut Core;
        {
            let _guard = self.inner.transition.lock();
            self.inner.cores.lock().push(core);
            self.inner.current.store(ptr, Ordering::Release);
        }
        tracing::info!(target: "cortex::resilience", circuit_breaker = %self.inner.name, ?config, "circuit breaker reconfigured");
        if from != State::Closed {
            self.announce(from, State::Closed);
        }
        Ok(())
    }

    /// The breaker's numbers now.
    pub fn stats(&self) -> Stats {
        let core = self.core();
        let totals = match &core.window {
            WindowKind::Count(w) => w.totals(),
            WindowKind::Time(w) => w.totals(self.now_nanos() / 1_000_000_000),
        };
        let enough = totals.calls >= u64::from(core.config.minimum_calls) && totals.calls > 0;
        let pct = |n: u64| enough.then(|| n as f64 * 100.0 / totals.calls as f64);
        Stats {
            state: core.state(),
            failure_rate: pct(totals.failed),
            slow_call_rate: pct(totals.slow),
            calls_in_window: totals.calls,
            failed_in_window: totals.failed,
            not_permitted: self.inner.not_permitted.get() as u64,
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

fn should_open(config: &CircuitBreakerConfig, t: Totals) -> bool {
    if t.calls < u64::from(config.minimum_calls) || t.calls == 0 {
        return false;
    }
    t.failed * 100 >= u64::from(config.failure_rate) * t.calls
        || (config.slow_call_threshold.is_some()
            && t.slow * 100 >= u64::from(config.slow_call_rate) * t.calls)
}

fn reset_window(core: &Core) {
    // Calls do not record into the window while half-open, so closing from
    // there races with nothing; `reset` from closed may drop a call or two.
    match &core.window {
        WindowKind::Count(w) => w.reset(),
        WindowKind::Time(w) => w.reset(),
    }
}

/// Permission for one call. Record how it went; dropping it unrecorded
/// counts the call as ignored.
#[must_use = "record the call's outcome with success() or failure()"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    core: &'a Core,
    trial: bool,
    started: Option<Instant>,
    done: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.inner.name)
            .field("trial", &self.trial)
            .finish()
    }
}

impl Permit<'_> {
    #[inline(always)]
    fn finish(mut self, failed: bool) {
        self.done = true;
        let slow = match (self.started, self.core.config.slow_call_threshold) {
            (Some(started), Some(limit)) => started.elapsed() >= limit,
            _ => false,
        };
        self.breaker
            .record(self.core, self.trial, Outcome { failed, slow });
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.finish(false);
    }

    /// The call failed.
    pub fn failure(self) {
        self.finish(true);
    }

    /// The call's outcome does not count.
    pub fn ignore(self) {
        drop(self);
    }

    pub(crate) fn record_result<T, E>(
        self,
        result: &Result<T, E>,
        record_if: &impl Fn(&E) -> bool,
    ) {
        match result {
            Ok(_) => self.success(),
            Err(e) if record_if(e) => self.failure(),
            Err(_) => self.ignore(),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.inner.ignored.inc();
            if self.trial {
                // Give the trial place back, so half-open cannot get stuck.
                self.core.trial_left.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}
