#[cortex::health_check(critical = "no")]
async fn database() -> bool {
    true
}

fn main() {}
