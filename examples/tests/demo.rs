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

/// The demo's downstream call: told to fail, its `inventory` breaker opens
/// (seen in `/cortex/circuitbreakers`, `/metrics` and the events), and an
/// operator forces it closed through the admin API once it is healed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_breaker_opens_and_is_forced_closed() {
    use cortex_tests::raw;
    let token = "demo-admin-token";
    let server = cortex::http::Admin::new()
        .token(Some(token))
        .mount(cortex_examples::routes().unwrap())
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let at = server.local_addr();
    let r = raw::get(at, "/inventory/coffee", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "{\"item\":\"coffee\",\"in_stock\":16}\n")
    );
    let r = raw::request(at, "POST", "/inventory/fail", &[], "").await;
    assert_eq!(r.status, 200);
    // Two attempts per request, each a call in the window (which holds
    // the success above): the first request fails twice (3 calls, too few
    // to judge); the second request's first attempt makes 3 failures in 4
    // calls (75 %), the breaker opens and rejects its second attempt.
    let r = raw::get(at, "/inventory/coffee", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "the inventory service is unavailable\n")
    );
    let r = raw::get(at, "/inventory/coffee", &[]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.body
            .starts_with("circuit breaker `inventory` is open; it lets a trial call through in "),
        "{}",
        r.body
    );
    let r = raw::get(at, "/cortex/circuitbreakers/inventory", &[]).await;
    assert!(
        r.body.starts_with(r#"{"name":"inventory","state":"OPEN","failure_rate":75.0,"slow_call_rate":0.0,"buffered_calls":4,"failed_calls":3,"slow_calls":0,"not_permitted_calls":1,"#),
        "{}",
        r.body
    );
    let metrics = raw::get(at, "/metrics", &[]).await.body;
    assert!(
        metrics.contains("cortex_circuit_breaker_state{name=\"inventory\",state=\"open\"} 1\n"),
        "{metrics}"
    );
    let events = raw::get(
        at,
        "/cortex/events?name=inventory&kind=STATE_TRANSITION",
        &[],
    )
    .await;
    assert!(
        events.body.contains(r#""message":"CLOSED -> OPEN""#),
        "{}",
        events.body
    );
    // A failure is kept with the error's message.
    let errors = raw::get(
        at,
        "/cortex/events?policy=circuit_breaker&name=inventory&kind=ERROR&limit=1",
        &[],
    )
    .await;
    assert!(
        errors.body.contains(r#""kind":"ERROR","#)
            && errors
                .body
                .contains(r#""message":"the inventory service is unavailable"}"#),
        "{}",
        errors.body
    );

    raw::request(at, "POST", "/inventory/heal", &[], "").await;
    let path = "/cortex/circuitbreakers/inventory";
    let r = raw::request(at, "POST", path, &[], r#"{"state":"CLOSED"}"#).await;
    assert_eq!(r.status, 401, "a write without the token");
    let auth = format!("Authorization: Bearer {token}");
    let r = raw::request(at, "POST", path, &[&auth], r#"{"state":"CLOSED"}"#).await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .starts_with(r#"{"name":"inventory","state":"CLOSED","#),
        "{}",
        r.body
    );
    let r = raw::get(at, "/inventory/coffee", &[]).await;
    assert_eq!(r.status, 200);
    server.shutdown(Duration::from_secs(1)).await;
}

/// A bad override stops the demo with the place of the value and exit
/// code 2.
#[test]
fn the_demo_refuses_a_bad_configuration() {
    // `cargo test` builds the examples beside the test binaries.
    let exe = std::env::current_exe().unwrap();
    let demo = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/demo");
    if !demo.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is not built",
            demo.display()
        );
        eprintln!("skipping: {} is not built", demo.display());
        return;
    }
    let out = Command::new(&demo)
        .env("CORTEX_ADDR", "127.0.0.1:0")
        .env("CORTEX_CIRCUIT_BREAKER__INVENTORY__FAILURE_RATE", "500")
        .env("CORTEX_RETRY__INVENTRY__MAX", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.ends_with(
            "configuration refused:\n\
             CORTEX_CIRCUIT_BREAKER__INVENTORY__FAILURE_RATE: circuit_breaker.inventory.failure_rate: 500 is out of range for `failure_rate`\n\
             CORTEX_RETRY__INVENTRY__MAX: retry.inventry: no retry is named `inventry`; did you mean `inventory`?\n"
        ),
        "{stderr}"
    );
}
