//! The actor system: spawning, supervision, lookup and shutdown.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::actor_ref::{Shared, FAILED, STOPPED};
use super::{Actor, ActorRef, Context, Error, SpawnOptions, Strategy};
use crate::health::{CheckOptions, Health, HealthRegistry};
use crate::metrics::{Buckets, Counter, Family, Histogram, Registry};
use crate::util::panic_message;

const DEFAULT_MAILBOX: usize = 1024;

/// How many named actors that ended keep their series (and, when they
/// failed, their DOWN health component) exported.
pub const RETAINED_ENDED: usize = 256;

struct Metrics {
    messages: Family<Counter>,
    errors: Family<Counter>,
    restarts: Family<Counter>,
    depth: Family<crate::metrics::Gauge>,
    processing: Family<Histogram>,
    dead_letters: Counter,
}

impl Metrics {
    fn new(r: &Registry) -> Result<Self, crate::metrics::Error> {
        Ok(Metrics {
            messages: r.counter_family(
                "cortex_actor_messages_total",
                "Messages an actor handled.",
                &["actor"],
            )?,
            errors: r.counter_family(
                "cortex_actor_errors_total",
                "Messages whose handling failed.",
                &["actor"],
            )?,
            restarts: r.counter_family(
                "cortex_actor_restarts_total",
                "Actor restarts.",
                &["actor"],
            )?,
            depth: r.gauge_family(
                "cortex_actor_mailbox_depth",
                "Messages waiting in an actor's mailbox.",
                &["actor"],
            )?,
            processing: r.histogram_family(
                "cortex_actor_processing_seconds",
                "Time an actor took per message.",
                &["actor"],
                Buckets::new([0.0001, 0.001, 0.01, 0.1, 1.0, 10.0])?,
            )?,
            dead_letters: r.counter(
                "cortex_actor_dead_letters_total",
                "Messages that could not be delivered or failed.",
            )?,
        })
    }
}

struct Running {
    name: Arc<str>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    /// Registered under its name (with its own series and health
    /// component).
    named: bool,
}

/// Runs actors. Cheap to clone (a shared handle).
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<Inner>,
}

struct Inner {
    bus: super::EventBus,
    metrics: Option<Metrics>,
    health: Option<&'static HealthRegistry>,
    names: Mutex<HashMap<String, Named>>,
    /// Actors running now, by id; each removes itself when it ends.
    running: Mutex<HashMap<u64, Running>>,
    /// Names of the last named actors that ended, oldest first, whose
    /// series are still exported.
    retired: Mutex<VecDeque<Arc<str>>>,
    next_id: AtomicU64,
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("actors", &self.inner.running.lock().len())
            .finish()
    }
}

impl Default for ActorSystem {
    fn default() -> Self {
        Self::new()
    }
}

/// What a shutdown achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Actors that had not finished by the deadline (they were aborted).
    pub unfinished: Vec<String>,
}

impl ActorSystem {
    /// A system whose metrics go to the global registry and whose named
    /// actors appear in the global `/health`.
    pub fn new() -> Self {
        Self::build(
            Some(crate::metrics::global()),
            Some(crate::health::global()),
        )
    }

    /// A system with its metrics in `registry` (`None`: no metrics) and no
    /// health components.
    pub fn with_registry(registry: Option<&Registry>) -> Self {
        Self::build(registry, None)
    }

