#[derive(Debug)]
struct AppError;

impl From<cortex::resilience::Error> for AppError {
    fn from(_: cortex::resilience::Error) -> Self {
        AppError
    }
}

struct Ticket;

#[cortex::retry]
async fn call(ticket: Ticket) -> Result<(), AppError> {
    let _ = ticket;
    Ok(())
}

fn main() {}
