#[cortex::objective(name = "checkout", success_rate = 150)]
#[cortex::counted]
fn charge() {}

fn main() {}
