#[cortex::counted(labels = "team")]
fn f() {}

fn main() {}
