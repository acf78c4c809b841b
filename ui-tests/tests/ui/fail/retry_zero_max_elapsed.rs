#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::retry(max_elapsed = "0s")]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
