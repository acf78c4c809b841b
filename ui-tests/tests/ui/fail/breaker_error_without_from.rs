// The error type cannot carry a rejection: no `From<cortex::resilience::Error>`.
#[derive(Debug)]
struct StoreError;

#[cortex::circuit_breaker]
async fn call() -> Result<(), StoreError> {
    Ok(())
}

fn main() {}
