//! Typed publish/subscribe between actors and plain receivers.
//!
//! Each subscriber has a bounded buffer and an explicit policy for when it
//! falls behind: drop the oldest events (counted in
//! `cortex_event_bus_dropped_total{topic}` and logged), or make publishers
//! wait, for a bounded time (then the event is dropped for it, counted the
//! same way). A subscriber is never detached silently; it ends when it is
//! dropped or, for an actor, when the actor stops.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::{Actor, ActorRef, Error};
use crate::metrics::{Counter, Family};

/// How long [`SlowPolicy::Backpressure`] makes a publisher wait.
pub const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(1);

/// What happens when a subscriber's buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Drop the oldest buffered event (counted and logged).
    DropOldest,
    /// Make the publisher wait until there is room, for at most
    /// [`DEFAULT_DELIVERY_TIMEOUT`] (1 s); then the event is dropped for
    /// this subscriber (counted and logged). The bound is what keeps an
    /// actor that publishes to a topic it subscribes to from waiting on
    /// itself forever.
    Backpressure,
    /// [`Backpressure`](Self::Backpressure), waiting at most this long.
    BackpressureFor(Duration),
}

impl SlowPolicy {
    /// How long a publisher may wait for room (`None`: not at all).
    fn wait(self) -> Option<Duration> {
        match self {
            SlowPolicy::DropOldest => None,
            SlowPolicy::Backpressure => Some(DEFAULT_DELIVERY_TIMEOUT),
            SlowPolicy::BackpressureFor(d) => Some(d),
        }
    }
}

struct Subscriber<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    policy: SlowPolicy,
    readable: Notify,
    writable: Notify,
    closed: AtomicBool,
    /// Every handle to the topic (and its bus) is gone: no event can come.
    topic_gone: AtomicBool,
    dropped: AtomicU64,
}

/// A topic's subscribers, shared by its handles; when the last handle goes,
/// each subscription is told, so its `recv` ends.
struct Subscribers<T>(Mutex<Vec<Arc<Subscriber<T>>>>);

impl<T> Subscribers<T> {
    fn new() -> Arc<Self> {
        Arc::new(Subscribers(Mutex::new(Vec::new())))
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Vec<Arc<Subscriber<T>>>> {
        self.0.lock()
    }
}

impl<T> Drop for Subscribers<T> {
    fn drop(&mut self) {
        for sub in self.0.get_mut().drain(..) {
            sub.topic_gone.store(true, Ordering::Release);
            // A permit for a receiver about to wait, a wake for those waiting.
            sub.readable.notify_one();
            sub.readable.notify_waiters();
        }
    }
}

/// A stream of events from one topic. Dropping it unsubscribes.
pub struct Subscription<T> {
    sub: Arc<Subscriber<T>>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("buffered", &self.sub.queue.lock().len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl<T> Subscription<T> {
    /// The next event, waiting for one; `None` once the topic is gone
    /// (every [`Topic`] handle and its bus dropped) and the buffered events
    /// are read, so a `while let Some(event) = sub.recv().await` loop and
    /// its task end.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            let readable = self.sub.readable.notified();
            tokio::pin!(readable);
            readable.as_mut().enable();
            if let Some(event) = self.sub.queue.lock().pop_front() {
                self.sub.writable.notify_one();
                return Some(event);
            }
            if self.sub.closed.load(Ordering::Acquire)
                || self.sub.topic_gone.load(Ordering::Acquire)
            {
                return None;
            }
            readable.await;
        }
    }

    /// Events dropped because this subscriber fell behind.
    pub fn dropped(&self) -> u64 {
        self.sub.dropped.load(Ordering::Relaxed)
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.sub.closed.store(true, Ordering::Release);
        self.sub.writable.notify_waiters();
    }
}

/// A named, typed topic.
pub struct Topic<T> {
    name: Arc<str>,
    subscribers: Arc<Subscribers<T>>,
    dropped: Option<Counter>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            name: Arc::clone(&self.name),
            subscribers: Arc::clone(&self.subscribers),
            dropped: self.dropped.clone(),
        }
    }
}

impl<T> fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("subscribers", &self.subscribers.lock().len())
            .finish()
    }
}

