//! Actors: supervision keeps the mailbox, panics are contained, restart
//! limits stop the actor, ask/tell errors, backpressure, shutdown, metrics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::actor::{Actor, ActorSystem, Context, Error, Reply, SpawnOptions, Strategy};
use cortex::metrics::{Format, Registry};
use tokio::sync::Notify;

#[derive(Debug)]
enum Msg {
    Record(u32),
    Fail(u32),
    Panic,
    Wait(Arc<Notify>),
    Get(Reply<Vec<u32>>),
    Sleep(Duration),
}

struct Recorder {
    log: Arc<Mutex<Vec<u32>>>,
    starts: Arc<Mutex<u32>>,
}

impl Actor for Recorder {
    type Msg = Msg;
    type Error = String;

    async fn started(&mut self, _ctx: &mut Context<Self>) {
        *self.starts.lock().unwrap() += 1;
    }

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), String> {
        match msg {
            Msg::Record(n) => self.log.lock().unwrap().push(n),
            Msg::Fail(n) => return Err(format!("cannot record {n}")),
            Msg::Panic => panic!("recorder bug"),
            Msg::Wait(gate) => gate.notified().await,
            Msg::Get(reply) => reply.send(self.log.lock().unwrap().clone()),
            Msg::Sleep(d) => tokio::time::sleep(d).await,
        }
        Ok(())
    }
}

type Shared = (Arc<Mutex<Vec<u32>>>, Arc<Mutex<u32>>);

fn recorder() -> (Shared, impl Fn() -> Recorder + Send + Sync + 'static) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let starts = Arc::new(Mutex::new(0));
    let (l, s) = (Arc::clone(&log), Arc::clone(&starts));
    ((log, starts), move || Recorder {
        log: Arc::clone(&l),
        starts: Arc::clone(&s),
    })
}

fn system() -> (ActorSystem, &'static Registry) {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    (ActorSystem::with_registry(Some(registry)), registry)
}

#[tokio::test]
async fn a_restart_keeps_the_queued_messages_in_order() {
    let (sys, _) = system();
    let ((log, starts), factory) = recorder();
    let actor = sys.spawn(SpawnOptions::default(), factory).unwrap();
    let gate = Arc::new(Notify::new());
    actor.tell(Msg::Wait(Arc::clone(&gate))).await.unwrap();
    actor.tell(Msg::Record(1)).await.unwrap();
    actor.tell(Msg::Fail(2)).await.unwrap();
    actor.tell(Msg::Record(3)).await.unwrap();
    actor.tell(Msg::Panic).await.unwrap();
    actor.tell(Msg::Record(4)).await.unwrap();
    gate.notify_one();
    let seen = actor.ask(Msg::Get, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        seen,
        vec![1, 3, 4],
        "the failing messages are dropped, the rest kept in order"
    );
    assert_eq!(
        *starts.lock().unwrap(),
        3,
        "started again after each failure"
    );
    assert_eq!(*log.lock().unwrap(), vec![1, 3, 4]);
}

