#[cortex::timed(native(schema = 3))]
fn f() {}

fn main() {}
