#[cortex::timed(buckets = [f64::NAN])]
fn f() {}

fn main() {}
