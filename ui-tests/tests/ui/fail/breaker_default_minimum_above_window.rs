#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

// minimum_calls defaults to 100: a window of 10 could never open.
#[cortex::circuit_breaker(window = 10)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
