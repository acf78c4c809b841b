#[cortex::timed(track_in_flight = "yes")]
fn f() {}

fn main() {}
