#[cortex::circuit_breaker]
async fn call() {}

fn main() {}
