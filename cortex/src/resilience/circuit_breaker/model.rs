//! Model checks (loom) of the breaker's lock-free protocols: every
//! interleaving of a few threads, on loom's atomics and mutex. Run with the
//! crate's unit tests.

use loom::sync::Arc;
use loom::thread;

use super::machine::{self, code, Machine, Ticket};
use super::window::{CountWindow, Outcome, TimeWindow, Totals};
use crate::resilience::sync::model::Loom;
use crate::resilience::CircuitBreakerConfig;

/// Every interleaving with up to three preemptions: enough for these
/// protocols' races, and quick.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

fn config(half_open_calls: u32) -> CircuitBreakerConfig {
    CircuitBreakerConfig {
        half_open_calls,
        ..CircuitBreakerConfig::default()
    }
}

const FAIL: Outcome = Outcome {
    failed: true,
    slow: false,
};
const OK: Outcome = Outcome {
    failed: false,
    slow: false,
};

/// Two callers race for the one trial place of a half-open episode while a
/// third starts a new episode: at most one trial per episode, a stale trial
/// neither gives a place back to nor counts in the new one, and the
/// episode's places always add up.
#[test]
fn half_open_places_belong_to_their_episode() {
    model(|| {
        let m = Arc::new(Machine::<Loom>::new());
        let c = config(1);
        m.force(machine::HALF_OPEN, 0, &c, &mut |_, _| {}, &mut || {});
        let caller = |m: Arc<Machine<Loom>>| {
            thread::spawn(move || {
                let c = config(1);
                let got = m.acquire(0, || c, |_, _| {}, || {});
                if let Ok(ticket) = got {
                    if ticket.trial() {
                        // One gives its place back, one could count it: both
                        // are tag-checked against the episode.
                        m.give_back(ticket);
                    }
                }
                got.ok()
            })
        };
        let a = caller(Arc::clone(&m));
        let b = caller(Arc::clone(&m));
        let renew = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let c = config(1);
                m.force(machine::HALF_OPEN, 0, &c, &mut |_, _| {}, &mut || {});
                (m.word(), m.trials_raw())
            })
        };
        let tickets: Vec<Ticket> = [a.join().unwrap(), b.join().unwrap()]
            .into_iter()
            .flatten()
            .collect();
        let renewed = renew.join().unwrap();
        // Never two trials of one episode at once: both were given places
        // only if one came back in between (the give-back is in the same
        // thread right after).
        let word = m.word();
        assert_eq!(code(word), machine::HALF_OPEN);
        for t in &tickets {
            assert!(t.trial());
        }
        // The current episode has its one place free (every trial of it was
        // given back; none of an older one was counted here).
        let c = config(1);
        let raw = m.trials_raw();
        let now = m.acquire(0, || c, |_, _| {}, || {});
        assert!(
            now.is_ok(),
            "the current episode's place was lost: word {word:#x} trials {raw:#x} tickets {tickets:?} renewed {renewed:x?}"
        );
        assert!(
            m.acquire(0, || c, |_, _| {}, || {}).is_err(),
            "a place was made up"
        );
    });
}

/// Trials of one episode finishing at once: exactly one sees the episode
/// complete.
#[test]
fn one_verdict_per_episode() {
    model(|| {
        let m = Arc::new(Machine::<Loom>::new());
        let c = config(2);
        m.force(machine::HALF_OPEN, 0, &c, &mut |_, _| {}, &mut || {});
        let t1 = m.acquire(0, || c, |_, _| {}, || {}).unwrap();
        let t2 = m.acquire(0, || c, |_, _| {}, || {}).unwrap();
        let finish = |m: Arc<Machine<Loom>>, t: Ticket, failed: bool| {
            thread::spawn(move || m.record_trial(t, failed, false, 2))
        };
        let a = finish(Arc::clone(&m), t1, true);
        let b = finish(Arc::clone(&m), t2, false);
        let verdicts: Vec<_> = [a.join().unwrap(), b.join().unwrap()]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(verdicts.len(), 1);
        assert_eq!((verdicts[0].done, verdicts[0].failed), (2, 1));
    });
}

/// Successes from two threads and a failure at once: every call counted,
/// the failure in the window.
#[test]
fn count_window_counts_every_call() {
    model(|| {
        let w = Arc::new(CountWindow::<Loom>::new(4, 4));
        w.record(OK, 1);
        let a = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.record(FAIL, 1))
        };
        let b = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.record(OK, 1))
        };
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(
            w.totals(),
            Totals {
                calls: 3,
                failed: 1,
                slow: 0
            }
        );
        // Four more successes push the failure out.
        for _ in 0..4 {
            w.record(OK, 1);
        }
        assert_eq!(
            w.totals(),
            Totals {
                calls: 4,
                failed: 0,
                slow: 0
            }
        );
    });
}

/// A success moving its stripe's finished second into a bucket while
/// another thread turns the window: the count lands in the window once.
#[test]
fn a_stripe_settles_its_second_once() {
    model(|| {
        let w = Arc::new(TimeWindow::<Loom>::new(4, 4, 10));
        w.record(10, OK, 9);
        let a = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.record(11, OK, 9))
        };
        let b = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.totals(12))
        };
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(w.totals(12).calls, 2);
    });
}

/// A call recorded while another turns the window to a new second: the
/// running totals end equal to the buckets, and no call of the window is
/// lost.
#[test]
fn time_window_turn_loses_nothing() {
    model(|| {
        let w = Arc::new(TimeWindow::<Loom>::new(2, 2, 10));
        let a = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.record(10, FAIL, 9))
        };
        let b = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.record(11, OK, 9))
        };
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(
            w.totals(11),
            Totals {
                calls: 2,
                failed: 1,
                slow: 0
            }
        );
        // Second 12 expires second 10: whichever bucket the failure landed
        // in, the totals follow the buckets.
        let t = w.totals(13);
        assert_eq!(t, Totals::default());
    });
}
