#[cortex::traced(name = " ")]
fn f() {}

fn main() {}