impl<T> Topic<T> {
    /// A topic outside any bus (a supervisor's events).
    pub(crate) fn standalone(name: &str) -> Self {
        Topic {
            name: name.into(),
            subscribers: Subscribers::new(),
            dropped: None,
        }
    }
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// A new subscriber with a buffer of `capacity` events.
    pub fn subscribe(&self, capacity: usize, policy: SlowPolicy) -> Subscription<T> {
        let sub = Arc::new(Subscriber {
            queue: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            policy,
            readable: Notify::new(),
            writable: Notify::new(),
            closed: AtomicBool::new(false),
            topic_gone: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        self.subscribers.lock().push(Arc::clone(&sub));
        Subscription { sub }
    }

    /// Delivers every event to `actor` as `to_msg(event)`, until the actor
    /// stops (the forwarding task then ends at once, events or not) or the
    /// topic is gone. The subscription does not keep the actor alive. Must
    /// be called inside a Tokio runtime.
    pub fn subscribe_actor<A: Actor>(
        &self,
        actor: ActorRef<A>,
        capacity: usize,
        policy: SlowPolicy,
        to_msg: impl Fn(T) -> A::Msg + Send + 'static,
    ) {
        let mut subscription = self.subscribe(capacity, policy);
        let actor = actor.detached();
        tokio::spawn(async move {
            let ended = Arc::clone(&actor.shared);
            let forward = async move {
                while let Some(event) = subscription.recv().await {
                    if let Err(Error::Stopped(_)) = actor.tell(to_msg(event)).await {
                        break;
                    }
                }
            };
            tokio::select! {
                () = forward => {}
                () = ended.wait_ended() => {}
            }
        });
    }

    /// Sends `event` to every subscriber without waiting: one whose buffer
    /// is full loses its oldest event (counted), whatever its policy.
    /// Events published this way from one thread arrive in order.
    pub(crate) fn publish_now(&self, event: T) {
        let subscribers: Vec<Arc<Subscriber<T>>> = {
            let mut subs = self.subscribers.lock();
            subs.retain(|s| !s.closed.load(Ordering::Acquire));
            subs.clone()
        };
        for sub in subscribers {
            let mut queue = sub.queue.lock();
            if queue.len() >= sub.capacity {
                queue.pop_front();
                drop(queue);
                self.count_drop(&sub, "slow subscriber: dropped its oldest events");
                queue = sub.queue.lock();
            }
            queue.push_back(event.clone());
            drop(queue);
            sub.readable.notify_one();
        }
    }

    fn count_drop(&self, sub: &Subscriber<T>, what: &'static str) {
        let n = sub.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(c) = &self.dropped {
            c.inc();
        }
        // Logged on the first drop and then every 1000th, so a slow
        // subscriber cannot flood the logs.
        if n == 1 || n % 1000 == 0 {
            tracing::warn!(target: "cortex::actor", topic = %self.name, dropped = n, "{what}");
        }
    }

    /// Sends `event` to every subscriber (waiting for room at those with the
    /// backpressure policy) and returns how many got it.
    pub async fn publish(&self, event: T) -> usize {
        let subscribers: Vec<Arc<Subscriber<T>>> = {
            let mut subs = self.subscribers.lock();
            subs.retain(|s| !s.closed.load(Ordering::Acquire));
            subs.clone()
        };
        let mut delivered = 0;
        for sub in subscribers {
            if self.deliver(&sub, event.clone()).await {
                delivered += 1;
            }
        }
        delivered
    }

    async fn deliver(&self, sub: &Subscriber<T>, event: T) -> bool {
        let wait = sub.policy.wait();
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let writable = sub.writable.notified();
            tokio::pin!(writable);
            writable.as_mut().enable();
            if sub.closed.load(Ordering::Acquire) {
                return false;
            }
            let Some(deadline) = deadline else {
                let mut queue = sub.queue.lock();
                if queue.len() >= sub.capacity {
                    queue.pop_front();
                    drop(queue);
                    self.count_drop(sub, "slow subscriber: dropped its oldest events");
                    queue = sub.queue.lock();
                }
                queue.push_back(event);
                drop(queue);
                sub.readable.notify_one();
                return true;
            };
            {
                let mut queue = sub.queue.lock();
                if queue.len() < sub.capacity {
                    queue.push_back(event);
                    drop(queue);
                    sub.readable.notify_one();
                    return true;
                }
            }
            if tokio::time::timeout_at(deadline, writable).await.is_err() {
                self.count_drop(
                    sub,
                    "subscriber full past the delivery timeout: dropped the event for it",
                );
                return false;
            }
        }
    }
}

/// Topics by name. An [`ActorSystem`](super::ActorSystem) has one.
pub struct EventBus {
    topics: Mutex<HashMap<String, Box<dyn Any + Send + Sync>>>,
    dropped: Option<Family<Counter>>,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("topics", &self.topics.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EventBus {
    pub(crate) fn new(dropped: Option<Family<Counter>>) -> Self {
        EventBus {
            topics: Mutex::new(HashMap::new()),
            dropped,
        }
    }

    /// The topic `name` carrying events of type `T` (created on first use).
    ///
    /// # Errors
    /// The name is already used by a topic of another event type.
    pub fn topic<T: Clone + Send + 'static>(&self, name: &str) -> Result<Topic<T>, String> {
        let mut topics = self.topics.lock();
        if let Some(existing) = topics.get(name) {
            return existing
                .downcast_ref::<Topic<T>>()
                .cloned()
                .ok_or_else(|| format!("topic `{name}` carries another event type"));
        }
        let topic = Topic {
            name: name.into(),
            subscribers: Subscribers::new(),
            dropped: self
                .dropped
                .as_ref()
                .and_then(|f| f.with_labels(&[name]).ok()),
        };
        topics.insert(name.to_owned(), Box::new(topic.clone()));
        Ok(topic)
    }
}
