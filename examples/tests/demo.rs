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
