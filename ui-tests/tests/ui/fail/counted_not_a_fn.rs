#[cortex::counted]
struct S;

fn main() {}
