use std::time::Duration;

const CHECKOUT: cortex::slo::Objective =
    cortex::slo::Objective::new("checkout").latency(Duration::from_millis(200), 99.0);

#[cortex::objective(objective = CHECKOUT)]
#[cortex::timed(buckets = [0.1, 0.25, 1.0])]
fn charge() {}

fn main() {}
