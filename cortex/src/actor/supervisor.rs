//! Supervisors: a group of child actors with a group strategy, told when a
//! child fails or gives up.

use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::actor_ref::Shared;
use super::event_bus::{SlowPolicy, Subscription, Topic};
use super::{Actor, ActorRef, ActorSystem, Error, GroupStrategy, SpawnOptions, SupervisorEvent};

pub(crate) struct Group {
    pub(crate) name: Arc<str>,
    strategy: GroupStrategy,
    members: Mutex<Vec<Weak<Shared>>>,
    events: Topic<SupervisorEvent>,
}

impl Group {
    pub(crate) fn add(&self, member: &Arc<Shared>) {
        let mut members = self.members.lock();
        // Children that ended are let go, so the list is as long as the
        // group's living children.
        members.retain(|m| m.strong_count() > 0);
        members.push(Arc::downgrade(member));
    }

    /// Publishes at once, in the failing actor's own task: a failing actor
    /// never waits for a slow listener (its oldest event is dropped), and
    /// one actor's events arrive in the order they happened.
    fn tell(&self, event: SupervisorEvent) {
        self.events.publish_now(event);
    }

    /// A child failed: tell the listeners, and restart its siblings when the
    /// group is all-for-one.
    pub(crate) fn child_failed(&self, child: &Shared, reason: &str) {
        self.tell(SupervisorEvent::ChildFailed {
            child: child.name.to_string(),
            reason: reason.to_owned(),
        });
        if self.strategy == GroupStrategy::AllForOne {
            tracing::warn!(target: "cortex::actor", supervisor = %self.name, child = %child.name, "child failed; restarting the whole group");
            for sibling in self.members.lock().iter().filter_map(Weak::upgrade) {
                if !std::ptr::eq(&*sibling, child) {
                    sibling.request_restart();
                }
            }
        }
    }

    pub(crate) fn child_gave_up(&self, child: &Shared) {
        self.tell(SupervisorEvent::ChildGaveUp {
            child: child.name.to_string(),
        });
    }
}

/// A group of child actors under one strategy.
///
/// ```
/// use cortex::actor::{Actor, ActorSystem, Context, GroupStrategy, SpawnOptions, Strategy, SupervisorEvent};
///
/// struct Worker;
/// impl Actor for Worker {
///     type Msg = bool;
///     type Error = String;
///     async fn handle(&mut self, fail: bool, _ctx: &mut Context<Self>) -> Result<(), String> {
///         if fail { Err("bad input".into()) } else { Ok(()) }
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let system = ActorSystem::with_registry(None);
/// let sup = system.supervisor("doc-workers", GroupStrategy::AllForOne);
/// let mut events = sup.events(16);
/// let a = sup.spawn(SpawnOptions::named("doc-a").strategy(Strategy::Escalate), || Worker).unwrap();
/// let _b = sup.spawn(SpawnOptions::named("doc-b"), || Worker).unwrap();
/// a.tell(true).await.unwrap();
/// assert_eq!(
///     events.recv().await,
///     Some(SupervisorEvent::ChildFailed { child: "doc-a".into(), reason: "bad input".into() })
/// );
/// # });
/// ```
#[derive(Clone)]
pub struct Supervisor {
    system: ActorSystem,
    group: Arc<Group>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("name", &self.group.name)
            .field("strategy", &self.group.strategy)
            .finish()
    }
}

impl Supervisor {
    pub(crate) fn new(system: ActorSystem, name: &str, strategy: GroupStrategy) -> Self {
        Supervisor {
            system,
            group: Arc::new(Group {
                name: name.into(),
                strategy,
                members: Mutex::new(Vec::new()),
                events: Topic::standalone(&format!("supervisor.{name}")),
            }),
        }
    }

    /// Starts a child in this group.
    ///
    /// # Errors
    /// As [`ActorSystem::spawn`].
    pub fn spawn<A, F>(&self, options: SpawnOptions, factory: F) -> Result<ActorRef<A>, Error>
    where
        A: Actor,
        F: Fn() -> A + Send + Sync + 'static,
    {
        self.system
            .spawn_in(options, factory, Some(Arc::clone(&self.group)))
    }

    /// What the group's children do: failures and give-ups, from now on.
    pub fn events(&self, capacity: usize) -> Subscription<SupervisorEvent> {
        self.group
            .events
            .subscribe(capacity, SlowPolicy::DropOldest)
    }
}
