#[cortex::objective(name = "check out", success_rate = 99.9)]
#[cortex::counted]
fn charge() {}

fn main() {}
