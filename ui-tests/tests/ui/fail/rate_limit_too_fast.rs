#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::rate_limit(permits = 4000000, period = "1ms")]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
