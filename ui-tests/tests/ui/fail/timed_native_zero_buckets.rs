#[cortex::timed(native(max_buckets = 0))]
fn f() {}

fn main() {}
