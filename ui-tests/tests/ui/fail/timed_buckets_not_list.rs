#[cortex::timed(buckets = 0.1)]
fn f() {}

fn main() {}
