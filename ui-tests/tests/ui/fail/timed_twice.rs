#[cortex::timed]
#[cortex::counted]
#[cortex::timed(buckets = [1])]
fn f() {}

fn main() {}
