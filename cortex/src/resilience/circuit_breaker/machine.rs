//! The state machine: one word holds the state and a generation that every
//! transition (and `reconfigure`) moves on, so anything made in one
//! episode (a permit, a verdict, a scheduled half-open) can tell it is
//! stale and does nothing in a later one. Transitions take a lock and are
//! conditional on the word they were decided on, except the forced ones
//! (`reset`, `force_open`, `disable`), which always win.
//!
//! The trial calls of a half-open episode live in one more word, tagged
//! with the episode: taking a place, giving it back and counting a trial's
//! outcome are compare-and-swaps that only succeed within that episode, so
//! exactly `half_open_calls` trials run per episode under any interleaving.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use crate::resilience::sync::{Atom, Family, Lock};
use crate::resilience::CircuitBreakerConfig;

/// State codes in the low bits of the word.
pub(crate) const CLOSED: u64 = 0;
pub(crate) const OPEN: u64 = 1;
pub(crate) const HALF_OPEN: u64 = 2;
pub(crate) const DISABLED: u64 = 3;
pub(crate) const FORCED_OPEN: u64 = 4;
const CODE_BITS: u32 = 3;

/// The state code of a word.
#[inline(always)]
pub(crate) fn code(word: u64) -> u64 {
    word & ((1 << CODE_BITS) - 1)
}

// The trial word: places left, trials done, of those failed and slow (12
// bits each: half_open_calls is at most 4095), and the episode's tag.
const FIELD: u32 = 12;
const FIELD_MASK: u64 = (1 << FIELD) - 1;
const TAG_SHIFT: u32 = 4 * FIELD;

fn tag(word: u64) -> u64 {
    (word >> CODE_BITS) & 0xFFFF
}

fn field(trials: u64, i: u32) -> u64 {
    (trials >> (i * FIELD)) & FIELD_MASK
}

const LEFT: u32 = 0;
const DONE: u32 = 1;
const FAILED: u32 = 2;
const SLOW: u32 = 3;

/// A half-open episode's trial results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trials {
    pub(crate) done: u64,
    pub(crate) failed: u64,
    pub(crate) slow: u64,
}

/// Why a call may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Open: a trial place comes in this many nanoseconds.
    Open(u64),
    /// Half-open with every trial place taken.
    TrialsTaken,
    /// Forced open.
    Forced,
}

/// What a permit remembers of the machine: the word when it was given. A
/// permit given half-open is a trial call of that episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) word: u64,
}

impl Ticket {
    #[inline(always)]
    pub(crate) fn trial(self) -> bool {
        code(self.word) == HALF_OPEN
    }
}

/// What the lock protects besides the word: the timing of the current
/// episode.
pub(crate) struct Machine<S: Family> {
    word: S::U64,
    trials: S::U64,
    /// When an open episode lets trials through (nanoseconds on the
    /// breaker's clock).
    open_until: S::U64,
    /// When a half-open episode gives up on its trials (`u64::MAX`: never).
    half_open_until: S::U64,
    /// Consecutive openings, for a growing `open_for`.
    opens_in_row: S::U64,
    lock: S::Lock,
}

impl<S: Family> Machine<S> {
    pub(crate) fn new() -> Self {
        Machine {
            word: S::U64::new(CLOSED),
            trials: S::U64::new(0),
            open_until: S::U64::new(0),
            half_open_until: S::U64::new(u64::MAX),
            opens_in_row: S::U64::new(0),
            lock: S::Lock::new(),
        }
    }

    /// The word now.
    #[inline(always)]
    pub(crate) fn word(&self) -> u64 {
        self.word.load(Acquire)
    }

    #[cfg(test)]
    pub(crate) fn trials_raw(&self) -> u64 {
        self.trials.load(Acquire)
    }

    pub(crate) fn open_until(&self) -> u64 {
        self.open_until.load(Acquire)
    }

    pub(crate) fn half_open_until(&self) -> u64 {
        self.half_open_until.load(Acquire)
    }

