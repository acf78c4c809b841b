//! Objectives in every place of a stack, inline and shared, on sync, async
//! and method functions.

use std::time::Duration;

use cortex::slo::Objective;

const ORDERS: Objective = Objective::new("orders")
    .success_rate(99.5)
    .latency(Duration::from_millis(100), 95.0);

const AVAILABILITY: Objective = Objective::new("availability").success_rate(99.0);

#[cortex::objective(name = "checkout", success_rate = 99.9, latency = "250ms", latency_percentile = 99)]
#[cortex::counted]
#[cortex::timed(buckets = [0.1, 0.25, 1.0])]
async fn charge(cents: u64) -> Result<u64, String> {
    Ok(cents)
}

// Below the metrics, between them, with a policy in the stack.
#[cortex::counted]
#[cortex::objective(name = "refunds", success_rate = 99)]
#[cortex::retry(max = 2, delay = "1ms")]
fn refund(id: u64) -> Result<u64, cortex::resilience::Error> {
    Ok(id)
}

#[cortex::timed]
#[cortex::objective(name = "search", latency = "1s", latency_percentile = 99.9)]
fn search() {}

#[cortex::objective(objective = ORDERS)]
#[cortex::counted]
#[cortex::timed(buckets = [0.01, 0.1, 1.0])]
fn find(id: u64) -> Option<u64> {
    Some(id)
}

// A success-only objective needs no histogram.
#[cortex::objective(objective = AVAILABILITY)]
#[cortex::counted]
fn ping() {}

struct Store;

impl Store {
    #[cortex::objective(objective = ORDERS)]
    #[cortex::traced]
    #[cortex::counted]
    #[cortex::timed(buckets = [0.1])]
    fn load(&self, id: u64) -> Result<u64, String> {
        Ok(id)
    }
}

fn main() {
    let _ = charge(1);
    let _ = refund(1);
    search();
    let _ = find(1);
    ping();
    let _ = Store.load(1);
}
