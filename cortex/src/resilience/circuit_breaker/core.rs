//! What a breaker is made of, and what a call does to it: asking for a
//! permit, recording its outcome, judging the window, moving the state
//! machine on, and telling listeners.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crossbeam_utils::atomic::AtomicCell;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::machine::{self, code, Machine, Refusal, Ticket};
use super::permit::{CallOutcome, Grant};
use super::window::{CountWindow, Outcome, TimeWindow, Totals};
use super::{CircuitBreakerEvent, State, StateChange};
use crate::metrics::{Counter, Histogram};
use crate::resilience::events::{Hooks, Ordered};
use crate::resilience::ring::EventRing;
use crate::resilience::sync::Std;
use crate::resilience::{CircuitBreakerConfig, Error, Window};

/// One window allocation.
pub(super) enum WindowKind {
    Count(CountWindow<Std>),
    Time(TimeWindow<Std>),
}

/// The window in use, and every allocation made. A count and a time window
/// are reused for any size they can hold and replaced only by one at least
/// twice as large, so a breaker keeps at most about 34 of them in its life,
/// however often it is reconfigured; the current one is read without a
/// lock.
pub(super) struct Windows {
    current: AtomicPtr<WindowKind>,
    #[allow(clippy::vec_box)] // boxed: a window never moves when the Vec grows
    all: Mutex<Vec<Box<WindowKind>>>,
}

impl Windows {
    fn new(config: &CircuitBreakerConfig, now_secs: u64) -> Self {
        let mut window = Box::new(allocate(config.window, now_secs));
        Windows {
            current: AtomicPtr::new(&mut *window),
            all: Mutex::new(vec![window]),
        }
    }

    #[inline(always)]
    pub(super) fn get(&self) -> &WindowKind {
        // SAFETY: `current` points into a box owned by `all`, which only
        // grows and lives as long as `self`.
        unsafe { &*self.current.load(Acquire) }
    }

    /// Empties the current window for `window` (under the transition lock).
    fn reset(&self, window: Window, now_secs: u64) {
        match (self.get(), window) {
            (WindowKind::Count(w), Window::Count(n)) if w.capacity() >= n as usize => w.reset(n),
            (WindowKind::Time(w), Window::Time(d)) if w.capacity() >= secs(d) as usize => {
                w.reset(secs(d), now_secs)
            }
            _ => self.switch(window, now_secs),
        }
    }

    /// Makes the window one for `window`: an allocation of that kind large
    /// enough if there is one, else a new one.
    fn switch(&self, window: Window, now_secs: u64) {
        let mut all = self.all.lock();
        let reuse = all.iter_mut().rev().find_map(|w| {
            let fits = match (&**w, window) {
                (WindowKind::Count(c), Window::Count(n)) => c.capacity() >= n as usize,
                (WindowKind::Time(t), Window::Time(d)) => t.capacity() >= secs(d) as usize,
                _ => false,
            };
            fits.then_some(&mut **w as *mut WindowKind)
        });
        let ptr = match reuse {
            Some(ptr) => {
                // SAFETY: a box owned by `all`, alive while `self` is.
                match (unsafe { &*ptr }, window) {
                    (WindowKind::Count(c), Window::Count(n)) => c.reset(n),
                    (WindowKind::Time(t), Window::Time(d)) => t.reset(secs(d), now_secs),
                    _ => {}
                }
                ptr
            }
            None => {
                let mut fresh = Box::new(allocate(window, now_secs));
                let ptr = &mut *fresh as *mut WindowKind;
                all.push(fresh);
                ptr
            }
        };
        self.current.store(ptr, Release);
    }

    /// The successes every count window (current or not) counted.
    fn successes(&self) -> u64 {
        self.all
            .lock()
            .iter()
            .map(|w| match &**w {
                WindowKind::Count(c) => c.successes(),
                WindowKind::Time(_) => 0,
            })
            .sum()
    }

    #[cfg(test)]
    pub(super) fn allocations(&self) -> usize {
        self.all.lock().len()
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX)
}

fn allocate(window: Window, now_secs: u64) -> WindowKind {
    match window {
        Window::Count(n) => WindowKind::Count(CountWindow::new(n.next_power_of_two(), n)),
        Window::Time(d) => {
            let n = secs(d);
            WindowKind::Time(TimeWindow::new(n.next_power_of_two(), n, now_secs))
        }
    }
}

