// An error in the second attribute is reported on its own tokens, even
// though the first one expands both.
#[cortex::counted]
#[cortex::timed(buckets = [])]
fn f() {}

fn main() {}