    /// Asks for a permit at time `now`. An open episode whose time is up,
    /// or a half-open one that waited too long for its trials, is moved on
    /// first (`on_change` is told, under the lock, as with [`Self::transition`]).
    pub(crate) fn acquire(
        &self,
        now: u64,
        config: impl Fn() -> CircuitBreakerConfig,
        mut on_change: impl FnMut(u64, u64),
        mut reset_window: impl FnMut(),
    ) -> Result<Ticket, Refusal> {
        loop {
            let word = self.word();
            match code(word) {
                CLOSED | DISABLED => {
                    return Ok(Ticket { word });
                }
                FORCED_OPEN => return Err(Refusal::Forced),
                OPEN => {
                    let until = self.open_until();
                    if now < until {
                        return Err(Refusal::Open(until - now));
                    }
                    self.transition(
                        word,
                        HALF_OPEN,
                        now,
                        &config(),
                        &mut on_change,
                        &mut reset_window,
                    );
                }
                _ => {
                    if now >= self.half_open_until() {
                        self.transition(
                            word,
                            OPEN,
                            now,
                            &config(),
                            &mut on_change,
                            &mut reset_window,
                        );
                        continue;
                    }
                    let tag = tag(word);
                    let took = self.trials.fetch_update(AcqRel, Acquire, |t| {
                        (t >> TAG_SHIFT == tag && field(t, LEFT) > 0).then(|| t - 1)
                    });
                    return match took {
                        Ok(_) => Ok(Ticket { word }),
                        Err(_) if self.word() != word => continue,
                        Err(_) => Err(Refusal::TrialsTaken),
                    };
                }
            }
        }
    }

    /// Gives a trial place back (a trial call that ended unrecorded), if
    /// its episode is still on.
    pub(crate) fn give_back(&self, ticket: Ticket) {
        let tag = tag(ticket.word);
        let _ = self
            .trials
            .fetch_update(AcqRel, Acquire, |t| (t >> TAG_SHIFT == tag).then(|| t + 1));
    }

    /// Counts a trial's outcome in its episode; the episode's results once
    /// this was its last trial (`half_open_calls` of them), else `None` (also
    /// for a stale ticket).
    pub(crate) fn record_trial(
        &self,
        ticket: Ticket,
        failed: bool,
        slow: bool,
        half_open_calls: u32,
    ) -> Option<Trials> {
        let tag = tag(ticket.word);
        let add = (1 << (DONE * FIELD))
            | (u64::from(failed) << (FAILED * FIELD))
            | (u64::from(slow) << (SLOW * FIELD));
        let before = self
            .trials
            .fetch_update(AcqRel, Acquire, |t| {
                (t >> TAG_SHIFT == tag).then(|| t + add)
            })
            .ok()?;
        let after = before + add;
        (field(after, DONE) == u64::from(half_open_calls)).then(|| Trials {
            done: field(after, DONE),
            failed: field(after, FAILED),
            slow: field(after, SLOW),
        })
    }

    /// Moves from the state of `expected` (which must still be the word) to
    /// `to`; false if the word changed meanwhile (the decision is stale).
    /// `on_change(from, to)` runs under the lock, so changes are reported in
    /// the order they happen; `reset_window` runs under it when closing.
    pub(crate) fn transition(
        &self,
        expected: u64,
        to: u64,
        now: u64,
        config: &CircuitBreakerConfig,
        on_change: &mut impl FnMut(u64, u64),
        reset_window: &mut impl FnMut(),
    ) -> bool {
        let _guard = self.lock.lock();
        let word = self.word.load(Acquire);
        if word != expected {
            return false;
        }
        self.set(word, to, now, config, reset_window);
        on_change(code(word), to);
        true
    }

    /// Moves to `to` whatever the state (`reset`, `force_open`, `disable`);
    /// the state before.
    pub(crate) fn force(
        &self,
        to: u64,
        now: u64,
        config: &CircuitBreakerConfig,
        on_change: &mut impl FnMut(u64, u64),
        reset_window: &mut impl FnMut(),
    ) -> u64 {
        let _guard = self.lock.lock();
        let word = self.word.load(Acquire);
        self.set(word, to, now, config, reset_window);
        if code(word) != to {
            on_change(code(word), to);
        }
        code(word)
    }

