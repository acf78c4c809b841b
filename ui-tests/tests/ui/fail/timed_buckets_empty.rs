#[cortex::timed(buckets = [])]
fn f() {}

fn main() {}
