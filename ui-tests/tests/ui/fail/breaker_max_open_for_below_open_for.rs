#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::circuit_breaker(open_for = "1m", max_open_for = "10s")]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
