//! `#[timed(native)]` alone, beside classic buckets, with options, fused
//! with `#[counted]`, and under an objective.

#[cortex::timed(native)]
fn native_only() {}

#[cortex::timed(native, buckets = [0.01, 0.1, 1.0])]
async fn both() {}

#[cortex::timed(native(factor = 1.05, zero_threshold = 1e-9, max_buckets = 100))]
fn tuned() {}

#[cortex::counted]
#[cortex::timed(native(max_buckets = 20), buckets = [0.25])]
fn fused() -> Result<(), String> {
    Ok(())
}

#[cortex::objective(name = "native-checkout", latency = "250ms", latency_percentile = 99)]
#[cortex::timed(native, buckets = [0.1, 0.25])]
fn with_objective() {}

fn main() {
    native_only();
    let _ = both();
    tuned();
    let _ = fused();
    with_objective();
}
