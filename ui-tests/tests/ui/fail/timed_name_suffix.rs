#[cortex::timed(name = "latency")]
fn f() {}

fn main() {}
