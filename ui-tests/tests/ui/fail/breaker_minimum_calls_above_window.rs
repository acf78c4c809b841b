#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::circuit_breaker(window = 10, minimum_calls = 20)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
