use cortex::health::Health;

#[cortex::health_check]
async fn database(url: &str) -> Health {
    let _ = url;
    Health::up()
}

fn main() {}
