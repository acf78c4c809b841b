#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

fn is_empty(s: &String) -> bool {
    s.is_empty()
}

#[cortex::circuit_breaker(record_result = is_empty)]
async fn call() -> Result<u32, AppError> {
    Ok(1)
}

fn main() {}
