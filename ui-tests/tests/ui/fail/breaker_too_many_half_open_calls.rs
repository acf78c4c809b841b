#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::circuit_breaker(half_open_calls = 5000)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
