//! Handles to running actors.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use tokio::sync::{mpsc, oneshot, Notify};

use super::{Actor, Error};
use crate::metrics::Counter;

pub(crate) const RUNNING: u8 = 0;
pub(crate) const STOPPED: u8 = 1;
pub(crate) const FAILED: u8 = 2;

/// A message in a mailbox, with the span current when it was sent: the
/// actor handles it as a child of that span. Boxed, and only when there is
/// one, so a mailbox slot grows by one pointer.
pub(crate) struct Envelope<M> {
    pub(crate) msg: M,
    pub(crate) parent: Option<Box<crate::trace::Active>>,
}

impl<M> Envelope<M> {
    #[inline]
    pub(crate) fn new(msg: M) -> Self {
        let parent = if crate::trace::current_raw().is_some() {
            Some(Box::new(crate::trace::Active::capture()))
        } else {
            None
        };
        Envelope { msg, parent }
    }
}

pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) state: AtomicU8,
    pub(crate) stopping: AtomicBool,
    pub(crate) restart_requested: AtomicBool,
    /// The last handle that keeps the actor alive was dropped (checked
    /// against `life` before the actor stops: a new one may have come).
    pub(crate) abandoned: AtomicBool,
    pub(crate) stop: Notify,
    /// Woken when the actor has ended (its state is no longer RUNNING).
    pub(crate) ended: Notify,
    /// The handles that keep the actor alive share this.
    pub(crate) life: Mutex<Weak<Life>>,
    pub(crate) group: Option<Arc<super::supervisor::Group>>,
    pub(crate) dead_letters: Counter,
}

/// Shared by the handles that keep an actor alive; when the last one goes,
/// the actor is asked to stop.
pub(crate) struct Life {
    shared: Arc<Shared>,
}

impl Drop for Life {
    fn drop(&mut self) {
        self.shared.abandoned.store(true, Ordering::Release);
        self.shared.stop.notify_one();
    }
}

impl Shared {
    pub(crate) fn new(
        name: Arc<str>,
        group: Option<Arc<super::supervisor::Group>>,
        dead_letters: Counter,
    ) -> Arc<Self> {
        Arc::new(Shared {
            name,
            state: AtomicU8::new(RUNNING),
            stopping: AtomicBool::new(false),
            restart_requested: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            stop: Notify::new(),
            ended: Notify::new(),
            life: Mutex::new(Weak::new()),
            group,
            dead_letters,
        })
    }

    /// A share of the actor's life: the current one, or a new one when
    /// every handle was dropped (the actor then stays, if it has not
    /// stopped yet).
    pub(crate) fn life(self: &Arc<Self>) -> Arc<Life> {
        let mut life = self.life.lock();
        if let Some(l) = life.upgrade() {
            return l;
        }
        let l = Arc::new(Life {
            shared: Arc::clone(self),
        });
        *life = Arc::downgrade(&l);
        l
    }

    /// Whether no handle keeps the actor alive any more (after an
    /// `abandoned` signal: a handle made since then counts).
    pub(crate) fn is_abandoned(&self) -> bool {
        self.life.lock().strong_count() == 0
    }

    /// The actor has ended: records `state` and wakes those waiting.
    pub(crate) fn end(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        self.ended.notify_waiters();
    }

    /// Waits until the actor has ended.
    pub(crate) async fn wait_ended(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.state.load(Ordering::Acquire) != RUNNING {
                return;
            }
            ended.await;
        }
    }

    pub(crate) fn request_stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_one();
    }

    /// Asks the actor to replace itself with a fresh one from its factory.
    pub(crate) fn request_restart(&self) {
        self.restart_requested.store(true, Ordering::Release);
        self.stop.notify_one();
    }
}

