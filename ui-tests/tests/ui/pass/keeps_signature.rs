// The function keeps its docs, attributes and visibility: with
// `deny(missing_docs)` and `deny(unused_must_use)`, losing either fails.
#![deny(missing_docs, unused_must_use)]
//! A crate whose public functions are annotated.

/// Public, documented, `#[must_use]` and `#[inline]`.
#[cortex::counted]
#[cortex::timed(labels(team = "core"))]
#[must_use]
#[inline]
pub fn documented() -> u32 {
    1
}

mod inner {
    /// Visible to the parent module only.
    #[cortex::counted(name = "inner_calls_total", help = "Inner calls.")]
    pub(super) fn restricted() -> u8 {
        2
    }

    #[allow(dead_code)]
    #[cortex::counted]
    fn r#type() {}
}

fn main() {
    let _ = documented();
    let _ = inner::restricted();
}
