use cortex::health::Health;

/// Documented and public.
#[cortex::health_check(name = "primary_db", group = "readiness", critical = true, timeout = "250ms")]
pub async fn database() -> Health {
    Health::up()
}

#[cortex::health_check(group = "liveness")]
fn heartbeat() -> bool {
    true
}

#[cortex::health_check(group = "both", critical = false)]
async fn queue() -> Result<(), String> {
    Err("backlog".into())
}

mod nested {
    #[cortex::health_check(timeout = "2m")]
    pub(crate) fn config_loaded() -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn main() {
    let _ = database();
    assert!(heartbeat());
    let _ = queue();
    nested::config_loaded().unwrap();
}
