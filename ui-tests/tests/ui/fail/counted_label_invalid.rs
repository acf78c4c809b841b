#[cortex::counted(labels(__team = "a"))]
fn f() {}

fn main() {}
