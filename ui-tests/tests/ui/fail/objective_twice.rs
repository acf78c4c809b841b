#[cortex::objective(name = "checkout", success_rate = 99.9)]
#[cortex::objective(name = "checkout", latency = "250ms", latency_percentile = 99)]
#[cortex::counted]
#[cortex::timed]
fn charge() {}

fn main() {}
