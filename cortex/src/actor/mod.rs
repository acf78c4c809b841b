//! Actors: stateful tasks that own their data, take messages through a
//! bounded mailbox, and are restarted by their supervision strategy when they
//! fail, without losing the messages still queued.
//!
//! ```
//! use cortex::actor::{Actor, ActorSystem, Context, Reply, SpawnOptions};
//! use std::time::Duration;
//!
//! struct Counter { total: u64 }
//!
//! enum Msg { Add(u64), Get(Reply<u64>) }
//!
//! impl Actor for Counter {
//!     type Msg = Msg;
//!     type Error = String;
//!     async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), String> {
//!         match msg {
//!             Msg::Add(n) => self.total += n,
//!             Msg::Get(reply) => reply.send(self.total),
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let system = ActorSystem::new();
//! let counter = system.spawn(SpawnOptions::named("doc-counter"), || Counter { total: 0 }).unwrap();
//! counter.tell(Msg::Add(2)).await.unwrap();
//! counter.tell(Msg::Add(3)).await.unwrap();
//! assert_eq!(counter.ask(Msg::Get, Duration::from_secs(1)).await.unwrap(), 5);
//! system.shutdown(Duration::from_secs(1)).await;
//! # });
//! ```
//!
//! What is here so far: the `Actor` trait, `ActorSystem::spawn` with named
//! lookup, `tell` (waits when the mailbox is full), `try_tell`, `ask` with a
//! timeout, `stop`, supervision by restart (with a restart limit in a
//! sliding window and a backoff) or stop, panics caught like errors, dead
//! letters, metrics, a health component per named actor, a draining
//! `shutdown` with a deadline, and an [`EventBus`] of typed topics.
//!
//! An unnamed actor lives while an [`ActorRef`] to it does: when the last
//! one is dropped it handles what is queued, runs `stopped` and ends, and
//! [`ActorSystem::running`] no longer counts it. A named actor belongs to
//! its system (which keeps a handle for `lookup`) and runs until stopped.

mod actor_ref;
pub mod event_bus;
mod supervisor;
mod system;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use actor_ref::{ActorRef, Reply};
pub use event_bus::{EventBus, SlowPolicy, Subscription, Topic};
pub use supervisor::Supervisor;
pub use system::{ActorSystem, ShutdownReport, RETAINED_ENDED};

/// A stateful component that handles one message at a time.
pub trait Actor: Send + Sized + 'static {
    /// The messages it takes.
    type Msg: Send + 'static;
    /// What a failed message handling returns.
    type Error: fmt::Display + Send + 'static;

    /// Runs when the actor starts, and again after every restart.
    fn started(&mut self, _ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Handles one message. An `Err` (or a panic) is a failure the
    /// supervision strategy answers.
    fn handle(
        &mut self,
        msg: Self::Msg,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Runs when the actor stops for good: stopped, its last handle
    /// dropped, shut down, or failed past its strategy (the `Stop`
    /// strategy, `Escalate` outside a group, the restart limit; then on the
    /// instance that failed). Not when it fails and is restarted. A panic
    /// here is caught and reported.
    fn stopped(&mut self, _ctx: &mut Context<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// What an actor sees of itself while it runs.
#[derive(Debug)]
pub struct Context<A: Actor> {
    myself: ActorRef<A>,
    /// Timers this actor scheduled; cancelled when it stops.
    timers: Vec<tokio::task::AbortHandle>,
}

/// A scheduled message; [`cancel`](Timer::cancel) it, or let the actor's
/// stop cancel it.
#[derive(Debug)]
pub struct Timer {
    task: tokio::task::AbortHandle,
}

impl Timer {
    /// Cancels the timer: no further message is sent.
    pub fn cancel(&self) {
        self.task.abort();
    }
}

impl<A: Actor> Context<A> {
    pub(crate) fn new(myself: ActorRef<A>) -> Self {
        Context {
            myself,
            timers: Vec::new(),
        }
    }

    /// Sends `msg` to this actor after `delay`. The timer holds no
    /// reference that keeps the actor alive, and is cancelled when the
    /// actor stops (or with [`Timer::cancel`]).
    ///
    /// Must be called inside a Tokio runtime (it is, from `started` and
    /// `handle`).
    pub fn schedule_once(&mut self, delay: Duration, msg: A::Msg) -> Timer {
        let weak = self.myself.tx.downgrade();
        self.add_timer(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(tx) = weak.upgrade() {
                let _ = tx.send(actor_ref::Envelope::new(msg)).await;
            }
        }))
    }

    /// Sends `make()` to this actor every `period` (the first after one
    /// period), until the actor stops or the timer is cancelled. A tick
    /// that comes while the previous message still waits for room in a
    /// full mailbox is skipped, so a slow actor is not flooded.
    pub fn schedule_every(
        &mut self,
        period: Duration,
        make: impl Fn() -> A::Msg + Send + 'static,
    ) -> Timer {
        let weak = self.myself.tx.downgrade();
        let period = period.max(Duration::from_millis(1));
        self.add_timer(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                ticks.tick().await;
                let Some(tx) = weak.upgrade() else { return };
                if tx.send(actor_ref::Envelope::new(make())).await.is_err() {
                    return;
                }
            }
        }))
    }

    fn add_timer(&mut self, task: tokio::task::JoinHandle<()>) -> Timer {
        // Finished timers are let go, so the list stays as long as the
        // timers that are still pending.
        self.timers.retain(|t| !t.is_finished());
        let handle = task.abort_handle();
        self.timers.push(handle.clone());
        Timer { task: handle }
    }

    /// Cancels every timer (the actor stopped).
    pub(crate) fn cancel_timers(&mut self) {
        for t in self.timers.drain(..) {
            t.abort();
        }
    }
    /// The actor's own reference (to give to others, or to stop itself).
    /// It does not keep the actor alive; a clone of it does.
    pub fn myself(&self) -> &ActorRef<A> {
        &self.myself
    }

    /// The actor's name.
    pub fn name(&self) -> &str {
        self.myself.name()
    }
}

