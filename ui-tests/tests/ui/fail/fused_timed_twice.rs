#[cortex::counted]
#[cortex::timed]
#[cortex::timed(buckets = [1])]
fn f() {}

fn main() {}
