#[cortex::objective(name = "checkout", latency = "250ms")]
#[cortex::timed]
fn charge() {}

fn main() {}
