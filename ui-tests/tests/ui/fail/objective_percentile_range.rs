#[cortex::objective(name = "checkout", latency = "250ms", latency_percentile = 0)]
#[cortex::timed(buckets = [0.1, 0.25])]
fn charge() {}

fn main() {}
