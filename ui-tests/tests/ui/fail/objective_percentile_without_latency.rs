#[cortex::objective(name = "checkout", success_rate = 99.9, latency_percentile = 99)]
#[cortex::counted]
fn charge() {}

fn main() {}