    fn build(registry: Option<&Registry>, health: Option<&'static HealthRegistry>) -> Self {
        let metrics = registry.and_then(|r| match Metrics::new(r) {
            Ok(m) => Some(m),
            Err(error) => {
                tracing::error!(target: "cortex::actor", %error, "actor metrics cannot be registered");
                None
            }
        });
        let dropped = registry.and_then(|r| {
            r.counter_family(
                "cortex_event_bus_dropped_total",
                "Events dropped for slow subscribers, by topic.",
                &["topic"],
            )
            .ok()
        });
        ActorSystem {
            inner: Arc::new(Inner {
                bus: super::EventBus::new(dropped),
                metrics,
                health,
                names: Mutex::new(HashMap::new()),
                running: Mutex::new(HashMap::new()),
                retired: Mutex::new(VecDeque::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Starts an actor made by `factory` (called again for every restart).
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`Error::NameTaken`] if a running actor has this name.
    pub fn spawn<A, F>(&self, options: SpawnOptions, factory: F) -> Result<ActorRef<A>, Error>
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        self.spawn_in(options, factory, None)
    }

    /// A supervisor: a group of children under `strategy`, told when a
    /// child fails or gives up.
    pub fn supervisor(&self, name: &str, strategy: super::GroupStrategy) -> super::Supervisor {
        super::Supervisor::new(self.clone(), name, strategy)
    }

    pub(crate) fn spawn_in<A, F>(
        &self,
        options: SpawnOptions,
        factory: F,
        group: Option<Arc<super::supervisor::Group>>,
    ) -> Result<ActorRef<A>, Error>
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let named = options.name.is_some();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let name: Arc<str> = match &options.name {
            Some(n) => n.as_str().into(),
            None => {
                let ty = std::any::type_name::<A>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("actor");
                format!("{ty}-{id}").into()
            }
        };
        let (tx, rx) = mpsc::channel(options.mailbox.unwrap_or(DEFAULT_MAILBOX));
        let shared = Shared::new(
            Arc::clone(&name),
            group.clone(),
            self.inner
                .metrics
                .as_ref()
                .map_or_else(Counter::new, |m| m.dead_letters.clone()),
        );
        let actor_ref = ActorRef::live(tx, Arc::clone(&shared));
        if named {
            let mut names = self.inner.names.lock();
            // A name is free once its actor has ended (its entry is then
            // removed, or about to be).
            if names.get(&*name).is_some_and(|n| {
                n.shared.state.load(Ordering::Acquire) == super::actor_ref::RUNNING
            }) {
                return Err(Error::NameTaken(name.to_string()));
            }
            names.insert(
                name.to_string(),
                Named {
                    shared: Arc::clone(&shared),
                    handle: Box::new(actor_ref.clone()),
                },
            );
        }
        // Unnamed actors are counted under their type (`actor="Worker"`), so
        // spawning them without end adds no series; a named actor has its
        // own, and its mailbox depth (a respawn under the name replaces it).
        let type_name = std::any::type_name::<A>()
            .rsplit("::")
            .next()
            .unwrap_or("actor");
        let series = self.inner.metrics.as_ref().and_then(|m| {
            let label = [if named { &*name } else { type_name }];
            if named {
                let weak = actor_ref.tx.downgrade();
                m.depth.core().replace_derived(
                    &label,
                    Arc::new(move || {
                        weak.upgrade()
                            .map_or(0.0, |tx| (tx.max_capacity() - tx.capacity()) as f64)
                    }),
                );
            }
            Some(Series {
                messages: m.messages.with_labels(&label).ok()?,
                errors: m.errors.with_labels(&label).ok()?,
                restarts: m.restarts.with_labels(&label).ok()?,
                processing: m.processing.with_labels(&label).ok()?,
            })
        });
        if let (true, Some(health)) = (named, self.inner.health) {
            let s = Arc::downgrade(&shared);
            health.register(
                format!("actor.{name}"),
                CheckOptions::default(),
                move || {
                    let state = s.upgrade().map(|s| s.state.load(Ordering::Acquire));
                    async move {
                        match state {
                            Some(FAILED) => Health::down().with_detail("state", "failed"),
                            Some(STOPPED) | None => Health::up().with_detail("state", "stopped"),
                            _ => Health::up().with_detail("state", "running"),
                        }
                    }
                },
            );
        }
        if let Some(g) = &group {
            g.add(&shared);
        }
        let ctx = Context::new(actor_ref.detached());
        let actor = run(
            factory,
            rx,
            ctx,
            options.strategy,
            series,
            Arc::clone(&shared),
        );
        let system = Arc::downgrade(&self.inner);
        // Held across the spawn, so the task cannot remove its entry
        // before it is there.
        let mut running = self.inner.running.lock();
        let task = tokio::spawn(async move {
            actor.await;
            if let Some(inner) = Weak::upgrade(&system) {
                inner.retire(id);
            }
        });
        running.insert(
            id,
            Running {
                name,
                shared,
                task,
                named,
            },
        );
        drop(running);
        Ok(actor_ref)
    }

    /// How many actors run now (an actor that ended is no longer counted,
    /// nor kept anywhere by the system).
    pub fn running(&self) -> usize {
        self.inner.running.lock().len()
    }

    /// The system's event bus.
    pub fn event_bus(&self) -> &super::EventBus {
        &self.inner.bus
    }

    /// The named actor, if one of this type runs under `name`.
    pub fn lookup<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        self.inner
            .names
            .lock()
            .get(name)
            .and_then(|n| n.handle.downcast_ref::<ActorRef<A>>())
            .filter(|r| !r.is_stopped())
            .cloned()
    }

    /// Stops every actor: no new messages, queued ones are handled, `stopped`
    /// hooks run. Actors still busy at `deadline` are aborted and reported.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let running: Vec<Running> = std::mem::take(&mut *self.inner.running.lock())
            .into_values()
            .collect();
        for r in &running {
            r.shared.request_stop();
        }
        let until = Instant::now() + deadline;
        let mut unfinished = Vec::new();
        for mut r in running {
            if tokio::time::timeout_at(until, &mut r.task).await.is_err() {
                r.task.abort();
                unfinished.push(r.name.to_string());
            }
            self.inner.forget(&r.name, &r.shared, r.named);
        }
        if !unfinished.is_empty() {
            tracing::warn!(target: "cortex::actor", ?unfinished, "actors still busy at the shutdown deadline were aborted");
        }
        ShutdownReport { unfinished }
    }
}

