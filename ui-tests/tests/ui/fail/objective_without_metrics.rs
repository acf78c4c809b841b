#[cortex::objective(name = "checkout", success_rate = 99.9)]
#[cortex::traced]
fn charge() {}

fn main() {}
