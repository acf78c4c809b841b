#[cortex::timed(buckets = [0.1, f64::INFINITY])]
fn f() {}

fn main() {}
