// A crate that re-exports cortex under another path points the macros at it.
mod reexport {
    pub use cortex as observability;
}

#[cortex::counted(crate = reexport::observability)]
#[cortex::timed(crate = crate::reexport::observability)]
fn work() {}

fn main() {
    work();
}
