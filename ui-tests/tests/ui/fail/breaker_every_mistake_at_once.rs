// All the mistakes of one attribute are reported together.
#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::circuit_breaker(failure_rate = 0, bogus = 1, open_for = "0s", half_open_calls = "3")]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
