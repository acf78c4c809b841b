// The attributes nest the same way however they are spelled: imported,
// fully qualified, or through a re-export with `crate = path`.
use cortex::{bulkhead, circuit_breaker, counted, rate_limit, retry, timed, timeout, traced};

mod platform {
    pub use ::cortex as observe;
}

#[derive(Debug)]
pub struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[traced]
#[counted]
#[timed]
#[retry(max = 3, delay = "1ms")]
#[circuit_breaker]
#[rate_limit(permits = 10, period = "1s")]
#[timeout("2s")]
#[bulkhead]
pub async fn recommended(card: String) -> Result<usize, AppError> {
    Ok(card.len())
}

#[cortex::traced]
#[counted]
#[cortex::retry(max = 3, delay = "1ms")]
#[circuit_breaker]
pub fn mixed(card: &str) -> Result<usize, AppError> {
    Ok(card.len())
}

#[platform::observe::traced(crate = crate::platform::observe)]
#[platform::observe::counted(crate = crate::platform::observe)]
#[platform::observe::retry(crate = crate::platform::observe, max = 2, delay = "1ms")]
#[platform::observe::timeout("1s", crate = crate::platform::observe)]
pub async fn reexported() -> Result<(), AppError> {
    Ok(())
}

fn main() {
    let _ = recommended("c".into());
    let _ = mixed("c");
    let _ = reexported();
}
