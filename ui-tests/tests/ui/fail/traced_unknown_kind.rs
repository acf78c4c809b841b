#[cortex::traced(kind = "backend")]
fn f() {}

fn main() {}
