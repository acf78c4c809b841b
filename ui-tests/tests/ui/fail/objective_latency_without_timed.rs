#[cortex::counted]
#[cortex::objective(name = "checkout", latency = "250ms", latency_percentile = 99)]
fn charge() {}

fn main() {}