/// A handle to a running actor. Cheap to clone.
///
/// An unnamed actor lives while a handle to it does: when the last
/// `ActorRef` is dropped, it handles what is already in its mailbox, runs
/// `stopped` and ends, and the system forgets it (so an actor per request
/// costs nothing once the request is done). A named actor belongs to its
/// system, which keeps a handle for [`lookup`](super::ActorSystem::lookup):
/// it runs until stopped. Timers and event bus subscriptions do not keep
/// an actor alive.
pub struct ActorRef<A: Actor> {
    pub(crate) tx: mpsc::Sender<Envelope<A::Msg>>,
    pub(crate) shared: Arc<Shared>,
    /// `None` for the actor's own handle in its `Context` and for the
    /// system's internal ones, which do not keep it alive.
    life: Option<Arc<Life>>,
}

impl<A: Actor> Clone for ActorRef<A> {
    /// Another handle, which keeps the actor alive (also when cloned from
    /// [`Context::myself`](super::Context::myself)).
    fn clone(&self) -> Self {
        ActorRef {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            life: Some(match &self.life {
                Some(l) => Arc::clone(l),
                None => self.shared.life(),
            }),
        }
    }
}

impl<A: Actor> ActorRef<A> {
    /// A handle that keeps the actor alive.
    pub(crate) fn live(tx: mpsc::Sender<Envelope<A::Msg>>, shared: Arc<Shared>) -> Self {
        let life = Some(shared.life());
        ActorRef { tx, shared, life }
    }

    /// This handle without its share of the actor's life.
    pub(crate) fn detached(&self) -> Self {
        ActorRef {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            life: None,
        }
    }
}

impl<A: Actor> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("name", &self.shared.name)
            .finish()
    }
}

/// Where an actor sends the answer to an [`ask`](ActorRef::ask).
#[derive(Debug)]
pub struct Reply<T>(oneshot::Sender<T>);

impl<T> Reply<T> {
    /// Sends the answer (ignored if the asker gave up).
    pub fn send(self, value: T) {
        let _ = self.0.send(value);
    }
}

impl<A: Actor> ActorRef<A> {
    /// The actor's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether the actor has stopped (by `stop`, shutdown, or a failure it
    /// was not restarted from).
    pub fn is_stopped(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) != RUNNING
    }

    /// Whether it stopped because it failed past its restart limit (or with
    /// the `Stop` strategy).
    pub fn has_failed(&self) -> bool {
        self.shared.state.load(Ordering::Acquire) == FAILED
    }

    fn stopped(&self) -> Error {
        self.shared.dead_letters.inc();
        Error::Stopped(Arc::clone(&self.shared.name))
    }

    /// Sends a message, waiting while the mailbox is full.
    ///
    /// # Errors
    /// [`Error::Stopped`] if the actor has stopped.
    pub async fn tell(&self, msg: A::Msg) -> Result<(), Error> {
        self.tx
            .send(Envelope::new(msg))
            .await
            .map_err(|_| self.stopped())
    }

    /// Sends a message if there is room now.
    ///
    /// # Errors
    /// [`Error::MailboxFull`], or [`Error::Stopped`].
    pub fn try_tell(&self, msg: A::Msg) -> Result<(), Error> {
        self.tx.try_send(Envelope::new(msg)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::MailboxFull(Arc::clone(&self.shared.name)),
            mpsc::error::TrySendError::Closed(_) => self.stopped(),
        })
    }

    /// Sends the message `make(reply)` and waits for the answer.
    ///
    /// # Errors
    /// [`Error::Timeout`] if no answer came in time; [`Error::Stopped`] if
    /// the actor stopped (or dropped the reply) first.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> A::Msg,
        timeout: Duration,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let asked = async {
            self.tell(make(Reply(tx))).await?;
            rx.await
                .map_err(|_| Error::Stopped(Arc::clone(&self.shared.name)))
        };
        tokio::time::timeout(timeout, asked)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    name: Arc::clone(&self.shared.name),
                    after: timeout,
                })
            })
    }

    /// Stops the actor: it takes no new messages, handles those already
    /// queued, runs `stopped`, and ends.
    pub fn stop(&self) {
        self.shared.request_stop();
    }
}
