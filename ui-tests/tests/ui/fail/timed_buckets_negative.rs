#[cortex::timed(buckets = [-0.1, 0.5])]
fn f() {}

fn main() {}
