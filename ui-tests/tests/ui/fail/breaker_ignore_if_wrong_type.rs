#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

fn is_io(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::Interrupted
}

#[cortex::circuit_breaker(ignore_if = is_io)]
async fn call() -> Result<(), AppError> {
    Ok(())
}

fn main() {}
