#[cortex::counted(help = "a", help = "b")]
fn f() {}

fn main() {}
