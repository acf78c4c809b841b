//! A real Prometheus server scrapes a Cortex server over loopback, and its
//! query API shows the series arrived.
//!
//! Needs the `prometheus` binary (Debian package `prometheus`, installed by
//! `.ci/run`). Without it the test is skipped with a message, except under
//! CI, where it fails.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cortex_tests::raw;

#[cortex::counted]
fn scraped_function() -> Result<(), ()> {
    Ok(())
}

struct Prometheus {
    child: Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `value` of the first result of an instant query, if any.
async fn query(prometheus: std::net::SocketAddr, promql: &str) -> Option<String> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = raw::get(prometheus, &format!("/api/v1/query?query={encoded}"), &[]).await;
    let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics() {
    let binary = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
    if Command::new(&binary).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{binary}` is required under CI (apt-get install prometheus)"
        );
        eprintln!("skipping: `{binary}` not found (apt-get install prometheus)");
        return;
    }
    scraped_function().unwrap();
    let server = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let target = server.local_addr();

    let dir = std::env::temp_dir().join(format!(
        "cortex-prometheus-{}-{}",
        std::process::id(),
        target.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: cortex\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let prom_addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).unwrap(),
        ))
        .spawn()
        .expect("start prometheus");
    let prometheus = Prometheus { child, dir };

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut up = None;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if tokio::net::TcpStream::connect(prom_addr).await.is_err() {
            continue;
        }
        up = query(prom_addr, "up{job=\"cortex\"}").await;
        if up.as_deref() == Some("1") {
            break;
        }
    }
    let log = std::fs::read_to_string(prometheus.dir.join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        up.as_deref(),
        Some("1"),
        "Prometheus never scraped the target; its log:\n{log}"
    );
    let calls = query(
        prom_addr,
        "cortex_function_calls_total{function=\"scraped_function\",result=\"ok\"}",
    )
    .await;
    assert_eq!(calls.as_deref(), Some("1"));
    // The admin server's own request metrics arrive too, labelled by route
    // (a scrape is counted after it is answered, so the next one shows it).
    let mut scrapes = None;
    while scrapes.is_none() && Instant::now() < deadline {
        scrapes = query(
            prom_addr,
            "cortex_http_requests_total{route=\"/metrics\",status=\"200\"}",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(scrapes.is_some(), "the scrapes themselves are counted");
    drop(prometheus);
    server.shutdown(Duration::from_secs(1)).await;
}
