#[cortex::timed(native(factor = 1.0))]
fn f() {}

fn main() {}
