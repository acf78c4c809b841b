#[cortex::objective(name = "checkout")]
#[cortex::counted]
fn charge() {}

fn main() {}
