#[cortex::timed(crate = 5)]
fn f() {}

fn main() {}
