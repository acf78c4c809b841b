//! Permission for one call, and how its outcome is recorded.

use std::fmt;

use super::machine::Ticket;
use super::CircuitBreaker;

/// How a call counts in the breaker's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// A success: lowers the failure rate.
    Success,
    /// A failure: counts towards `failure_rate`.
    Failure,
    /// Neither: the call is not counted (Resilience4j's ignored
    /// exceptions).
    Ignored,
}

/// Classifies a call's result the way Resilience4j does: an `Ok` is a
/// success unless `record_result` says it is a failure; an `Err` is
/// ignored if `ignore_if` says so (that wins), a failure if `record_if`
/// says so, and otherwise a success.
///
/// ```
/// use cortex::resilience::{classify, CallOutcome};
///
/// let is_timeout = |e: &&str| e.contains("timeout");
/// let is_cancel = |e: &&str| e.contains("cancel");
/// let empty = |v: &Vec<u8>| v.is_empty();
/// let c = |r: &Result<Vec<u8>, &str>| classify(r, is_timeout, is_cancel, empty);
/// assert_eq!(c(&Ok(vec![1])), CallOutcome::Success);
/// assert_eq!(c(&Ok(vec![])), CallOutcome::Failure);
/// assert_eq!(c(&Err("timeout")), CallOutcome::Failure);
/// assert_eq!(c(&Err("cancelled")), CallOutcome::Ignored);
/// assert_eq!(c(&Err("not found")), CallOutcome::Success);
/// ```
#[inline]
pub fn classify<T, E>(
    result: &Result<T, E>,
    record_if: impl Fn(&E) -> bool,
    ignore_if: impl Fn(&E) -> bool,
    record_result: impl Fn(&T) -> bool,
) -> CallOutcome {
    match result {
        Ok(v) if record_result(v) => CallOutcome::Failure,
        Ok(_) => CallOutcome::Success,
        Err(e) if ignore_if(e) => CallOutcome::Ignored,
        Err(e) if record_if(e) => CallOutcome::Failure,
        Err(_) => CallOutcome::Success,
    }
}

/// What a permit carries: the machine's word when given, and when the call
/// started (only timed when a slow-call threshold is set; else
/// `NOT_TIMED`). Word-sized fields only: a permit moves through registers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grant {
    pub(super) ticket: Ticket,
    pub(super) started: u64,
}

/// Permission for one call. Record how it went ([`Permit::success`],
/// [`Permit::failure`], [`Permit::record`]); a permit dropped unrecorded
/// (a cancelled call) counts as ignored and gives a trial place back, unless
/// it ran past `slow_call_threshold`: then it counts as a slow call, so a
/// hanging backend whose callers give up still opens the breaker.
#[must_use = "record the call's outcome with success(), failure() or record()"]
pub struct Permit<'a> {
    pub(super) breaker: &'a CircuitBreaker,
    pub(super) grant: Grant,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name())
            .field("trial", &self.grant.ticket.trial())
            .finish()
    }
}

impl Permit<'_> {
    /// Whether this call is one of a half-open breaker's trial calls.
    pub fn is_trial(&self) -> bool {
        self.grant.ticket.trial()
    }

    /// The call succeeded.
    #[inline]
    pub fn success(self) {
        self.record(CallOutcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(CallOutcome::Failure);
    }

    /// The call's outcome does not count.
    pub fn ignore(self) {
        self.record(CallOutcome::Ignored);
    }

    /// Records the call as `outcome`; a failure is kept in the breaker's
    /// [recent events](crate::resilience::recent_events) with `message`
    /// (made only then: say what went wrong, like the error's text).
    ///
    /// ```
    /// use cortex::resilience::{recent_events, CallOutcome, CircuitBreaker, EventFilter};
    /// let breaker = CircuitBreaker::new("doc-described", Default::default())?;
    /// breaker.acquire()?.record_with(CallOutcome::Failure, || "connection refused".into());
    /// let events = recent_events(&EventFilter { name: Some("doc-described".into()), ..Default::default() });
    /// assert_eq!((events[0].kind, events[0].message.as_str()), ("ERROR", "connection refused"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn record_with(self, outcome: CallOutcome, message: impl FnOnce() -> String) {
        let (breaker, grant) = (self.breaker, self.grant);
        std::mem::forget(self);
        breaker.inner.finish_with(grant, outcome, message);
    }

    /// Records the call as `outcome`.
    #[inline]
    pub fn record(self, outcome: CallOutcome) {
        let (breaker, grant) = (self.breaker, self.grant);
        // Recorded: not dropped as abandoned.
        std::mem::forget(self);
        breaker.inner.finish(grant, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.inner.abandon(self.grant);
    }
}

/// A [`Permit`] that owns a handle to its breaker, so it can move into a
/// spawned task (`'static`).
#[must_use = "record the call's outcome with success(), failure() or record()"]
pub struct OwnedPermit {
    pub(super) breaker: Option<CircuitBreaker>,
    pub(super) grant: Grant,
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &self.breaker.as_ref().map(CircuitBreaker::name))
            .field("trial", &self.grant.ticket.trial())
            .finish()
    }
}

impl OwnedPermit {
    /// Whether this call is one of a half-open breaker's trial calls.
    pub fn is_trial(&self) -> bool {
        self.grant.ticket.trial()
    }

    /// The call succeeded.
    pub fn success(self) {
        self.record(CallOutcome::Success);
    }

    /// The call failed.
    pub fn failure(self) {
        self.record(CallOutcome::Failure);
    }

    /// The call's outcome does not count.
    pub fn ignore(self) {
        self.record(CallOutcome::Ignored);
    }

    /// Records the call as `outcome`.
    pub fn record(mut self, outcome: CallOutcome) {
        if let Some(breaker) = self.breaker.take() {
            breaker.inner.finish(self.grant, outcome);
        }
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker.take() {
            breaker.inner.abandon(self.grant);
        }
    }
}
