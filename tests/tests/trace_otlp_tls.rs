//! OTLP to an `https://` endpoint: a loopback TLS receiver with a
//! certificate from a private CA, trusted through
//! `OTEL_EXPORTER_OTLP_[METRICS_]CERTIFICATE`, for spans and metrics;
//! refused when the CA is not trusted.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use cortex::trace::{ExportError, OtlpExporter, OtlpOptions, SpanExporter, Tracer};
use cortex_tests::spans::one_span;

/// A TLS receiver for `localhost`: records each request's head, answers 200.
fn tls_receiver() -> (u16, String, Arc<Mutex<Vec<String>>>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let ca_pem = cert.cert.pem();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der], key)
    .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Ok(conn) = rustls::ServerConnection::new(Arc::clone(&config)) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            loop {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                let text = String::from_utf8_lossy(&buf);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")?
                                .trim()
                                .parse()
                                .ok()
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        seen.lock().unwrap().push(head.to_owned());
                        let _ = tls.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                        );
                        let _ = tls.flush();
                        tls.conn.send_close_notify();
                        let _ = tls.flush();
                        break;
                    }
                }
            }
        }
    });
    (port, ca_pem, heads)
}

#[test]
fn spans_go_to_an_https_endpoint_with_a_private_ca() {
    let (port, ca_pem, heads) = tls_receiver();
    let dir = std::env::temp_dir().join(format!("cortex-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let env = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://localhost:{port}"),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca_file.to_string_lossy().into_owned(),
        ),
    ];
    let tracer = Tracer::builder()
        .from_vars(cortex_tests::vars(&env))
        .unwrap()
        .build();
    tracer.start("over tls").end();
    assert!(tracer.force_flush());
    let got = heads.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("POST /v1/traces HTTP/1.1"));
    assert!(got[0].contains(&format!("Host: localhost:{port}")));

    // Without the CA, the certificate is refused: no request is made.
    let mut untrusted = OtlpExporter::new(
        OtlpOptions::new(&format!("https://localhost:{port}"))
            .unwrap()
            .retries(
                1,
                std::time::Duration::from_millis(1),
                std::time::Duration::from_millis(1),
            ),
    );
    match untrusted.export(&one_span()) {
        Err(ExportError::GaveUp { last, .. }) => {
            assert!(
                last.to_lowercase().contains("certificate") || last.contains("no response"),
                "{last}"
            )
        }
        other => panic!("an untrusted certificate must fail, got {other:?}"),
    }
    assert_eq!(heads.lock().unwrap().len(), 1);
    assert_eq!(
        OtlpOptions::new("https://collector.example").unwrap().url(),
        "https://collector.example:443/v1/traces"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_go_to_an_https_endpoint_with_a_private_ca() {
    let (port, ca_pem, heads) = tls_receiver();
    let dir = std::env::temp_dir().join(format!("cortex-tls-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let env = [
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("https://localhost:{port}/v1/metrics"),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
            ca_file.to_string_lossy().into_owned(),
        ),
    ];
    let registry: &'static cortex::metrics::Registry =
        Box::leak(Box::new(cortex::metrics::Registry::new()));
    registry.counter("pushed_total", "").unwrap().inc();
    let exporter = cortex::metrics::OtlpMetricsExporter::from_vars(cortex_tests::vars(&env))
        .unwrap()
        .unwrap()
        .registry(registry)
        .start();
    exporter.shutdown().unwrap();
    let got = heads.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("POST /v1/metrics HTTP/1.1"),
        "{}",
        got[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
