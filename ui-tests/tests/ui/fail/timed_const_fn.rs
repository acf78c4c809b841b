#[cortex::timed]
const fn f() {}

fn main() {}
