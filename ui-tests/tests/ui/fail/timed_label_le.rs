#[cortex::timed(labels(le = "1"))]
fn f() {}

fn main() {}
