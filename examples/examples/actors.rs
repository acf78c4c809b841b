//! A small pipeline of actors on the event bus. The validator crashes on a
//! poisoned order and is restarted by its supervisor without losing the
//! orders queued behind it.
//!
//! ```text
//! cargo run --example actors
//! ```

use std::time::Duration;

use cortex::actor::{
    Actor, ActorRef, ActorSystem, Context, GroupStrategy, Reply, SlowPolicy, SpawnOptions, Strategy,
};

#[derive(Debug, Clone)]
struct Order {
    id: u32,
    cents: u64,
}

/// Checks orders and forwards the good ones; an order of 0 cents is a bug
/// it does not survive (it panics).
struct Validator {
    next: ActorRef<Aggregator>,
}

impl Actor for Validator {
    type Msg = Order;
    type Error = String;

    async fn started(&mut self, ctx: &mut Context<Self>) {
        println!("  [{}] started", ctx.name());
    }

    async fn handle(&mut self, order: Order, _ctx: &mut Context<Self>) -> Result<(), String> {
        if order.cents == 0 {
            panic!("order {} has no amount", order.id);
        }
        if order.cents > 100_000 {
            return Err(format!("order {} is over the limit", order.id));
        }
        self.next
            .tell(AggMsg::Add(order))
            .await
            .map_err(|e| e.to_string())
    }
}

enum AggMsg {
    Add(Order),
    Totals(Reply<(u32, u64)>),
}

#[derive(Default)]
struct Aggregator {
    orders: u32,
    cents: u64,
}

impl Actor for Aggregator {
    type Msg = AggMsg;
    type Error = String;

    async fn handle(&mut self, msg: AggMsg, _ctx: &mut Context<Self>) -> Result<(), String> {
        match msg {
            AggMsg::Add(order) => {
                self.orders += 1;
                self.cents += order.cents;
                println!("  aggregated order {} ({} cents)", order.id, order.cents);
            }
            AggMsg::Totals(reply) => reply.send((self.orders, self.cents)),
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The panic is part of the demonstration: keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let system = ActorSystem::with_registry(Some(cortex::metrics::global()));
    let supervisor = system.supervisor("pipeline", GroupStrategy::OneForOne);
    let mut events = supervisor.events(16);
    let aggregator = supervisor.spawn(SpawnOptions::named("aggregator"), Aggregator::default)?;
    let next = aggregator.clone();
    let validator = supervisor.spawn(
        SpawnOptions::named("validator").strategy(Strategy::Restart {
            max: 5,
            within: Duration::from_secs(60),
            backoff: Duration::from_millis(10),
        }),
        move || Validator { next: next.clone() },
    )?;

    let orders = system.event_bus().topic::<Order>("orders")?;
    orders.subscribe_actor(validator.clone(), 64, SlowPolicy::Backpressure, |o| o);

    println!("Publishing 6 orders; order 3 is poisoned, order 5 is over the limit.");
    for (id, cents) in [(1, 250), (2, 1200), (3, 0), (4, 800), (5, 250_000), (6, 99)] {
        orders.publish(Order { id, cents }).await;
    }
    for _ in 0..2 {
        if let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
            println!("  supervisor was told: {event:?}");
        }
    }
    // Wait until the last order went through the pipeline.
    let mut totals = (0, 0);
    for _ in 0..100 {
        totals = aggregator
            .ask(AggMsg::Totals, Duration::from_secs(1))
            .await?;
        if totals.0 == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "Aggregated {} orders, {} cents: nothing queued behind the crash was lost.",
        totals.0, totals.1
    );

    let report = system.shutdown(Duration::from_secs(2)).await;
    println!("Shut down; unfinished actors: {:?}", report.unfinished);
    let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
    println!("\nThe actors' metrics:");
    for line in text
        .lines()
        .filter(|l| l.starts_with("cortex_actor_") && !l.contains("_bucket"))
    {
        println!("  {line}");
    }
    Ok(())
}
