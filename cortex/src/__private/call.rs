//! Guards that live for the duration of one annotated call.

use std::sync::LazyLock;

use super::site::{CountedSite, TimedSite};
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
            site.in_flight.add(1.0);
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
            self.site.in_flight.add(-1.0);
        }
    }
}
