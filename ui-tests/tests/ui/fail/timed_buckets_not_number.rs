#[cortex::timed(buckets = [0.1, "1"])]
fn f() {}

fn main() {}
