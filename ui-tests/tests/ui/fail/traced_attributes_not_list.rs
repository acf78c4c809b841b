#[cortex::traced(attributes = "user")]
fn f() {}

fn main() {}
