//! The demo service answers `curl`, compressed when curl asks for it.

use std::process::Command;
use std::time::Duration;

fn curl(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("curl").args(args).output() {
        Ok(out) => Some(out),
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "curl is required under CI: {e}"
            );
            eprintln!("skipping: curl not available ({e})");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_compressed_against_the_demo() {
    let server = cortex_examples::start("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (base2, base3) = (base.clone(), base.clone());
    // curl blocks; run it off the runtime.
    let headers = tokio::task::spawn_blocking(move || {
        curl(&[
            "-s",
            "--compressed",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("{base2}/metrics"),
        ])
    })
    .await
    .unwrap();
    let Some(headers) = headers else { return };
    let headers = String::from_utf8_lossy(&headers.stdout).to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("content-encoding: br") || headers.contains("content-encoding: gzip"),
        "{headers}"
    );
    let body = tokio::task::spawn_blocking(move || {
        curl(&["-s", "--compressed", &format!("{base3}/metrics")])
    })
    .await
    .unwrap()
    .unwrap();
    let body = String::from_utf8(body.stdout).expect("curl decoded the body");
    assert!(
        body.contains("# TYPE cortex_function_calls_total counter"),
        "{body}"
    );
    let order = tokio::task::spawn_blocking(move || {
        curl(&["-s", "--compressed", &format!("{base}/orders/42")])
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&order.stdout),
        "{\"id\":42,\"status\":\"shipped\"}\n"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

/// `POST /transform` runs the body through the WebAssembly guest.
#[cfg(feature = "wasm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_runs_the_wasm_guest() {
    let server = cortex_examples::start("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/transform", server.local_addr());
    let out = tokio::task::spawn_blocking(move || {
        curl(&[
            "-s",
            "-w",
            "\n%{http_code}",
            "--data-binary",
            "card 4111-1111, cvv 123",
            &url,
        ])
    })
    .await
    .unwrap();
    let Some(out) = out else { return };
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out, "card ****-****, cvv ***\n200");
}

/// The demo's objective on `find_order`: served as JSON and as a rules file
/// promtool accepts, with its labels on the function's series, and the
/// demo's build in `cortex_build_info`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_its_objective_and_build() {
    let server = cortex_examples::start("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            tokio::task::spawn_blocking(move || curl(&["-s", "-i", &url]))
                .await
                .unwrap()
                .map(|out| String::from_utf8(out.stdout).unwrap())
        }
    };
    let Some(slo) = get("/cortex/slo").await else {
        return;
    };
    let (head, body) = slo.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert_eq!(
        body,
        r#"{"objectives":[{"name":"orders","success_rate":99.9,"latency":{"threshold_seconds":0.01,"percentile":99.0},"functions":[{"function":"find_order","module":"cortex_examples","calls_metric":"cortex_function_calls_total","duration_metric":"cortex_function_duration_seconds"}]}]}"#
    );
    let rules = get("/cortex/slo/rules").await.unwrap();
    let (head, body) = rules.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/yaml; charset=utf-8"),
        "{head}"
    );
    assert!(body.contains("  - name: cortex-slo-orders\n"), "{body}");
    cortex_tests::promtool_rules(body, None).assert_ok();

    get("/orders/42").await.unwrap();
    let metrics = get("/metrics").await.unwrap();
    assert!(
        metrics.contains(r#"cortex_function_calls_total{function="find_order",module="cortex_examples",result="ok",objective_name="orders",objective_percentile="99.9"} "#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"cortex_function_duration_seconds_bucket{function="find_order",module="cortex_examples",objective_name="orders",objective_percentile="99",objective_latency_threshold="0.01",le="0.01"} "#),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "service=\"cortex-examples\",version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE process_resident_memory_bytes gauge\n"));
    server.shutdown(Duration::from_secs(1)).await;
}
