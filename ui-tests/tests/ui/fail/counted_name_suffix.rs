#[cortex::counted(name = "my_calls")]
fn f() {}

fn main() {}
