#[cortex::health_check(timeout = 5)]
async fn database() -> bool {
    true
}

fn main() {}
