//! 100,000 short-lived actors leave resident memory and `/metrics` flat.
//! Alone in its test binary: resident memory is the whole process's.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cortex::actor::{Actor, ActorSystem, Context, Reply, SpawnOptions};
use cortex::metrics::{Format, Registry};
use cortex_tests::until;

struct Counter {
    stopped: Arc<AtomicU32>,
}

impl Actor for Counter {
    type Msg = Reply<u32>;
    type Error = String;

    async fn handle(&mut self, reply: Reply<u32>, _ctx: &mut Context<Self>) -> Result<(), String> {
        reply.send(1);
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

/// Spawns `n` actors in batches of 1,000, asks each once, drops them, and
/// waits until the system runs none.
async fn churn(sys: &ActorSystem, n: usize, stopped: &Arc<AtomicU32>) {
    for _ in 0..n / 1000 {
        let mut actors = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let stopped = Arc::clone(stopped);
            let factory = move || Counter {
                stopped: Arc::clone(&stopped),
            };
            actors.push(
                sys.spawn(SpawnOptions::default().mailbox(4), factory)
                    .unwrap(),
            );
        }
        for a in &actors {
            assert_eq!(a.ask(|r| r, Duration::from_secs(5)).await, Ok(1));
        }
        drop(actors);
        until("the batch ended", || sys.running() == 0).await;
    }
}

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_short_lived_actors_leave_memory_and_metrics_flat() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let sys = ActorSystem::with_registry(Some(registry));
    let stopped = Arc::new(AtomicU32::new(0));
    churn(&sys, 10_000, &stopped).await;
    let (rss_before, metrics_before) = (resident_kib(), registry.encode(Format::PrometheusText));
    churn(&sys, 90_000, &stopped).await;
    let (rss_after, metrics_after) = (resident_kib(), registry.encode(Format::PrometheusText));
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        100_000,
        "every one ran `stopped`"
    );
    assert_eq!(sys.running(), 0);
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        series(&metrics_after),
        series(&metrics_before),
        "{metrics_after}"
    );
    // 90,000 more actors, and at most 4 MiB more (allocator slack);
    // each one kept would cost far more than 100 bytes.
    eprintln!("resident: {rss_before} KiB after 10,000 actors, {rss_after} KiB after 100,000");
    assert!(
        rss_after < rss_before + 4_096,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
}
