// A type the macro cannot see into must be a `Result` under a policy
// without a fallback.
pub struct Page(String);

#[cortex::circuit_breaker]
async fn render() -> Page {
    Page(String::new())
}

fn main() {}
