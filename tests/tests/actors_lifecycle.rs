//! Actors end and are forgotten: an actor whose handles are all dropped
//! stops, the system keeps nothing of it (`actors_memory.rs` measures
//! 100,000 of them); event bus forwarding ends with its actor,
//! backpressure cannot deadlock an actor on itself, supervisor events come
//! in order. On a multi-threaded runtime (real OS threads).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cortex::actor::{
    Actor, ActorRef, ActorSystem, Context, GroupStrategy, Reply, SlowPolicy, SpawnOptions,
    Strategy, SupervisorEvent, RETAINED_ENDED,
};
use cortex::metrics::{Format, Registry};
use cortex_tests::until;

/// Counts its messages and, in `stopped`, that it stopped.
struct Counter {
    stopped: Arc<AtomicU32>,
    handed_out: Option<tokio::sync::oneshot::Sender<ActorRef<Counter>>>,
}

enum Msg {
    Ping(Reply<u32>),
    /// Hands a clone of its own reference out.
    HandOut,
    /// Publishes `n` events to a topic it subscribes to itself.
    Echo(cortex::actor::Topic<u32>, u32),
    Seen,
}

impl Actor for Counter {
    type Msg = Msg;
    type Error = String;

    async fn handle(&mut self, msg: Msg, ctx: &mut Context<Self>) -> Result<(), String> {
        match msg {
            Msg::Ping(reply) => reply.send(1),
            Msg::HandOut => {
                if let Some(tx) = self.handed_out.take() {
                    let _ = tx.send(ctx.myself().clone());
                }
            }
            Msg::Echo(topic, n) => {
                for i in 0..n {
                    topic.publish(i).await;
                }
            }
            Msg::Seen => {}
        }
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

fn counter(stopped: &Arc<AtomicU32>) -> impl Fn() -> Counter + Send + Sync + 'static {
    let stopped = Arc::clone(stopped);
    move || Counter {
        stopped: Arc::clone(&stopped),
        handed_out: None,
    }
}

fn system() -> (ActorSystem, &'static Registry) {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    (ActorSystem::with_registry(Some(registry)), registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_whose_handles_are_all_dropped_stops_and_is_forgotten() {
    let (sys, _) = system();
    let stopped = Arc::new(AtomicU32::new(0));
    let actor = sys
        .spawn(SpawnOptions::default(), counter(&stopped))
        .unwrap();
    let second = actor.clone();
    assert_eq!(actor.ask(Msg::Ping, Duration::from_secs(5)).await, Ok(1));
    drop(actor);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(stopped.load(Ordering::SeqCst), 0, "a clone still lives");
    assert_eq!(sys.running(), 1);
    let watch = second.clone();
    drop(second);
    // `watch` is a handle too: the actor lives on until it goes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!watch.is_stopped());
    drop(watch);
    until("the actor stopped", || stopped.load(Ordering::SeqCst) == 1).await;
    until("the system forgot it", || sys.running() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_own_context_does_not_keep_it_alive_but_a_handed_out_clone_does() {
    let (sys, _) = system();
    let stopped = Arc::new(AtomicU32::new(0));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let slot = std::sync::Mutex::new(Some(tx));
    let s = Arc::clone(&stopped);
    let actor = sys
        .spawn(SpawnOptions::default(), move || Counter {
            stopped: Arc::clone(&s),
            handed_out: slot.lock().unwrap().take(),
        })
        .unwrap();
    actor.tell(Msg::HandOut).await.unwrap();
    let handed = rx.await.unwrap();
    drop(actor);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(stopped.load(Ordering::SeqCst), 0);
    assert_eq!(handed.ask(Msg::Ping, Duration::from_secs(5)).await, Ok(1));
    drop(handed);
    until("the actor stopped", || stopped.load(Ordering::SeqCst) == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_actor_belongs_to_its_system() {
    let (sys, _) = system();
    let stopped = Arc::new(AtomicU32::new(0));
    drop(
        sys.spawn(SpawnOptions::named("owned"), counter(&stopped))
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let found = sys.lookup::<Counter>("owned").expect("still running");
    assert_eq!(found.ask(Msg::Ping, Duration::from_secs(5)).await, Ok(1));
    found.stop();
    until("it stopped", || stopped.load(Ordering::SeqCst) == 1).await;
    until("the system forgot it", || sys.running() == 0).await;
    // Its name is free again.
    assert!(sys
        .spawn(SpawnOptions::named("owned"), counter(&stopped))
        .is_ok());
}

/// Spawns `n` actors in batches, asks each once, drops it, and waits until
/// the system runs none.
async fn churn(sys: &ActorSystem, n: usize, named: Option<&str>, stopped: &Arc<AtomicU32>) {
    for batch in 0..n / 1000 {
        let mut actors = Vec::with_capacity(1000);
        for i in 0..1000 {
            let options = match named {
                Some(prefix) => SpawnOptions::named(&format!("{prefix}-{batch}-{i}")),
                None => SpawnOptions::default(),
            };
            actors.push(sys.spawn(options.mailbox(4), counter(stopped)).unwrap());
        }
        for a in &actors {
            assert_eq!(a.ask(Msg::Ping, Duration::from_secs(5)).await, Ok(1));
            if named.is_some() {
                a.stop();
            }
        }
        drop(actors);
        until("the batch ended", || sys.running() == 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_actors_that_end_leave_a_bounded_number_of_series() {
    let (sys, registry) = system();
    let stopped = Arc::new(AtomicU32::new(0));
    churn(&sys, 20_000, Some("req"), &stopped).await;
    assert_eq!(sys.running(), 0);
    let text = registry.encode(Format::PrometheusText);
    let named = text
        .lines()
        .filter(|l| l.starts_with("cortex_actor_messages_total{actor=\"req-"))
        .count();
    assert_eq!(
        named, RETAINED_ENDED,
        "the last {RETAINED_ENDED} ended keep theirs"
    );
    // The newest are the ones kept, with their final counts.
    assert!(text.contains("cortex_actor_messages_total{actor=\"req-19-999\"} 1"));
    assert!(!text.contains("actor=\"req-0-0\""));
    assert!(
        !text.contains("cortex_actor_mailbox_depth{actor=\"req-"),
        "gauges go at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_ends_when_the_actor_stops() {
    let (sys, _) = system();
    let stopped = Arc::new(AtomicU32::new(0));
    let topic = sys.event_bus().topic::<u32>("lifecycle.forward").unwrap();
    let actor = sys
        .spawn(SpawnOptions::default(), counter(&stopped))
        .unwrap();
    topic.subscribe_actor(actor.clone(), 8, SlowPolicy::Backpressure, |_| Msg::Seen);
    assert_eq!(topic.publish(1).await, 1);
    // The subscription does not keep the actor alive.
    drop(actor);
    until("the actor stopped", || stopped.load(Ordering::SeqCst) == 1).await;
    // No event came since: the forwarding task ended with the actor, and
    // its subscription with it.
    until("the subscription is gone", || {
        futures_lite_publish(&topic) == 0
    })
    .await;
}

/// Publishes once, from outside any runtime's async context.
fn futures_lite_publish(topic: &cortex::actor::Topic<u32>) -> usize {
    let topic = topic.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(topic.publish(7))
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_publishing_to_its_own_topic_does_not_deadlock() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let sys = ActorSystem::with_registry(Some(registry));
    let stopped = Arc::new(AtomicU32::new(0));
    let topic = sys.event_bus().topic::<u32>("lifecycle.echo").unwrap();
    let actor = sys
        .spawn(SpawnOptions::default().mailbox(1), counter(&stopped))
        .unwrap();
    topic.subscribe_actor(
        actor.clone(),
        1,
        SlowPolicy::BackpressureFor(Duration::from_millis(50)),
        |_| Msg::Seen,
    );
    // The actor publishes 10 events while busy: its subscription holds one,
    // the forwarder one more waiting on the full mailbox, and the rest wait
    // at most 50 ms each and are dropped.
    actor.tell(Msg::Echo(topic.clone(), 10)).await.unwrap();
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        actor.ask(Msg::Ping, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        answered.ok(),
        Some(Ok(1)),
        "the actor is not stuck on itself"
    );
    let text = registry.encode(Format::PrometheusText);
    let dropped: u64 = text
        .lines()
        .find(|l| l.starts_with("cortex_event_bus_dropped_total{topic=\"lifecycle.echo\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the drops are counted");
    assert!((1..=9).contains(&dropped), "{dropped} of 10 dropped");
}

struct Flaky {
    failures: Arc<AtomicU32>,
}

impl Actor for Flaky {
    type Msg = ();
    type Error = String;

    async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> Result<(), String> {
        Err(format!(
            "failure {}",
            self.failures.fetch_add(1, Ordering::SeqCst)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_events_arrive_in_order() {
    let (sys, _) = system();
    let sup = sys.supervisor("lifecycle.order", GroupStrategy::OneForOne);
    let mut events = sup.events(64);
    let failures = Arc::new(AtomicU32::new(0));
    let f = Arc::clone(&failures);
    let child = sup
        .spawn(
            SpawnOptions::named("lifecycle.flaky").strategy(Strategy::Restart {
                max: 20,
                within: Duration::from_secs(60),
                backoff: Duration::ZERO,
            }),
            move || Flaky {
                failures: Arc::clone(&f),
            },
        )
        .unwrap();
    for _ in 0..21 {
        child.tell(()).await.unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..22 {
        seen.push(events.recv().await.unwrap());
    }
    let mut expected: Vec<SupervisorEvent> = (0..21)
        .map(|i| SupervisorEvent::ChildFailed {
            child: "lifecycle.flaky".into(),
            reason: format!("failure {i}"),
        })
        .collect();
    expected.push(SupervisorEvent::ChildGaveUp {
        child: "lifecycle.flaky".into(),
    });
    assert_eq!(seen, expected);
}
