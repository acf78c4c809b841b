//! What annotated functions find wrong when they register themselves (two
//! sites giving one policy name two configurations, two health checks with
//! one name) is reported once, naming both functions and where they are,
//! and the process goes on serving `/metrics` and `/health`. One test: the
//! log subscriber must be in place before the first registry is built.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cortex::resilience::{circuit_breaker, Error};
use cortex_tests::raw;

#[cortex::circuit_breaker(
    name = "shared-conflict",
    failure_rate = 50,
    minimum_calls = 2,
    window = 2
)]
async fn first_site() -> Result<(), Error> {
    Ok(())
}

#[cortex::circuit_breaker(
    name = "shared-conflict",
    failure_rate = 90,
    minimum_calls = 2,
    window = 2
)]
async fn second_site() -> Result<(), Error> {
    Ok(())
}

mod orders {
    #[cortex::health_check(group = "readiness")]
    pub(crate) async fn database() -> bool {
        true
    }
}

mod billing {
    #[cortex::health_check(group = "readiness")]
    pub(crate) fn database() -> bool {
        false
    }
}

/// Collects what the log subscriber writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line of the attribute above `fn {name}` in this file, as `line!()`
/// gives it for the attribute.
fn attribute_line(name: &str) -> usize {
    let source = include_str!("registration.rs");
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(&format!("fn {name}(")))
        .expect("function in this file");
    let attr = lines[..at]
        .iter()
        .rposition(|l| l.trim_start().starts_with("#[cortex::"))
        .expect("its attribute");
    attr + 1
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_reported_with_both_sites_and_the_service_keeps_serving() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    let metrics = raw::get(addr, "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("cortex_circuit_breaker_state{name=\"shared-conflict\",state=\"closed\"} 1"),
        "{}",
        metrics.body
    );

    // Both functions run, under the one breaker, with the first site's
    // configuration.
    first_site().await.unwrap();
    second_site().await.unwrap();
    assert_eq!(
        circuit_breaker("shared-conflict")
            .unwrap()
            .config()
            .failure_rate,
        50
    );
    let text = logs.text();
    assert_eq!(text.matches("is configured twice").count(), 1, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("is configured twice"))
        .unwrap();
    assert!(line.contains("ERROR"), "{line}");
    let (first, second) = (attribute_line("first_site"), attribute_line("second_site"));
    assert!(
        line.contains(&format!("circuit breaker `shared-conflict` is configured twice: `registration::second_site` (tests/tests/registration.rs:{second})")),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "but `registration::first_site` (tests/tests/registration.rs:{first}) made it with"
        )),
        "{line}"
    );
    assert!(line.contains("failure_rate: 90"), "{line}");

    // Both health checks are kept, each under its module.
    let health = raw::get(addr, "/health/ready", &[]).await;
    let body: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(
        body["components"]["registration::orders::database"]["status"], "UP",
        "{body}"
    );
    assert_eq!(
        body["components"]["registration::billing::database"]["status"], "DOWN",
        "{body}"
    );
    assert!(body["components"].get("database").is_none(), "{body}");
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("health checks are named `database`"))
        .unwrap_or_else(|| panic!("{text}"));
    let orders = attribute_line("database");
    let billing = orders + 7;
    assert!(
        line.contains(&format!("`registration::orders::database` (tests/tests/registration.rs:{orders}) and `registration::billing::database` (tests/tests/registration.rs:{billing})")),
        "{line}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
