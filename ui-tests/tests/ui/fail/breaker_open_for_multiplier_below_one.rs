#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::circuit_breaker(open_for_multiplier = 0.5)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
