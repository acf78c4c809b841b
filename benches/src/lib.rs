//! What the criterion benches share.

use std::time::Duration;

/// Criterion settings for every bench: a short warm-up and `measure_secs`
/// of measurement per case, so a whole bench runs in a few minutes on the
/// 2-core CI machine.
pub fn config(measure_secs: u64) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(measure_secs))
}
