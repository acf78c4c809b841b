#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

#[cortex::retry]
fn call(buf: &mut Vec<u8>) -> Result<(), AppError> {
    buf.push(1);
    Ok(())
}

fn main() {}
