#[cortex::health_check]
async fn database() {}

fn main() {}
