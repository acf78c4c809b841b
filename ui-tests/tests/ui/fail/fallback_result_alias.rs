// A `Result` alias with a fallback: the macro cannot see it is a `Result`,
// so it says how to write it instead of guessing.
#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

type Res<T> = Result<T, AppError>;

async fn cached() -> Res<u8> {
    Ok(0)
}

#[cortex::circuit_breaker(fallback = cached)]
async fn call() -> Res<u8> {
    Ok(1)
}

fn main() {}