/// Metric handles the call path updates.
pub(super) struct Meters {
    /// Successful calls no count window counts (trials, stale permits,
    /// slow calls, calls in a time window); not registered itself: the
    /// successful-calls series adds the windows' counts.
    pub(super) successful: Counter,
    pub(super) failed: Counter,
    pub(super) slow: Counter,
    pub(super) ignored: Counter,
    pub(super) not_permitted: Counter,
    /// Call durations by outcome (successful, failed, ignored), kept for
    /// timed calls (a breaker with a `slow_call_threshold`).
    pub(super) durations: [Histogram; 3],
}

/// `Grant::started` of a call that is not timed.
pub(super) const NOT_TIMED: u64 = u64::MAX;

/// What the hot path reads of the configuration, each in its own atomic.
struct Hot {
    /// `slow_call_threshold` in nanoseconds; `u64::MAX` when calls are not
    /// timed.
    slow_nanos: AtomicU64,
    minimum_calls: AtomicU32,
}

pub(super) struct Inner {
    pub(super) name: Arc<str>,
    pub(super) epoch: Instant,
    pub(super) machine: Machine<Std>,
    config: AtomicCell<CircuitBreakerConfig>,
    hot: Hot,
    pub(super) windows: Windows,
    pub(super) meters: Meters,
    pub(super) listeners: Hooks<StateChange>,
    changes: Ordered<StateChange>,
    pub(super) events: Hooks<CircuitBreakerEvent>,
    pub(super) ring: EventRing,
    /// Whether `build` wired this breaker up (timers need the `Weak`).
    pub(super) me: Weak<Inner>,
}

impl Inner {
    pub(super) fn new(
        name: &str,
        config: CircuitBreakerConfig,
        meters: Meters,
        me: Weak<Inner>,
    ) -> Inner {
        let epoch = Instant::now();
        Inner {
            name: name.into(),
            epoch,
            machine: Machine::new(),
            config: AtomicCell::new(config),
            hot: Hot {
                slow_nanos: AtomicU64::new(
                    config.slow_call_threshold.map_or(u64::MAX, machine::nanos),
                ),
                minimum_calls: AtomicU32::new(config.minimum_calls),
            },
            windows: Windows::new(&config, 0),
            meters,
            listeners: Hooks::default(),
            changes: Ordered::default(),
            events: Hooks::default(),
            ring: EventRing::new("circuit_breaker", name.into()),
            me,
        }
    }

    pub(super) fn config(&self) -> CircuitBreakerConfig {
        self.config.load()
    }

    #[inline(always)]
    pub(super) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A permit, or the rejection.
    #[inline(always)]
    pub(super) fn acquire(&self) -> Result<Grant, Error> {
        let word = self.machine.word();
        if code(word) == machine::CLOSED {
            // The closed path: one load, and a clock read only for a
            // breaker that times its calls.
            return Ok(Grant {
                ticket: Ticket { word },
                started: self.start(),
            });
        }
        self.acquire_slow()
    }

    /// When the call started, for a breaker that times calls (else
    /// `NOT_TIMED`).
    #[inline(always)]
    fn start(&self) -> u64 {
        if self.hot.slow_nanos.load(Relaxed) == u64::MAX {
            NOT_TIMED
        } else {
            self.now()
        }
    }

    #[inline(always)]
    fn elapsed(&self, grant: Grant) -> Option<u64> {
        (grant.started != NOT_TIMED).then(|| self.now().saturating_sub(grant.started))
    }

    #[inline(never)]
    fn acquire_slow(&self) -> Result<Grant, Error> {
        let now = self.now();
        let result = self.machine.acquire(
            now,
            || self.config(),
            |from, to| self.changed(from, to),
            || self.reset_window(now),
        );
        self.announce();
        match result {
            Ok(ticket) => Ok(Grant {
                ticket,
                started: self.start(),
            }),
            Err(refusal) => Err(self.reject(refusal)),
        }
    }

    #[cold]
    fn reject(&self, refusal: Refusal) -> Error {
        self.meters.not_permitted.inc();
        self.events.emit(|| CircuitBreakerEvent::NotPermitted);
        self.ring
            .record_rejection("NOT_PERMITTED", || match refusal {
                Refusal::Open(_) => "OPEN".into(),
                Refusal::TrialsTaken => "HALF_OPEN: every trial call is taken".into(),
                Refusal::Forced => "FORCED_OPEN".into(),
            });
        let retry_after = match refusal {
            Refusal::Open(nanos) => Duration::from_nanos(nanos),
            Refusal::TrialsTaken => Duration::ZERO,
            Refusal::Forced => Duration::MAX,
        };
        Error::CircuitOpen {
            name: Arc::clone(&self.name),
            retry_after,
        }
    }

    /// Records a finished call.
    #[inline]
    pub(super) fn finish(&self, grant: Grant, outcome: CallOutcome) {
        self.finish_with(grant, outcome, String::new);
    }

