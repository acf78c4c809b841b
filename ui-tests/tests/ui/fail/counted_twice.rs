#[cortex::counted]
#[cortex::counted(name = "other_total")]
fn f() {}

fn main() {}
