#[cortex::timed(native(zero_threshold = -1.0))]
fn f() {}

fn main() {}
