//! Actor messaging against a raw tokio mpsc channel and `ractor`, in the
//! same run: tell throughput (one actor; 100 actors round-robin) and ask
//! round trips.
//!
//! ```text
//! cargo bench -p cortex-benches --bench actors
//! ```

use std::time::{Duration, Instant};

use cortex::actor::{Actor, ActorSystem, Context, Reply, SpawnOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MESSAGES: u64 = 100_000;

enum Msg {
    Add(u64),
    Flush(Reply<u64>),
}

struct Sum(u64);

impl Actor for Sum {
    type Msg = Msg;
    type Error = String;
    async fn handle(&mut self, msg: Msg, _ctx: &mut Context<Self>) -> Result<(), String> {
        match msg {
            Msg::Add(n) => self.0 += n,
            Msg::Flush(r) => r.send(self.0),
        }
        Ok(())
    }
}

struct RSum;

impl ractor::Actor for RSum {
    type Msg = RMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ractor::ActorRef<RMsg>,
        _args: (),
    ) -> Result<u64, ractor::ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _me: ractor::ActorRef<RMsg>,
        msg: RMsg,
        state: &mut u64,
    ) -> Result<(), ractor::ActorProcessingErr> {
        match msg {
            RMsg::Add(n) => *state += n,
            RMsg::Flush(reply) => {
                let _ = reply.send(*state);
            }
        }
        Ok(())
    }
}

enum RMsg {
    Add(u64),
    Flush(ractor::RpcReplyPort<u64>),
}

#[derive(kameo::Actor)]
struct KSum(u64);

struct KAdd(u64);
struct KFlush;

impl kameo::message::Message<KAdd> for KSum {
    type Reply = ();
    async fn handle(&mut self, msg: KAdd, _ctx: &mut kameo::message::Context<Self, Self::Reply>) {
        self.0 += msg.0;
    }
}

impl kameo::message::Message<KFlush> for KSum {
    type Reply = u64;
    async fn handle(
        &mut self,
        _msg: KFlush,
        _ctx: &mut kameo::message::Context<Self, Self::Reply>,
    ) -> u64 {
        self.0
    }
}

fn actors(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let system = rt.block_on(async { ActorSystem::with_registry(None) });
    let mut g = c.benchmark_group("tell_one_actor");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(10);
    g.bench_function("tokio_mpsc", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(1024);
                    let consumer = tokio::spawn(async move {
                        let mut sum = 0;
                        while let Some(m) = rx.recv().await {
                            match m {
                                Msg::Add(n) => sum += n,
                                Msg::Flush(r) => r.send(sum),
                            }
                        }
                    });
                    for i in 0..MESSAGES {
                        tx.send(Msg::Add(i)).await.unwrap();
                    }
                    drop(tx);
                    consumer.await.unwrap();
                }
                started.elapsed()
            })
        })
    });
    g.bench_function("cortex", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let actor = system.spawn(SpawnOptions::default(), || Sum(0)).unwrap();
                    for i in 0..MESSAGES {
                        actor.tell(Msg::Add(i)).await.unwrap();
                    }
                    let _ = actor
                        .ask(Msg::Flush, Duration::from_secs(60))
                        .await
                        .unwrap();
                    actor.stop();
                }
                started.elapsed()
            })
        })
    });
    g.bench_function("ractor", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let (actor, handle) = ractor::Actor::spawn(None, RSum, ()).await.unwrap();
                    for i in 0..MESSAGES {
                        actor.cast(RMsg::Add(i)).unwrap();
                    }
                    let _ = ractor::call!(actor, RMsg::Flush).unwrap();
                    actor.stop(None);
                    handle.await.unwrap();
                }
                started.elapsed()
            })
        })
    });
    g.bench_function("kameo", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                use kameo::actor::Spawn as _;
                let started = Instant::now();
                for _ in 0..iters {
                    let actor = KSum::spawn(KSum(0));
                    for i in 0..MESSAGES {
                        actor.tell(KAdd(i)).await.unwrap();
                    }
                    let _ = actor.ask(KFlush).await.unwrap();
                    let _ = actor.stop_gracefully().await;
                }
                started.elapsed()
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("tell_100_actors_round_robin");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(10);
    g.bench_function("cortex", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let actors: Vec<_> = (0..100)
                        .map(|_| system.spawn(SpawnOptions::default(), || Sum(0)).unwrap())
                        .collect();
                    for i in 0..MESSAGES {
                        actors[(i % 100) as usize].tell(Msg::Add(i)).await.unwrap();
                    }
                    for a in &actors {
                        let _ = a.ask(Msg::Flush, Duration::from_secs(60)).await.unwrap();
                        a.stop();
                    }
                }
                started.elapsed()
            })
        })
    });
    g.bench_function("ractor", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let mut actors = Vec::new();
                    for _ in 0..100 {
                        actors.push(ractor::Actor::spawn(None, RSum, ()).await.unwrap());
                    }
                    for i in 0..MESSAGES {
                        actors[(i % 100) as usize].0.cast(RMsg::Add(i)).unwrap();
                    }
                    for (a, h) in actors {
                        let _ = ractor::call!(a, RMsg::Flush).unwrap();
                        a.stop(None);
                        h.await.unwrap();
                    }
                }
                started.elapsed()
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("ask_round_trip");
    let actor = rt.block_on(async { system.spawn(SpawnOptions::default(), || Sum(0)).unwrap() });
    g.bench_function("cortex", |b| {
        b.iter(|| {
            rt.block_on(actor.ask(Msg::Flush, Duration::from_secs(60)))
                .unwrap()
        })
    });
    let (ractor_ref, _h) =
        rt.block_on(async { ractor::Actor::spawn(None, RSum, ()).await.unwrap() });
    g.bench_function("ractor", |b| {
        b.iter(|| rt.block_on(async { ractor::call!(ractor_ref, RMsg::Flush).unwrap() }))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(3);
    targets = actors
}
criterion_main!(benches);
