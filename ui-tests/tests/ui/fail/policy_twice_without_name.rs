#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::timeout("5s")]
#[cortex::retry]
#[cortex::timeout("1s")]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
