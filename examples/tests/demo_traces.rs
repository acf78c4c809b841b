//! The demo sends traces to a collector named only by the standard
//! OpenTelemetry variables: no code change.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cortex_tests::{otlp_validate, raw, Verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_exports_to_the_endpoint_in_the_environment() {
    // A collector stand-in on a loopback port: records each body, answers 200.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        seen.lock().unwrap().push(body[..len].to_owned());
                        break;
                    }
                }
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    // This test binary is the only user of these variables.
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    std::env::set_var("OTEL_SERVICE_NAME", "demo-under-test");
    std::env::set_var("OTEL_TRACES_SAMPLER", "parentbased_always_on");
    let tracer = cortex_examples::install_tracing().unwrap();
    let server = cortex_examples::start("127.0.0.1:0").await.unwrap();
    let caller = "00-11112222333344445555666677778888-1234567890abcdef-01";
    let r = raw::get(
        server.local_addr(),
        "/orders/42",
        &[&format!("traceparent: {caller}")],
    )
    .await;
    assert_eq!(r.status, 200);
    server.shutdown(std::time::Duration::from_secs(1)).await;
    tracer.shutdown().await;

    let bodies = bodies.lock().unwrap().clone();
    let all = bodies.join("\n");
    assert!(all.contains(r#""stringValue":"demo-under-test""#), "{all}");
    assert!(all.contains(r#""name":"GET /orders/{id}""#), "{all}");
    assert!(
        all.contains(r#""name":"cortex_examples::find_order""#),
        "{all}"
    );
    assert!(all.contains(r#""traceId":"11112222333344445555666677778888""#));
    assert!(all.contains(r#""parentSpanId":"1234567890abcdef""#));
    assert!(
        all.contains(r#"{"key":"order.id","value":{"stringValue":"42"}}"#),
        "{all}"
    );
    match otlp_validate(&bodies) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("{why}"),
    }
}
