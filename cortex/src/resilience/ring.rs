//! The recent events of each policy instance, kept in a bounded ring for
//! the admin API (`GET /cortex/events`), as Resilience4j's event
//! consumers keep them for Actuator.
//!
//! Only what an operator looks for is kept: state transitions, rejections,
//! retries, errors and timeouts, not every success (which would push the
//! rest out within a second and cost every call). A record takes a short
//! lock of its own instance's ring, and never waits for it: an event that
//! finds the ring busy (two threads failing at the same instant) is
//! counted in [`dropped_events`] instead. Rejections, which come at the
//! rate of the calls while a breaker is open or a bulkhead full, are kept
//! at most one per [`REJECTIONS_EVERY`] per instance: checking costs a
//! rejected call one clock read and one read of a shared word, no write.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;

/// How many events each instance keeps by default.
pub const DEFAULT_EVENTS_KEPT: usize = 100;

/// The most often one instance keeps a rejection.
pub const REJECTIONS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

static KEPT: AtomicUsize = AtomicUsize::new(DEFAULT_EVENTS_KEPT);
static SEQUENCE: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Sets how many events each instance keeps (at least 1; default
/// [`DEFAULT_EVENTS_KEPT`]); a ring holding more drops its oldest at its
/// next event.
pub fn keep_events(per_instance: usize) {
    KEPT.store(per_instance.max(1), Ordering::Relaxed);
}

/// Events not kept because their instance's ring was busy at that instant.
pub fn dropped_events() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// One event of a policy instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEvent {
    /// The policy kind: `circuit_breaker`, `retry`, `bulkhead`,
    /// `rate_limiter` or `timeout`.
    pub policy: &'static str,
    /// The instance's name.
    pub name: Arc<str>,
    /// What happened, in Resilience4j's words: `STATE_TRANSITION`,
    /// `NOT_PERMITTED` and `ERROR` (breakers), `RETRY` and `ERROR`
    /// (retries), `CALL_REJECTED` (bulkheads), `FAILED_ACQUIRE` (rate
    /// limiters), `TIMEOUT` and `ERROR` (timeouts).
    pub kind: &'static str,
    /// When.
    pub at: SystemTime,
    /// What it was: `CLOSED -> OPEN`, `attempt 1 failed, next in 100ms`,
    /// an error's message (empty when there is none to tell).
    pub message: String,
    /// Orders events across instances (later is larger).
    pub sequence: u64,
}

/// One instance's ring.
#[derive(Debug)]
pub(crate) struct EventRing {
    policy: &'static str,
    name: Arc<str>,
    events: Mutex<VecDeque<PolicyEvent>>,
    /// When the last rejection was kept (raw clock ticks, 0: never).
    last_rejection: AtomicU64,
}

impl EventRing {
    pub(crate) fn new(policy: &'static str, name: Arc<str>) -> Self {
        EventRing {
            policy,
            name,
            events: Mutex::new(VecDeque::new()),
            last_rejection: AtomicU64::new(0),
        }
    }

    /// Keeps a rejection, unless this instance kept one less than
    /// [`REJECTIONS_EVERY`] ago.
    #[inline]
    pub(crate) fn record_rejection(&self, kind: &'static str, message: impl FnOnce() -> String) {
        let clock = crate::__private::clock();
        let now = clock.raw();
        let last = self.last_rejection.load(Ordering::Relaxed);
        let every = u64::try_from(REJECTIONS_EVERY.as_nanos()).unwrap_or(u64::MAX);
        if last != 0 && clock.delta_as_nanos(last, now) < every {
            return;
        }
        // One of the threads rejected at this instant keeps it.
        if self
            .last_rejection
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.record(kind, message);
        }
    }

    /// Keeps an event; `message` is made only when it is kept.
    #[cold]
    pub(crate) fn record(&self, kind: &'static str, message: impl FnOnce() -> String) {
        let Some(mut events) = self.events.try_lock() else {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let kept = KEPT.load(Ordering::Relaxed);
        while events.len() >= kept {
            events.pop_front();
        }
        events.push_back(PolicyEvent {
            policy: self.policy,
            name: Arc::clone(&self.name),
            kind,
            at: SystemTime::now(),
            message: message(),
            sequence: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        });
    }

    /// The events kept, newest first.
    pub(crate) fn recent(&self) -> Vec<PolicyEvent> {
        self.events.lock().iter().rev().cloned().collect()
    }
}

/// Which events [`recent_events`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this policy kind (`circuit_breaker`, ...).
    pub policy: Option<String>,
    /// Only instances of this name.
    pub name: Option<String>,
    /// Only events of this kind (`STATE_TRANSITION`, ...).
    pub kind: Option<String>,
    /// At most this many (the newest).
    pub limit: Option<usize>,
}

/// The recent events of every policy instance that `filter` lets
/// through, newest first.
///
/// ```
/// use cortex::resilience::{recent_events, CircuitBreaker, CircuitBreakerConfig, EventFilter};
///
/// let breaker = CircuitBreaker::new("doc-events", CircuitBreakerConfig::default())?;
/// breaker.force_open();
/// let _ = breaker.acquire(); // rejected
/// let events = recent_events(&EventFilter { name: Some("doc-events".into()), ..Default::default() });
/// let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.message.as_str())).collect();
/// assert_eq!(kinds, [("NOT_PERMITTED", "FORCED_OPEN"), ("STATE_TRANSITION", "CLOSED -> FORCED_OPEN")]);
/// # Ok::<(), cortex::resilience::ConfigError>(())
/// ```
pub fn recent_events(filter: &EventFilter) -> Vec<PolicyEvent> {
    use super::registry;
    let mut all = Vec::new();
    let wanted = |policy: &str, name: &str| {
        filter.policy.as_deref().is_none_or(|p| p == policy)
            && filter.name.as_deref().is_none_or(|n| n == name)
    };
    let mut take = |policy: &str, name: &str, ring: &EventRing| {
        if wanted(policy, name) {
            all.extend(ring.recent());
        }
    };
    for (name, p) in registry::breakers() {
        take("circuit_breaker", &name, p.ring());
    }
    for (name, p) in registry::retries() {
        take("retry", &name, p.ring());
    }
    for (name, p) in registry::bulkheads() {
        take("bulkhead", &name, p.ring());
    }
    for (name, p) in registry::rate_limiters() {
        take("rate_limiter", &name, p.ring());
    }
    for (name, p) in registry::timeouts() {
        take("timeout", &name, p.ring());
    }
    if let Some(kind) = &filter.kind {
        all.retain(|e| e.kind == kind);
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.sequence));
    if let Some(limit) = filter.limit {
        all.truncate(limit);
    }
    all
}
