#[cortex::health_check(group = "startup")]
async fn database() -> bool {
    true
}

fn main() {}
