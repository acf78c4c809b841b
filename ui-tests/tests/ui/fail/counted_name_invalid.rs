#[cortex::counted(name = "my-calls_total")]
fn f() {}

fn main() {}
