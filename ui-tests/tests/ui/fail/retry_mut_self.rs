#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

struct Client;

impl Client {
    #[cortex::retry]
    async fn call(&mut self) -> Result<(), AppError> {
        Ok(())
    }
}

fn main() {}
