#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::bulkhead(fair = 1)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
