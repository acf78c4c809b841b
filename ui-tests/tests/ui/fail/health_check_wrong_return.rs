#[cortex::health_check]
async fn database() -> u32 {
    1
}

fn main() {}
