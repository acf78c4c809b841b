#[cortex::timed(track_in_flight, track_in_flight)]
fn f() {}

fn main() {}
