// The default buckets have no 300 ms bound.
#[cortex::objective(name = "checkout", latency = "300ms", latency_percentile = 99)]
#[cortex::counted]
#[cortex::timed]
fn charge() {}

fn main() {}
