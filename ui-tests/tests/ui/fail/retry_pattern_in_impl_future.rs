#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::retry]
fn call((a, b): (u8, u8)) -> impl std::future::Future<Output = Result<u8, AppError>> {
    async move { Ok(a + b) }
}

fn main() {}
