#[cortex::timed(bucket = [1.0])]
fn f() {}

fn main() {}
