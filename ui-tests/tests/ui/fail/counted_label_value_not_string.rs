#[cortex::counted(labels(team = 1))]
fn f() {}

fn main() {}
