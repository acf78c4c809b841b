#[cortex::counted(labels(result = "a"))]
fn f() {}

fn main() {}
