#[cortex::timed(native = 1.1)]
fn f() {}

fn main() {}
