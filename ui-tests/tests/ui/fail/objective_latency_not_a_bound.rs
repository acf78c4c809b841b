#[cortex::objective(name = "checkout", latency = "200ms", latency_percentile = 99)]
#[cortex::timed(buckets = [0.1, 0.25, 1.0])]
fn charge() {}

fn main() {}
