//! Guards that live for the duration of one annotated call.

use std::sync::LazyLock;

use super::site::{CountedSite, FusedSite, TimedSite};
use super::Outcome;

/// Counts one call of a `#[counted]` function. If it is dropped without
/// [`finish`](CountedCall::finish), the call unwound (`panic`) or, for an
/// async fn, its future was dropped (`cancelled`).
#[derive(Debug)]
pub struct CountedCall {
    site: &'static CountedSite,
    done: bool,
}

impl CountedCall {
    /// Starts counting a call.
    #[inline(always)]
    pub fn start(site: &'static CountedSite) -> Self {
        CountedCall { site, done: false }
    }

    /// The call returned; records its outcome.
    #[inline(always)]
    pub fn finish(mut self, outcome: Outcome) {
        self.done = true;
        self.site.record(outcome);
    }
}

impl Drop for CountedCall {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.done {
            self.site.record(if std::thread::panicking() {
                Outcome::Panic
            } else {
                Outcome::Cancelled
            });
        }
    }
}

// A calibrated TSC clock where the CPU has a reliable one (a few ns to read),
// else the OS monotonic clock; quanta makes that choice once.
static CLOCK: LazyLock<quanta::Clock> = LazyLock::new(quanta::Clock::new);

/// The clock every timing in Cortex reads.
#[inline]
pub fn clock() -> &'static quanta::Clock {
    &CLOCK
}

/// Times one call of a `#[timed]` function, however it ends.
#[derive(Debug)]
pub struct TimedCall {
    site: &'static TimedSite,
    clock: &'static quanta::Clock,
    start: u64,
}

impl TimedCall {
    /// Starts timing a call.
    #[inline(always)]
    pub fn start(site: &'static TimedSite) -> Self {
        if site.track_in_flight {
            site.in_flight.add_int(1);
        }
        let clock: &'static quanta::Clock = &CLOCK;
        TimedCall {
            site,
            clock,
            start: clock.raw(),
        }
    }
}

impl Drop for TimedCall {
    #[inline(always)]
    fn drop(&mut self) {
        let end = self.clock.raw();
        let nanos = self.clock.delta_as_nanos(self.start, end);
        self.site.histogram.observe_nanos(nanos);
        if self.site.track_in_flight {
            self.site.in_flight.add_int(-1);
        }
    }
}

/// Counts and times one call of a function with both `#[counted]` and
/// `#[timed]`: the outcome picks the histogram lane.
#[derive(Debug)]
pub struct FusedCall {
    site: &'static FusedSite,
    clock: &'static quanta::Clock,
    start: u64,
    outcome: Option<Outcome>,
}

impl FusedCall {
    /// Starts counting and timing a call.
    #[inline(always)]
    pub fn start(site: &'static FusedSite) -> Self {
        if site.timed.track_in_flight {
            site.timed.in_flight.add_int(1);
        }
        let clock: &'static quanta::Clock = &CLOCK;
        FusedCall {
            site,
            clock,
            start: clock.raw(),
            outcome: None,
        }
    }

    /// The call returned with this outcome.
    #[inline(always)]
    pub fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }
}

impl Drop for FusedCall {
    #[inline(always)]
    fn drop(&mut self) {
        let end = self.clock.raw();
        let nanos = self.clock.delta_as_nanos(self.start, end);
        let outcome = match self.outcome {
            Some(o) => o,
            None if std::thread::panicking() => Outcome::Panic,
            None => Outcome::Cancelled,
        };
        let timed = &self.site.timed;
        timed
            .histogram
            .observe_nanos_in_lane(outcome as usize, nanos);
        if timed.track_in_flight {
            timed.in_flight.add_int(-1);
        }
    }
}