    /// Starts a new generation in the same state (a new configuration):
    /// permits of the old one become stale; a half-open episode starts
    /// over with the new number of trials, an open one keeps its time.
    pub(crate) fn renew(
        &self,
        now: u64,
        config: &CircuitBreakerConfig,
        reset_window: &mut impl FnMut(),
    ) {
        let _guard = self.lock.lock();
        let word = self.word.load(Acquire);
        let state = code(word);
        if state == HALF_OPEN {
            self.set(word, HALF_OPEN, now, config, reset_window);
        } else {
            reset_window();
            self.word.store(next(word, state), Release);
        }
    }

    fn set(
        &self,
        word: u64,
        to: u64,
        now: u64,
        config: &CircuitBreakerConfig,
        reset_window: &mut impl FnMut(),
    ) {
        let new = next(word, to);
        match to {
            OPEN => {
                let n = self.opens_in_row.fetch_add(1, Relaxed) + 1;
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                let open_for = nanos(config.open_for_nth(n));
                self.open_until.store(now.saturating_add(open_for), Release);
                self.half_open_until.store(u64::MAX, Release);
            }
            HALF_OPEN => {
                let left = u64::from(config.half_open_calls).min(FIELD_MASK);
                // A swap, not a store: the same on hardware, and loom (whose
                // model lets a plain store slip inside a racing
                // compare-and-swap, tokio-rs/loom#254) then checks the real
                // protocol.
                self.trials.swap((tag(new) << TAG_SHIFT) | left, AcqRel);
                let until = config
                    .max_wait_in_half_open
                    .map_or(u64::MAX, |d| now.saturating_add(nanos(d)));
                self.half_open_until.store(until, Release);
            }
            CLOSED => {
                self.opens_in_row.store(0, Relaxed);
                self.half_open_until.store(u64::MAX, Release);
                reset_window();
            }
            _ => {
                self.half_open_until.store(u64::MAX, Release);
            }
        }
        self.word.store(new, Release);
    }
}

/// The word after `word` in state `to`: the next generation.
fn next(word: u64, to: u64) -> u64 {
    ((word >> CODE_BITS).wrapping_add(1) << CODE_BITS) | to
}

pub(crate) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::sync::Std;

    fn timing(half_open_calls: u32) -> CircuitBreakerConfig {
        CircuitBreakerConfig {
            half_open_calls,
            open_for: std::time::Duration::from_nanos(100),
            ..CircuitBreakerConfig::default()
        }
    }

    #[test]
    fn stale_trials_touch_nothing() {
        let m = Machine::<Std>::new();
        let t = timing(2);
        let mut changes = Vec::new();
        m.force(OPEN, 0, &t, &mut |a, b| changes.push((a, b)), &mut || {});
        let first = m
            .acquire(100, || t, |a, b| changes.push((a, b)), || {})
            .unwrap();
        assert!(first.trial());
        // A reset and a new episode.
        m.force(CLOSED, 100, &t, &mut |_, _| {}, &mut || {});
        m.force(OPEN, 100, &t, &mut |_, _| {}, &mut || {});
        let a = m.acquire(200, || t, |_, _| {}, || {}).unwrap();
        let b = m.acquire(200, || t, |_, _| {}, || {}).unwrap();
        assert_eq!(
            m.acquire(200, || t, |_, _| {}, || {}),
            Err(Refusal::TrialsTaken)
        );
        // The old trial neither gives a place back nor counts.
        m.give_back(first);
        assert_eq!(
            m.acquire(200, || t, |_, _| {}, || {}),
            Err(Refusal::TrialsTaken)
        );
        assert_eq!(m.record_trial(first, false, false, 2), None);
        assert_eq!(m.record_trial(a, true, false, 2), None);
        assert_eq!(
            m.record_trial(b, false, false, 2),
            Some(Trials {
                done: 2,
                failed: 1,
                slow: 0
            })
        );
        assert_eq!(changes, vec![(CLOSED, OPEN), (OPEN, HALF_OPEN)]);
    }

    #[test]
    fn a_stale_decision_loses_to_a_forced_state() {
        let m = Machine::<Std>::new();
        let t = timing(1);
        let seen = m.word();
        m.force(FORCED_OPEN, 0, &t, &mut |_, _| {}, &mut || {});
        // A closed-state verdict decided on the old word does nothing.
        assert!(!m.transition(seen, OPEN, 0, &t, &mut |_, _| {}, &mut || {}));
        assert_eq!(code(m.word()), FORCED_OPEN);
    }
}