    /// Records a finished call; a failure's `message` is made only for the
    /// breaker's recent events.
    #[inline]
    pub(super) fn finish_with(
        &self,
        grant: Grant,
        outcome: CallOutcome,
        message: impl FnOnce() -> String,
    ) {
        let elapsed = self.elapsed(grant);
        let slow = elapsed.is_some_and(|e| e >= self.hot.slow_nanos.load(Relaxed));
        match outcome {
            CallOutcome::Ignored => {
                self.meters.ignored.inc();
                self.observe(2, elapsed);
                self.events.emit(|| CircuitBreakerEvent::IgnoredError {
                    elapsed: elapsed.map(Duration::from_nanos),
                });
                if grant.ticket.trial() {
                    self.machine.give_back(grant.ticket);
                }
            }
            CallOutcome::Success | CallOutcome::Failure => {
                let failed = outcome == CallOutcome::Failure;
                self.count(grant.ticket, Outcome { failed, slow }, elapsed, message);
            }
        }
    }

    /// A permit dropped unrecorded: ignored, unless it already ran past the
    /// slow-call threshold (a caller that gave up on a hanging backend).
    pub(super) fn abandon(&self, grant: Grant) {
        let elapsed = self.elapsed(grant);
        if elapsed.is_some_and(|e| e >= self.hot.slow_nanos.load(Relaxed)) {
            self.count(
                grant.ticket,
                Outcome {
                    failed: false,
                    slow: true,
                },
                elapsed,
                String::new,
            );
        } else {
            self.finish(
                Grant {
                    started: NOT_TIMED,
                    ..grant
                },
                CallOutcome::Ignored,
            );
        }
    }

    fn observe(&self, lane: usize, elapsed: Option<u64>) {
        if let Some(nanos) = elapsed {
            self.meters.durations[lane].observe(nanos as f64 / 1e9);
        }
    }

    #[inline]
    fn count(
        &self,
        ticket: Ticket,
        outcome: Outcome,
        elapsed: Option<u64>,
        message: impl FnOnce() -> String,
    ) {
        if outcome.failed {
            self.meters.failed.inc();
            self.ring.record("ERROR", || {
                let message = message();
                match elapsed.map(Duration::from_nanos) {
                    Some(took) if message.is_empty() => format!("failed after {took:?}"),
                    Some(took) => format!("{message} (after {took:?})"),
                    None => message,
                }
            });
        }
        if outcome.slow {
            self.meters.slow.inc();
        }
        if elapsed.is_some() {
            self.observe(usize::from(outcome.failed), elapsed);
        }
        self.events.emit(|| {
            let elapsed = elapsed.map(Duration::from_nanos);
            if outcome.failed {
                CircuitBreakerEvent::Error { elapsed }
            } else {
                CircuitBreakerEvent::Success { elapsed }
            }
        });
        if ticket.trial() {
            self.count_success(outcome);
            return self.count_trial(ticket, outcome);
        }
        // Closed, and still the episode the permit was given in: counts in
        // the window. (Disabled judges nothing; a stale permit, from before
        // a transition or a reconfiguration, counts in the metrics only.)
        if code(ticket.word) != machine::CLOSED || self.machine.word() != ticket.word {
            return self.count_success(outcome);
        }
        let minimum = self.hot.minimum_calls.load(Relaxed);
        let recorded = match self.windows.get() {
            // A count window's stripes count its successes for the metric
            // too: one write per successful call.
            WindowKind::Count(w) => {
                if outcome.slow {
                    self.count_success(outcome);
                }
                w.record(outcome, minimum)
            }
            WindowKind::Time(w) => {
                self.count_success(outcome);
                w.record(self.now() / 1_000_000_000, outcome, minimum)
            }
        };
        if recorded.judge {
            self.judge(ticket.word, recorded.totals);
        }
    }

    /// Counts a success no count window counts.
    #[inline(always)]
    fn count_success(&self, outcome: Outcome) {
        if !outcome.failed {
            self.meters.successful.inc();
        }
    }

    /// Successful calls so far: those the count windows counted, and the
    /// others.
    pub(super) fn successes(&self) -> u64 {
        self.windows.successes() + self.meters.successful.get() as u64
    }

    /// Moves from `word` to `to` unless the word changed meanwhile, then
    /// tells the listeners.
    fn go(&self, word: u64, to: u64, config: &CircuitBreakerConfig, close_window: bool) {
        let now = self.now();
        self.machine.transition(
            word,
            to,
            now,
            config,
            &mut |from, to| self.changed(from, to),
            &mut || {
                if close_window {
                    self.reset_window(now)
                }
            },
        );
        self.announce();
    }

