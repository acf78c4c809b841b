#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::retry(delay = 100)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
