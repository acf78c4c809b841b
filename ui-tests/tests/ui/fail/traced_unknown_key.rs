#[cortex::traced(label = "x")]
fn f() {}

fn main() {}
