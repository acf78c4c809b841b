#[cortex::circuit_breaker]
async fn call() -> u32 {
    1
}

fn main() {}
