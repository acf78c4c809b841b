#[cortex::traced(kind = client)]
fn f() {}

fn main() {}
