#[cortex::counted(labels(objective_name = "mine"))]
fn charge() {}

fn main() {}
