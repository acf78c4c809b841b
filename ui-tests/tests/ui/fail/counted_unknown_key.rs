#[cortex::counted(nme = "calls_total")]
fn f() {}

fn main() {}