    #[cold]
    fn judge(&self, word: u64, totals: Totals) {
        let config = self.config();
        if should_open(&config, totals, config.minimum_calls) {
            self.go(word, machine::OPEN, &config, false);
        }
    }

    #[cold]
    fn count_trial(&self, ticket: Ticket, outcome: Outcome) {
        let config = self.config();
        let Some(trials) =
            self.machine
                .record_trial(ticket, outcome.failed, outcome.slow, config.half_open_calls)
        else {
            return;
        };
        let totals = Totals {
            calls: trials.done,
            failed: trials.failed,
            slow: trials.slow,
        };
        let to = if should_open(&config, totals, 1) {
            machine::OPEN
        } else {
            machine::CLOSED
        };
        self.go(ticket.word, to, &config, true);
    }

    /// Moves the machine on when a timed state is over: open past
    /// `open_for` (with `automatic_half_open`), half-open past
    /// `max_wait_in_half_open`.
    pub(super) fn tick(&self) {
        let word = self.machine.word();
        if !matches!(code(word), machine::OPEN | machine::HALF_OPEN) {
            return;
        }
        let now = self.now();
        let config = self.config();
        let to = match code(word) {
            machine::OPEN if config.automatic_half_open && now >= self.machine.open_until() => {
                machine::HALF_OPEN
            }
            machine::HALF_OPEN if now >= self.machine.half_open_until() => machine::OPEN,
            _ => return,
        };
        self.go(word, to, &config, false);
    }

    /// Moves to `to` whatever the state; empties the window when closing.
    pub(super) fn force(&self, to: u64) {
        let now = self.now();
        let config = self.config();
        self.machine.force(
            to,
            now,
            &config,
            &mut |from, to| self.changed(from, to),
            &mut || self.reset_window(now),
        );
        self.announce();
    }

    /// Installs a new configuration, keeping the state.
    pub(super) fn reconfigure(&self, config: CircuitBreakerConfig) {
        let now = self.now();
        let old = self.config();
        self.config.store(config);
        self.hot.slow_nanos.store(
            config.slow_call_threshold.map_or(u64::MAX, machine::nanos),
            Relaxed,
        );
        self.hot.minimum_calls.store(config.minimum_calls, Relaxed);
        let window_changed = old.window != config.window;
        self.machine.renew(now, &config, &mut || {
            if window_changed {
                self.windows.switch(config.window, now / 1_000_000_000);
            }
        });
    }

    fn reset_window(&self, now: u64) {
        self.windows
            .reset(self.config().window, now / 1_000_000_000);
    }

    /// Under the transition lock: queue the change, in order.
    fn changed(&self, from: u64, to: u64) {
        self.changes.push(StateChange {
            name: Arc::clone(&self.name),
            from: State::from_code(from),
            to: State::from_code(to),
        });
    }

    /// After the transition lock: log each queued change, tell the
    /// listeners, and arm the timers a timed state needs.
    pub(super) fn announce(&self) {
        self.changes.drain(|change| {
            tracing::warn!(
                target: "cortex::resilience",
                circuit_breaker = %self.name,
                from = %change.from,
                to = %change.to,
                "circuit breaker changed state"
            );
            self.ring.record("STATE_TRANSITION", || {
                format!("{} -> {}", change.from.name(), change.to.name())
            });
            self.listeners.emit(|| change.clone());
            self.arm(change.to);
        });
    }

    fn arm(&self, to: State) {
        let config = self.config();
        let deadline = match to {
            State::Open if config.automatic_half_open => self.machine.open_until(),
            State::HalfOpen if config.max_wait_in_half_open.is_some() => {
                self.machine.half_open_until()
            }
            _ => return,
        };
        let at = self.epoch + Duration::from_nanos(deadline);
        let me = self.me.clone();
        crate::resilience::timer::at(at, move || {
            if let Some(inner) = me.upgrade() {
                inner.tick();
            }
        });
    }

    /// The window's totals now.
    pub(super) fn totals(&self) -> Totals {
        match self.windows.get() {
            WindowKind::Count(w) => w.totals(),
            WindowKind::Time(w) => w.totals(self.now() / 1_000_000_000),
        }
    }
}

/// Whether `t` has reached a threshold, with at least `minimum` calls.
pub(super) fn should_open(config: &CircuitBreakerConfig, t: Totals, minimum: u32) -> bool {
    if t.calls < u64::from(minimum) || t.calls == 0 {
        return false;
    }
    t.failed * 100 >= u64::from(config.failure_rate) * t.calls
        || (config.slow_call_threshold.is_some()
            && t.slow * 100 >= u64::from(config.slow_call_rate) * t.calls)
}