/// What to do when an actor fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Make a fresh actor from the factory; the mailbox and the messages in
    /// it survive; the failing message goes to the dead letters. More than
    /// `max` restarts within `within` stops the actor for good.
    Restart {
        /// Restarts allowed in the window.
        max: u32,
        /// The sliding window.
        within: Duration,
        /// Pause before each restart.
        backoff: Duration,
    },
    /// Stop at the first failure.
    Stop,
    /// Let the supervisor decide: in a [`Supervisor`] group the actor is
    /// restarted (with the default limit) and, for
    /// [`GroupStrategy::AllForOne`], so are its siblings; outside a group it
    /// stops.
    Escalate,
}

/// How a [`Supervisor`] treats its children when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupStrategy {
    /// Only the failing child is restarted (by its own strategy).
    #[default]
    OneForOne,
    /// Every child of the group is restarted (fresh from its factory, its
    /// mailbox intact) when one fails.
    AllForOne,
}

/// What a supervisor is told about its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// A child failed (and was handled by its strategy).
    ChildFailed {
        /// The child.
        child: String,
        /// The error or panic message.
        reason: String,
    },
    /// A child hit its restart limit (or failed with `Stop`) and stopped for
    /// good.
    ChildGaveUp {
        /// The child.
        child: String,
    },
}

impl Default for Strategy {
    /// Restart, at most 3 times a minute, without backoff.
    fn default() -> Self {
        Strategy::Restart {
            max: 3,
            within: Duration::from_secs(60),
            backoff: Duration::ZERO,
        }
    }
}

/// How to spawn an actor.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    name: Option<String>,
    mailbox: Option<usize>,
    strategy: Strategy,
}

impl SpawnOptions {
    /// An actor registered under `name` (looked up with
    /// [`ActorSystem::lookup`], shown in metrics and `/health`).
    pub fn named(name: &str) -> Self {
        SpawnOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        }
    }

    /// Mailbox capacity (default 1024); `tell` waits when it is full.
    pub fn mailbox(mut self, capacity: usize) -> Self {
        self.mailbox = Some(capacity.max(1));
        self
    }

    /// The supervision strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }
}

/// Why a message could not be delivered or answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The actor has stopped; the message went to the dead letters.
    #[error("actor `{0}` has stopped")]
    Stopped(Arc<str>),
    /// The mailbox is full (`try_tell`).
    #[error("actor `{0}`'s mailbox is full")]
    MailboxFull(Arc<str>),
    /// No answer within the timeout (`ask`).
    #[error("actor `{name}` did not answer within {after:?}")]
    Timeout {
        /// The actor.
        name: Arc<str>,
        /// The timeout.
        after: Duration,
    },
    /// An actor with this name already runs.
    #[error("an actor named `{0}` already exists")]
    NameTaken(String),
}
