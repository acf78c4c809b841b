#[cortex::objective(name = "checkout", latency = "250ms", latency_percentile = 99)]
#[cortex::timed(native)]
fn charge() {}

fn main() {}
