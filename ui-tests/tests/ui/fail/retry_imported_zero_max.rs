// An imported attribute is checked the same way.
use cortex::retry;
#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[retry(max = 0)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
