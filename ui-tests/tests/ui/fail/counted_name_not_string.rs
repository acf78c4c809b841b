#[cortex::counted(name = calls_total)]
fn f() {}

fn main() {}
