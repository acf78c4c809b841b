#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

async fn cached(id: String) -> Result<u32, AppError> {
    Ok(id.len() as u32)
}

#[cortex::bulkhead(fallback = cached)]
async fn call(id: u32) -> Result<u32, AppError> {
    Ok(id)
}

fn main() {}
