/// Reads through a raw pointer.
///
/// # Safety
/// `p` must be valid for reads.
#[cortex::counted]
#[cortex::timed]
unsafe fn read(p: *const u32) -> u32 {
    unsafe { *p }
}

fn main() {
    let x = 7;
    assert_eq!(unsafe { read(&x) }, 7);
}
