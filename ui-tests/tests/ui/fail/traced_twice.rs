#[cortex::traced]
#[cortex::traced]
fn f() {}

fn main() {}
