// The function is still emitted, so calling it is not a second error.
#[cortex::counted(bogus)]
fn f() -> u32 {
    1
}

fn main() {
    let _x: u32 = f();
}
