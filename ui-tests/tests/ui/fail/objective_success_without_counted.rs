#[cortex::objective(name = "checkout", success_rate = 99.9)]
#[cortex::timed]
fn charge() {}

fn main() {}
