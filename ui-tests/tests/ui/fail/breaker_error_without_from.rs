#[cortex::circuit_breaker]
async fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
