#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::bulkhead(max_concurrent = 0)]
fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
