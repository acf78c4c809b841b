#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::retry(jitter = "wild")]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
