//! Trace context crosses every boundary Cortex owns: a task submitted to a
//! `WorkerPool`, a message told or asked to an actor, a task spawned with
//! `trace::spawn`, and a request to Cortex's server carrying `traceparent`.
//! Each runs as a child of the span current where it was handed over.

use std::time::Duration;

use cortex::actor::{Actor, ActorSystem, Context, Reply, SpawnOptions};
use cortex::trace::SpanData;
use cortex::workers::{PoolOptions, WorkerPool};
use cortex_tests::spans::{in_trace, installed, named};

fn parent_of(spans: &[SpanData], name: &str) -> Option<cortex::trace::SpanId> {
    named(spans, name).parent_span_id
}

#[test]
fn a_worker_pool_task_is_a_child_of_the_submitting_span() {
    let pool = WorkerPool::new(PoolOptions::named("t-traced").threads(1).without_metrics());
    let (root, spans) = in_trace(|| {
        let tracer = installed().0;
        pool.submit_blocking(move |_| tracer.start("on a worker").end())
            .unwrap()
            .wait()
            .unwrap();
        pool.spawn(move |_| tracer.start("spawned on a worker").end())
            .unwrap();
        // A task of the pool after the spawned one: the spawned one ended.
        pool.submit_blocking(|_| ()).unwrap().wait().unwrap();
    });
    assert_eq!(parent_of(&spans, "on a worker"), Some(root.span_id));
    assert_eq!(parent_of(&spans, "spawned on a worker"), Some(root.span_id));
    // The worker thread keeps no span current afterwards.
    let stray = pool
        .submit_blocking(|_| cortex::trace::current().is_none())
        .unwrap()
        .wait()
        .unwrap();
    assert!(stray, "no span leaks into the next task");
}

enum Msg {
    Work,
    Ask(Reply<bool>),
}

struct Traced;

impl Actor for Traced {
    type Msg = Msg;
    type Error = String;

    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), String> {
        let mut span = installed().0.start("handled by the actor");
        tokio::time::sleep(Duration::from_millis(1)).await;
        span.end();
        if let Msg::Ask(reply) = msg {
            reply.send(true);
        }
        Ok(())
    }
}

#[test]
fn an_actor_handles_a_message_as_a_child_of_the_sending_span() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let system = ActorSystem::with_registry(None);
    let actor = rt.block_on(async { system.spawn(SpawnOptions::default(), || Traced).unwrap() });
    for ask in [false, true] {
        let (root, spans) = in_trace(|| {
            rt.block_on(async {
                if ask {
                    assert!(actor.ask(Msg::Ask, Duration::from_secs(5)).await.unwrap());
                } else {
                    actor.tell(Msg::Work).await.unwrap();
                    // Wait for it to be handled.
                    actor.ask(Msg::Ask, Duration::from_secs(5)).await.unwrap();
                }
            });
        });
        let handled: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.name == "handled by the actor")
            .collect();
        assert!(!handled.is_empty(), "{spans:#?}");
        for s in handled {
            assert_eq!(s.parent_span_id, Some(root.span_id), "ask: {ask}");
        }
    }
}

#[test]
fn a_task_spawned_with_trace_spawn_is_a_child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (root, spans) = in_trace(|| {
        rt.block_on(async {
            cortex::trace::spawn(async { installed().0.start("in a spawned task").end() })
                .await
                .unwrap();
        });
    });
    assert_eq!(parent_of(&spans, "in a spawned task"), Some(root.span_id));
}
