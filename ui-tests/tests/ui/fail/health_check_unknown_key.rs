#[cortex::health_check(critcal = false)]
async fn database() -> bool {
    true
}

fn main() {}