#[tokio::test(start_paused = true)]
async fn the_restart_limit_stops_the_actor() {
    let (sys, registry) = system();
    let (_, factory) = recorder();
    let actor = sys
        .spawn(
            SpawnOptions::named("t-limited").strategy(Strategy::Restart {
                max: 2,
                within: Duration::from_secs(60),
                backoff: Duration::from_millis(10),
            }),
            factory,
        )
        .unwrap();
    for i in 0..3 {
        actor.tell(Msg::Fail(i)).await.unwrap();
    }
    actor.tell(Msg::Record(9)).await.unwrap();
    for _ in 0..100 {
        if actor.is_stopped() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        actor.has_failed(),
        "three failures within a minute, two restarts allowed"
    );
    assert_eq!(
        actor.tell(Msg::Record(1)).await,
        Err(Error::Stopped("t-limited".into()))
    );
    assert!(sys.lookup::<Recorder>("t-limited").is_none());
    let text = registry.encode(Format::PrometheusText);
    assert!(
        text.contains("cortex_actor_restarts_total{actor=\"t-limited\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("cortex_actor_errors_total{actor=\"t-limited\"} 3"),
        "{text}"
    );
    // 3 failed messages, the queued Record(9) nobody will handle, and the
    // refused tell.
    assert!(text.contains("cortex_actor_dead_letters_total 5"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn ask_times_out_and_fails_on_a_stopped_actor() {
    let (sys, _) = system();
    let (_, factory) = recorder();
    let actor = sys.spawn(SpawnOptions::named("t-ask"), factory).unwrap();
    actor
        .tell(Msg::Sleep(Duration::from_secs(10)))
        .await
        .unwrap();
    let err = actor
        .ask(Msg::Get, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "actor `t-ask` did not answer within 100ms");
    actor.stop();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(actor.is_stopped());
    assert!(matches!(
        actor.ask(Msg::Get, Duration::from_secs(1)).await,
        Err(Error::Stopped(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_bounded_mailbox_pushes_back() {
    let (sys, registry) = system();
    let (_, factory) = recorder();
    let actor = sys
        .spawn(SpawnOptions::named("t-bounded").mailbox(2), factory)
        .unwrap();
    let gate = Arc::new(Notify::new());
    actor.tell(Msg::Wait(Arc::clone(&gate))).await.unwrap();
    tokio::task::yield_now().await; // the actor takes the Wait and blocks
    actor.try_tell(Msg::Record(1)).unwrap();
    actor.try_tell(Msg::Record(2)).unwrap();
    assert_eq!(
        actor.try_tell(Msg::Record(3)),
        Err(Error::MailboxFull("t-bounded".into()))
    );
    assert!(registry
        .encode(Format::PrometheusText)
        .contains("cortex_actor_mailbox_depth{actor=\"t-bounded\"} 2"));
    // `tell` waits for room instead of failing.
    let waiting = {
        let a = actor.clone();
        tokio::spawn(async move { a.tell(Msg::Record(3)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "tell waits while the mailbox is full"
    );
    gate.notify_one();
    waiting.await.unwrap().unwrap();
    assert_eq!(
        actor.ask(Msg::Get, Duration::from_secs(1)).await.unwrap(),
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn shutdown_drains_and_metrics_match() {
    let (sys, registry) = system();
    let ((log, _), factory) = recorder();
    let actor = sys.spawn(SpawnOptions::named("t-drain"), factory).unwrap();
    for i in 0..100 {
        actor.tell(Msg::Record(i)).await.unwrap();
    }
    let report = sys.shutdown(Duration::from_secs(5)).await;
    assert!(report.unfinished.is_empty());
    assert_eq!(
        log.lock().unwrap().len(),
        100,
        "queued messages were handled before stopping"
    );
    assert!(actor.is_stopped() && !actor.has_failed());
    assert!(registry
        .encode(Format::PrometheusText)
        .contains("cortex_actor_messages_total{actor=\"t-drain\"} 100"));
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_actors_that_miss_the_deadline() {
    let (sys, _) = system();
    let (_, factory) = recorder();
    let actor = sys.spawn(SpawnOptions::named("t-stuck"), factory).unwrap();
    actor
        .tell(Msg::Sleep(Duration::from_secs(3600)))
        .await
        .unwrap();
    tokio::task::yield_now().await;
    let report = sys.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.unfinished, vec!["t-stuck".to_string()]);
}

#[tokio::test]
async fn names_are_unique_and_looked_up_by_type() {
    let (sys, _) = system();
    let (_, f1) = recorder();
    let (_, f2) = recorder();
    let a = sys.spawn(SpawnOptions::named("t-unique"), f1).unwrap();
    assert!(matches!(
        sys.spawn(SpawnOptions::named("t-unique"), f2),
        Err(Error::NameTaken(_))
    ));
    assert_eq!(sys.lookup::<Recorder>("t-unique").unwrap().name(), a.name());
}

#[tokio::test(start_paused = true)]
async fn an_actor_that_gave_up_is_down_in_health() {
    let sys = ActorSystem::new();
    let (_, factory) = recorder();
    let actor = sys
        .spawn(
            SpawnOptions::named("t-health").strategy(Strategy::Stop),
            factory,
        )
        .unwrap();
    let report = cortex::health::global().check(None).await;
    assert_eq!(
        report
            .component("actor.t-health")
            .unwrap()
            .health()
            .status(),
        cortex::health::Status::Up
    );
    actor.tell(Msg::Fail(1)).await.unwrap();
    for _ in 0..100 {
        if actor.is_stopped() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let report = cortex::health::global().check(None).await;
    let c = report.component("actor.t-health").unwrap();
    assert_eq!(c.health().status(), cortex::health::Status::Down);
    assert_eq!(c.health().details()["state"], "failed");
}

// ---- event bus ----

use cortex::actor::SlowPolicy;

#[derive(Debug, Clone, PartialEq)]
struct OrderPlaced(u32);

#[tokio::test]
async fn the_bus_fans_out_to_receivers_and_actors() {
    let (sys, _) = system();
    let topic = sys.event_bus().topic::<OrderPlaced>("orders").unwrap();
    let mut a = topic.subscribe(16, SlowPolicy::Backpressure);
    let mut b = topic.subscribe(16, SlowPolicy::DropOldest);
    let (_, factory) = recorder();
    let actor = sys
        .spawn(SpawnOptions::named("t-bus-actor"), factory)
        .unwrap();
    topic.subscribe_actor(
        actor.clone(),
        16,
        SlowPolicy::Backpressure,
        |e: OrderPlaced| Msg::Record(e.0),
    );
    for i in 0..3 {
        assert_eq!(topic.publish(OrderPlaced(i)).await, 3);
    }
    for i in 0..3 {
        assert_eq!(a.recv().await, Some(OrderPlaced(i)));
        assert_eq!(b.recv().await, Some(OrderPlaced(i)));
    }
    for _ in 0..50 {
        if actor
            .ask(Msg::Get, Duration::from_secs(1))
            .await
            .unwrap()
            .len()
            == 3
        {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        actor.ask(Msg::Get, Duration::from_secs(1)).await.unwrap(),
        vec![0, 1, 2]
    );
    // Another event type under the same name is refused.
    assert!(sys.event_bus().topic::<String>("orders").is_err());
}

#[tokio::test(start_paused = true)]
async fn slow_subscribers_get_their_policy_never_a_silent_detach() {
    let (sys, registry) = system();
    let topic = sys.event_bus().topic::<u32>("ticks").unwrap();
    let mut lossy = topic.subscribe(2, SlowPolicy::DropOldest);
    for i in 0..5 {
        topic.publish(i).await;
    }
    assert_eq!(lossy.dropped(), 3);
    assert_eq!(lossy.recv().await, Some(3));
    assert_eq!(lossy.recv().await, Some(4));
    assert!(registry
        .encode(Format::PrometheusText)
        .contains("cortex_event_bus_dropped_total{topic=\"ticks\"} 3"));

    let mut strict = topic.subscribe(1, SlowPolicy::Backpressure);
    drop(lossy);
    topic.publish(10).await;
    let blocked = {
        let t = topic.clone();
        tokio::spawn(async move { t.publish(11).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !blocked.is_finished(),
        "the publisher waits for the slow subscriber"
    );
    assert_eq!(strict.recv().await, Some(10));
    assert_eq!(blocked.await.unwrap(), 1, "only the live subscriber counts");
    assert_eq!(strict.recv().await, Some(11));
}

#[tokio::test]
async fn an_actor_subscription_ends_when_the_actor_stops() {
    let (sys, _) = system();
    let topic = sys.event_bus().topic::<u32>("t-stop").unwrap();
    let (_, factory) = recorder();
    let actor = sys.spawn(SpawnOptions::default(), factory).unwrap();
    topic.subscribe_actor(actor.clone(), 4, SlowPolicy::Backpressure, Msg::Record);
    actor.stop();
    while !actor.is_stopped() {
        tokio::task::yield_now().await;
    }
    // The forwarding task sees the actor gone on its next event and leaves.
    topic.publish(1).await;
    for _ in 0..100 {
        if topic.publish(2).await == 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the stopped actor's subscription was never removed");
}

// ---- supervisors ----

use cortex::actor::{GroupStrategy, SupervisorEvent};

#[tokio::test]
async fn all_for_one_restarts_every_child_and_keeps_their_mailboxes() {
    let (sys, _) = system();
    let sup = sys.supervisor("t-group", GroupStrategy::AllForOne);
    let mut events = sup.events(16);
    let ((_, a_starts), fa) = recorder();
    let ((b_log, b_starts), fb) = recorder();
    let a = sup
        .spawn(
            SpawnOptions::named("t-group-a").strategy(Strategy::Escalate),
            fa,
        )
        .unwrap();
    let b = sup.spawn(SpawnOptions::named("t-group-b"), fb).unwrap();
    // b has messages queued behind a gate when a fails.
    let gate = Arc::new(Notify::new());
    b.tell(Msg::Wait(Arc::clone(&gate))).await.unwrap();
    b.tell(Msg::Record(7)).await.unwrap();
    a.tell(Msg::Fail(1)).await.unwrap();
    assert_eq!(
        events.recv().await,
        Some(SupervisorEvent::ChildFailed {
            child: "t-group-a".into(),
            reason: "cannot record 1".into()
        })
    );
    gate.notify_one();
    let seen = b.ask(Msg::Get, Duration::from_secs(5)).await.unwrap();
    assert_eq!(seen, vec![7], "b's queued message survived its restart");
    a.ask(Msg::Get, Duration::from_secs(5)).await.unwrap();
    assert_eq!(*a_starts.lock().unwrap(), 2, "a restarted (escalated)");
    assert_eq!(*b_starts.lock().unwrap(), 2, "b restarted with the group");
    assert_eq!(*b_log.lock().unwrap(), vec![7]);
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failing_child_and_reports_give_ups() {
    let (sys, _) = system();
    let sup = sys.supervisor("t-one", GroupStrategy::OneForOne);
    let mut events = sup.events(16);
    let ((_, a_starts), fa) = recorder();
    let ((_, b_starts), fb) = recorder();
    let a = sup
        .spawn(SpawnOptions::named("t-one-a").strategy(Strategy::Stop), fa)
        .unwrap();
    let b = sup.spawn(SpawnOptions::named("t-one-b"), fb).unwrap();
    a.tell(Msg::Fail(1)).await.unwrap();
    assert!(matches!(
        events.recv().await,
        Some(SupervisorEvent::ChildFailed { .. })
    ));
    assert_eq!(
        events.recv().await,
        Some(SupervisorEvent::ChildGaveUp {
            child: "t-one-a".into()
        })
    );
    b.ask(Msg::Get, Duration::from_secs(1)).await.unwrap();
    assert!(a.has_failed());
    assert_eq!(*a_starts.lock().unwrap(), 1);
    assert_eq!(*b_starts.lock().unwrap(), 1, "the sibling was left alone");
}

#[tokio::test]
async fn escalating_without_a_supervisor_stops() {
    let (sys, _) = system();
    let (_, f) = recorder();
    let a = sys
        .spawn(SpawnOptions::default().strategy(Strategy::Escalate), f)
        .unwrap();
    a.tell(Msg::Fail(1)).await.unwrap();
    for _ in 0..100 {
        if a.is_stopped() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(a.has_failed());
}

#[tokio::test]
async fn unnamed_actors_share_their_type_series_so_spawning_adds_none() {
    let (sys, registry) = system();
    for _ in 0..50 {
        let (_, factory) = recorder();
        let actor = sys.spawn(SpawnOptions::default(), factory).unwrap();
        actor.tell(Msg::Record(1)).await.unwrap();
        actor.stop();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = registry.encode(Format::PrometheusText);
    let series = |family: &str| text.lines().filter(|l| l.starts_with(family)).count();
    assert_eq!(series("cortex_actor_messages_total{"), 1, "{text}");
    assert!(
        text.contains("cortex_actor_messages_total{actor=\"Recorder\"} 50\n"),
        "{text}"
    );
    assert_eq!(
        series("cortex_actor_mailbox_depth{"),
        0,
        "named actors only"
    );
}

#[tokio::test]
async fn recv_ends_once_the_topic_and_the_system_are_gone() {
    use cortex::actor::SlowPolicy;
    let (sys, _) = system();
    let topic = sys.event_bus().topic::<u32>("t-gone").unwrap();
    let mut sub = topic.subscribe(8, SlowPolicy::DropOldest);
    topic.publish(1).await;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(event) = sub.recv().await {
            seen.push(event);
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(topic);
    drop(sys);
    let seen = tokio::time::timeout(Duration::from_secs(2), reader)
        .await
        .expect("recv returned None once the topic was gone")
        .unwrap();
    assert_eq!(seen, vec![1], "buffered events are read first");
}

struct Fragile {
    fail_started: bool,
    fail_stopped: bool,
}

impl Actor for Fragile {
    type Msg = Reply<u32>;
    type Error = String;

    async fn started(&mut self, _ctx: &mut Context<Self>) {
        if self.fail_started {
            panic!("started bug");
        }
    }

    async fn handle(&mut self, reply: Reply<u32>, _ctx: &mut Context<Self>) -> Result<(), String> {
        reply.send(7);
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if self.fail_stopped {
            panic!("stopped bug");
        }
    }
}

#[tokio::test]
async fn panics_in_the_factory_and_started_are_failures_the_strategy_handles() {
    let (sys, _) = system();
    let restart = Strategy::Restart {
        max: 5,
        within: Duration::from_secs(60),
        backoff: Duration::ZERO,
    };
    // The factory panics twice, then works: restarted into service.
    let made = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let m = Arc::clone(&made);
    let recovers = sys
        .spawn(
            SpawnOptions::named("t-flaky-factory").strategy(restart),
            move || {
                let n = m.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if n <= 2 {
                    panic!("factory bug {n}");
                }
                Fragile {
                    fail_started: false,
                    fail_stopped: false,
                }
            },
        )
        .unwrap();
    assert_eq!(
        recovers.ask(|r| r, Duration::from_secs(2)).await.unwrap(),
        7
    );
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 3);

    // `started` always panics: past the restart limit it stops for good,
    // and says so; its name is free again.
    let gives_up = sys
        .spawn(SpawnOptions::named("t-bad-start").strategy(restart), || {
            Fragile {
                fail_started: true,
                fail_stopped: false,
            }
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gives_up.is_stopped() {
        assert!(std::time::Instant::now() < deadline, "it never stopped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gives_up
        .ask(|r| r, Duration::from_millis(100))
        .await
        .is_err());
    let again = sys.spawn(SpawnOptions::named("t-bad-start"), || Fragile {
        fail_started: false,
        fail_stopped: false,
    });
    assert!(again.is_ok(), "the name is free once it stopped for good");

    // A panic in `stopped` does not take the runtime down; the actor ends.
    let bad_stop = sys
        .spawn(SpawnOptions::named("t-bad-stop"), || Fragile {
            fail_started: false,
            fail_stopped: true,
        })
        .unwrap();
    bad_stop.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !bad_stop.is_stopped() {
        assert!(std::time::Instant::now() < deadline, "it never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

enum Tick {
    Every(Arc<()>),
    Once,
    Count(Reply<(u32, u32)>),
}

struct Ticker {
    every: u32,
    once: u32,
    token: Arc<()>,
}

impl Actor for Ticker {
    type Msg = Tick;
    type Error = String;

    async fn started(&mut self, ctx: &mut Context<Self>) {
        let token = Arc::clone(&self.token);
        ctx.schedule_every(Duration::from_millis(20), move || {
            Tick::Every(Arc::clone(&token))
        });
        ctx.schedule_once(Duration::from_millis(50), Tick::Once);
        let never = ctx.schedule_once(Duration::from_millis(60), Tick::Once);
        never.cancel();
    }

    async fn handle(&mut self, msg: Tick, _ctx: &mut Context<Self>) -> Result<(), String> {
        match msg {
            Tick::Every(token) => {
                // The tick carries the token: a live timer holds a clone.
                assert!(Arc::strong_count(&token) >= 2);
                self.every += 1;
            }
            Tick::Once => self.once += 1,
            Tick::Count(reply) => reply.send((self.every, self.once)),
        }
        Ok(())
    }
}

#[tokio::test]
async fn timers_send_their_messages_and_end_with_the_actor() {
    let (sys, _) = system();
    let token = Arc::new(());
    let t = Arc::clone(&token);
    let actor = sys
        .spawn(SpawnOptions::named("t-ticker"), move || Ticker {
            every: 0,
            once: 0,
            token: Arc::clone(&t),
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (every, once) = actor
        .ask(Tick::Count, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(every >= 3, "every 20 ms for 150 ms: {every}");
    assert_eq!(once, 1, "one once-timer fired, the cancelled one did not");
    actor.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !actor.is_stopped() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Every clone of the token (the periodic timer's closure, the factory,
    // the actor) is gone once the system is: no timer task outlives it.
    drop(sys);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the timer task ended with the actor"
    );
}

/// Fails every message; counts its `stopped` runs.
struct Doomed {
    stopped: Arc<std::sync::atomic::AtomicU32>,
}

impl Actor for Doomed {
    type Msg = ();
    type Error = String;

    async fn handle(&mut self, (): (), _ctx: &mut Context<Self>) -> Result<(), String> {
        Err("always".into())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stopped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn stopped_runs_after_a_final_failure_too() {
    let (sys, _) = system();
    for (name, strategy) in [
        ("t-doomed-stop", Strategy::Stop),
        ("t-doomed-escalate", Strategy::Escalate),
        (
            "t-doomed-limit",
            Strategy::Restart {
                max: 1,
                within: Duration::from_secs(60),
                backoff: Duration::ZERO,
            },
        ),
    ] {
        let count = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let c = Arc::clone(&count);
        let actor = sys
            .spawn(SpawnOptions::named(name).strategy(strategy), move || {
                Doomed {
                    stopped: Arc::clone(&c),
                }
            })
            .unwrap();
        for _ in 0..3 {
            let _ = actor.tell(()).await;
        }
        for _ in 0..200 {
            if actor.has_failed() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(actor.has_failed(), "{name}");
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{name}: cleanup ran once"
        );
    }
}