impl Inner {
    /// The actor `id` ended: the system lets go of it.
    fn retire(&self, id: u64) {
        let ended = self
            .running
            .lock()
            .get(&id)
            .map(|r| (Arc::clone(&r.name), Arc::clone(&r.shared), r.named));
        if let Some((name, shared, named)) = ended {
            self.forget(&name, &shared, named);
        }
        // Counted as running until what it had is let go: once `running()`
        // is 0, every ended actor's names, series and health are settled.
        self.running.lock().remove(&id);
    }

    /// Frees what a named actor that ended had: its name and its mailbox
    /// gauge at once, and, when it stopped cleanly, its health component.
    /// Its counters stay exported (so the last scrape sees its final
    /// counts, and a failed actor stays DOWN) for the last
    /// [`RETAINED_ENDED`] named actors that ended; older ones are removed,
    /// so actors spawned and ended by name without end leave `/metrics` and
    /// `/health` bounded. Nothing is touched when the name already belongs
    /// to a newer actor.
    fn forget(&self, name: &Arc<str>, shared: &Arc<Shared>, named: bool) {
        if !named {
            return;
        }
        {
            let mut names = self.names.lock();
            let ours = names
                .get(&**name)
                .is_some_and(|n| Arc::ptr_eq(&n.shared, shared));
            if !ours {
                return;
            }
            names.remove(&**name);
        }
        if let Some(m) = &self.metrics {
            m.depth.remove(&[&**name]);
        }
        let failed = shared.state.load(Ordering::Acquire) == FAILED;
        if let (Some(health), false) = (self.health, failed) {
            health.remove(&format!("actor.{}", name));
        }
        let mut retired = self.retired.lock();
        retired.push_back(Arc::clone(name));
        while retired.len() > RETAINED_ENDED {
            let Some(old) = retired.pop_front() else {
                break;
            };
            if self.names.lock().contains_key(&*old) {
                // A newer actor has the name, and the series with it.
                continue;
            }
            if let Some(m) = &self.metrics {
                let label = [&*old];
                m.messages.remove(&label);
                m.errors.remove(&label);
                m.restarts.remove(&label);
                m.processing.remove(&label);
            }
            if let Some(health) = self.health {
                health.remove(&format!("actor.{old}"));
            }
        }
    }
}

/// A named actor in the names table: its state, and its handle (an
/// `ActorRef<A>`, typed again by [`ActorSystem::lookup`]).
struct Named {
    shared: Arc<Shared>,
    handle: Box<dyn Any + Send + Sync>,
}

