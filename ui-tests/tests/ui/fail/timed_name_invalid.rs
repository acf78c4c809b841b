#[cortex::timed(name = "9latency_seconds")]
fn f() {}

fn main() {}
