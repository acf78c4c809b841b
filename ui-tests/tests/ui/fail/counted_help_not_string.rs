#[cortex::counted(help = 42)]
fn f() {}

fn main() {}