struct Series {
    messages: Counter,
    errors: Counter,
    restarts: Counter,
    processing: Histogram,
}

async fn run<A, F>(
    factory: F,
    mut rx: mpsc::Receiver<super::actor_ref::Envelope<A::Msg>>,
    mut ctx: Context<A>,
    strategy: Strategy,
    series: Option<Series>,
    shared: Arc<Shared>,
) where
    A: Actor,
    F: Fn() -> A + Send + Sync + 'static,
{
    let mut restarts: VecDeque<Instant> = VecDeque::new();
    // A panic in the factory or in `started` is a failure like one in
    // `handle`: the strategy decides (restart, within its limit, or stop).
    let actor = loop {
        match fresh(&factory, &mut ctx).await {
            Ok(actor) => break Some(actor),
            Err(reason) => {
                if !failed(&shared, strategy, &mut restarts, &reason).await {
                    break None;
                }
                if let Some(s) = &series {
                    s.restarts.inc();
                }
            }
        }
    };
    let Some(mut actor) = actor else {
        ctx.cancel_timers();
        finish_failed(&shared, &mut rx);
        return;
    };
    let mut closing = false;
    let outcome = loop {
        // Fast path: a queued message is taken without arming the stop
        // signal; the select only runs when the mailbox is empty.
        if !closing && shared.restart_requested.swap(false, Ordering::AcqRel) {
            tracing::warn!(target: "cortex::actor", actor = %shared.name, "restarted by its supervisor");
            if let Some(s) = &series {
                s.restarts.inc();
            }
            match fresh(&factory, &mut ctx).await {
                Ok(fresh) => actor = fresh,
                Err(reason) => {
                    if let Some(g) = &shared.group {
                        g.child_failed(&shared, &reason);
                    }
                    tracing::warn!(target: "cortex::actor", actor = %shared.name, %reason, "actor could not restart and stops");
                    break FAILED;
                }
            }
        }
        if !closing && shared.abandoned.swap(false, Ordering::AcqRel) && shared.is_abandoned() {
            // Nobody can send to it any more: it finishes what is queued
            // and stops, as if stopped.
            tracing::debug!(target: "cortex::actor", actor = %shared.name, "every handle was dropped; stopping");
            shared.stopping.store(true, Ordering::Release);
        }
        let msg = if closing {
            rx.recv().await
        } else if shared.stopping.load(Ordering::Acquire) {
            rx.close();
            closing = true;
            continue;
        } else {
            match rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => {
                    tokio::select! {
                        biased;
                        _ = shared.stop.notified() => {
                            // A stop or a restart request; the loop's top
                            // handles either.
                            continue;
                        }
                        msg = rx.recv() => msg,
                    }
                }
            }
        };
        let Some(super::actor_ref::Envelope { msg, parent }) = msg else {
            break STOPPED;
        };
        let started = series.as_ref().map(|_| std::time::Instant::now());
        let result = {
            // Handled as a child of the span current when it was sent.
            let parent = parent.map(|p| *p);
            let mut handling = std::pin::pin!(crate::trace::Instrumented::new(
                actor.handle(msg, &mut ctx),
                parent
            ));
            std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    handling.as_mut().poll(cx)
                })) {
                    Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
                    Ok(std::task::Poll::Ready(r)) => std::task::Poll::Ready(Ok(r)),
                    Err(panic) => std::task::Poll::Ready(Err(panic)),
                }
            })
            .await
        };
        if let (Some(s), Some(started)) = (&series, started) {
            s.processing.observe_duration(started.elapsed());
        }
        let reason = match result {
            Ok(Ok(())) => {
                if let Some(s) = &series {
                    s.messages.inc();
                }
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(panic) => format!("panicked: {}", panic_message(&panic)),
        };
        if let Some(s) = &series {
            s.messages.inc();
            s.errors.inc();
        }
        // The failing message is gone: count it as a dead letter.
        shared.dead_letters.inc();
        // Restarted until a fresh actor starts, or the strategy stops it.
        let mut reason = reason;
        let restarted = loop {
            if !failed(&shared, strategy, &mut restarts, &reason).await {
                break false;
            }
            if let Some(s) = &series {
                s.restarts.inc();
            }
            match fresh(&factory, &mut ctx).await {
                Ok(fresh) => {
                    actor = fresh;
                    break true;
                }
                Err(why) => reason = why,
            }
        };
        if !restarted {
            break FAILED;
        }
    };
    ctx.cancel_timers();
    // `stopped` runs however the actor ends, after a final failure too, so
    // its cleanup always happens (on the instance that failed: no fresh one
    // is made to be stopped).
    let stopped = crate::util::CatchUnwind::new(actor.stopped(&mut ctx)).await;
    if outcome == FAILED {
        if let Err(panic) = stopped {
            tracing::error!(target: "cortex::actor", actor = %shared.name, panic = %panic_message(&panic), "stopped panicked after the actor failed");
        }
        ctx.cancel_timers();
        finish_failed(&shared, &mut rx);
        return;
    }
    if let Err(panic) = stopped {
        let reason = format!("stopped panicked: {}", panic_message(&panic));
        tracing::error!(target: "cortex::actor", actor = %shared.name, %reason, "actor failed while stopping");
        if let Some(g) = &shared.group {
            g.child_failed(&shared, &reason);
        }
        ctx.cancel_timers();
        finish_failed(&shared, &mut rx);
        return;
    }
    ctx.cancel_timers();
    shared.end(STOPPED);
}

