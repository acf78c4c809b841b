// A duration is written as a string.
#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::timeout(2s)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
