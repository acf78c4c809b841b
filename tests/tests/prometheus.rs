//! A real Prometheus server scrapes a Cortex server over loopback, and its
//! query API shows the series arrived; with native histograms enabled it
//! reads them from the protobuf exposition.
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

/// The Prometheus binary, or `None` (skipping) outside CI when it is not
/// installed.
fn binary() -> Option<String> {
    let binary = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
    if Command::new(&binary).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{binary}` is required under CI (apt-get install prometheus)"
        );
        eprintln!("skipping: `{binary}` not found (apt-get install prometheus)");
        return None;
    }
    Some(binary)
}

/// Starts a Prometheus scraping `target` every second, with `flags`, and
/// waits until it has scraped it once.
async fn start(
    binary: &str,
    target: std::net::SocketAddr,
    name: &str,
    flags: &[&str],
) -> (Prometheus, std::net::SocketAddr) {
    let dir = std::env::temp_dir().join(format!(
        "cortex-prometheus-{}-{}-{name}",
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
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .args(flags)
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
    (prometheus, prom_addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics() {
    let Some(binary) = binary() else { return };
    scraped_function().unwrap();
    let server = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let target = server.local_addr();
    let (prometheus, prom_addr) = start(&binary, target, "text", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
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

/// A Prometheus with native histograms enabled asks for the protobuf
/// exposition and computes quantiles from the native buckets, within the
/// schema's relative error; one without the feature reads the same
/// histogram's classic buckets from the text format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_reads_native_and_classic_buckets() {
    let Some(binary) = binary() else { return };
    let latency = cortex::metrics::global()
        .histogram(
            "prom_native_latency_seconds",
            "Observed by the native histogram test.",
            cortex::metrics::Buckets::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ])
            .unwrap()
            .with_native(cortex::metrics::NativeOptions::default()),
        )
        .unwrap();
    let server = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let target = server.local_addr();
    let (native_prom, native_addr) = start(
        &binary,
        target,
        "native",
        &["--enable-feature=native-histograms"],
    )
    .await;
    let (classic_prom, classic_addr) = start(&binary, target, "classic", &[]).await;
    // Both have scraped the empty histogram; now the observations, log-
    // uniform from 1 ms to 1 s.
    let mut rng = fastrand::Rng::with_seed(42);
    let mut values: Vec<f64> = (0..20_000)
        .map(|_| (rng.f64() * (1000f64).ln()).exp() / 1000.0)
        .collect();
    for &v in &values {
        latency.observe(v);
    }
    values.sort_by(f64::total_cmp);
    let truth = values[(values.len() as f64 * 0.99) as usize];
    let native_q = "histogram_quantile(0.99, rate(prom_native_latency_seconds[1m]))";
    let classic_q = "histogram_quantile(0.99, rate(prom_native_latency_seconds_bucket[1m]))";
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut native, mut classic) = (None, None);
    while (native.is_none() || classic.is_none()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        native = query(native_addr, native_q)
            .await
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite());
        classic = query(classic_addr, classic_q)
            .await
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite());
    }
    let log = std::fs::read_to_string(native_prom.dir.join("prometheus.log")).unwrap_or_default();
    let native = native.unwrap_or_else(|| panic!("no native quantile; Prometheus's log:\n{log}"));
    // Schema 3: neighbouring bounds are 2^(1/8) = 1.0905 apart, so the
    // quantile is within 9.05 % of the truth.
    let bound = 2f64.powf(1.0 / 8.0) - 1.0;
    assert!(
        (native - truth).abs() / truth <= bound,
        "native p99 {native} vs true {truth} (relative error {})",
        (native - truth).abs() / truth
    );
    let classic = classic.expect("a classic quantile");
    eprintln!("p99: true {truth}, native {native}, classic {classic}");
    // The classic estimate lies in the bucket holding the true p99: (0.5, 1].
    assert!(truth > 0.5 && truth <= 1.0, "{truth}");
    assert!(classic > 0.5 && classic <= 1.0, "classic p99 {classic}");
    // The native Prometheus stored the histogram as a native one (its
    // `_bucket` series are not there), the classic one as buckets.
    assert!(query(
        native_addr,
        "histogram_count(rate(prom_native_latency_seconds[1m])) > 0"
    )
    .await
    .is_some());
    assert_eq!(
        query(native_addr, "count(prom_native_latency_seconds_bucket)").await,
        None
    );
    assert!(
        query(classic_addr, "count(prom_native_latency_seconds_bucket)")
            .await
            .is_some()
    );
    drop((native_prom, classic_prom));
    server.shutdown(Duration::from_secs(1)).await;
}