/// A fresh actor from the factory, started; a panic in either is the
/// failure's reason.
async fn fresh<A, F>(factory: &F, ctx: &mut Context<A>) -> Result<A, String>
where
    A: Actor,
    F: Fn() -> A,
{
    let mut actor = std::panic::catch_unwind(std::panic::AssertUnwindSafe(factory))
        .map_err(|p| format!("its factory panicked: {}", panic_message(&p)))?;
    crate::util::CatchUnwind::new(actor.started(ctx))
        .await
        .map_err(|p| format!("started panicked: {}", panic_message(&p)))?;
    Ok(actor)
}

/// The actor failed for `reason`: tells its supervisor, and decides by the
/// strategy whether to restart it (after its backoff; `true`) or stop it.
async fn failed(
    shared: &Shared,
    strategy: Strategy,
    restarts: &mut VecDeque<Instant>,
    reason: &str,
) -> bool {
    if let Some(g) = &shared.group {
        g.child_failed(shared, reason);
    }
    let strategy = match (strategy, &shared.group) {
        (Strategy::Escalate, Some(_)) => Strategy::default(),
        (Strategy::Escalate, None) => Strategy::Stop,
        (s, _) => s,
    };
    match strategy {
        Strategy::Stop | Strategy::Escalate => {
            tracing::warn!(target: "cortex::actor", actor = %shared.name, %reason, "actor failed and stops");
            false
        }
        Strategy::Restart {
            max,
            within,
            backoff,
        } => {
            let now = Instant::now();
            while restarts
                .front()
                .is_some_and(|t| now.duration_since(*t) > within)
            {
                restarts.pop_front();
            }
            if restarts.len() >= max as usize {
                tracing::error!(target: "cortex::actor", actor = %shared.name, %reason, max, ?within, "actor hit its restart limit and stops");
                return false;
            }
            restarts.push_back(now);
            if !backoff.is_zero() {
                tokio::time::sleep(backoff).await;
            }
            tracing::warn!(target: "cortex::actor", actor = %shared.name, %reason, restarts = restarts.len(), "actor failed; restarting it with its mailbox intact");
            true
        }
    }
}

/// The actor stops for good after a failure: its supervisor is told, what
/// is still queued becomes dead letters, and its state says FAILED (its
/// name is free again, its health component DOWN).
fn finish_failed<M>(shared: &Shared, rx: &mut mpsc::Receiver<super::actor_ref::Envelope<M>>) {
    if let Some(g) = &shared.group {
        g.child_gave_up(shared);
    }
    rx.close();
    while rx.try_recv().is_ok() {
        shared.dead_letters.inc();
    }
    shared.end(FAILED);
}
