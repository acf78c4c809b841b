//! The OTLP/HTTP JSON exporter against a receiver in the test, every body
//! checked against the official OpenTelemetry proto.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use cortex::trace::{
    ExportError, OtlpExporter, OtlpOptions, SpanExporter, SpanKind, Status, Tracer,
};
use cortex_tests::receiver::Receiver;
use cortex_tests::spans::one_span;
use cortex_tests::{otlp_validate, Verdict};

fn receiver(script: &[u16]) -> (SocketAddr, Receiver) {
    let r = Receiver::start(script);
    (r.addr, r)
}

fn exporter(addr: SocketAddr) -> OtlpExporter {
    OtlpExporter::new(
        OtlpOptions::new(&format!("http://{addr}"))
            .unwrap()
            .service_name("otlp-test")
            .retries(4, Duration::from_millis(1), Duration::from_millis(10)),
    )
}

fn assert_valid(bodies: &[String]) {
    match otlp_validate(bodies) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("otlp_validate refused a body: {why}\n{bodies:#?}"),
    }
}

#[test]
fn batches_are_posted_as_valid_otlp_json() {
    let (addr, received) = receiver(&[]);
    let tracer = Tracer::builder()
        .service_name("otlp-test")
        .exporter(exporter(addr))
        .max_batch(10)
        .batch_delay(Duration::from_secs(3600))
        .build();
    {
        let mut root = tracer
            .span("GET /orders/{id}")
            .kind(SpanKind::Server)
            .start();
        root.set_attribute("http.response.status_code", 200);
        root.set_attribute("ratio", 0.5);
        root.set_attribute("cached", false);
        root.set_attribute("weird", f64::NAN);
        root.set_attribute("text", "quote \" and newline \n and ünïcode");
        let _in = root.enter();
        for i in 0..24 {
            let mut s = tracer.start(format!("step {i}"));
            if i == 3 {
                let e = std::io::Error::other("disk full");
                s.record_exception(&e);
            }
            if i == 4 {
                s.set_status(Status::Ok);
                s.add_event("checkpoint", vec![cortex::trace::KeyValue::new("n", 4)]);
            }
        }
    }
    tracer.shutdown_blocking();
    let got = received.requests();
    assert_eq!(got.len(), 3, "25 spans in batches of at most 10");
    let mut spans = 0;
    let mut bodies = Vec::new();
    for r in &got {
        let (path, head, body) = (&r.path, &r.head, &r.body);
        assert_eq!(path, "/v1/traces");
        assert!(head
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        let rs = &json["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            serde_json::json!({"key": "service.name", "value": {"stringValue": "otlp-test"}})
        );
        let batch = rs["scopeSpans"][0]["spans"].as_array().unwrap();
        assert!(batch.len() <= 10);
        spans += batch.len();
        for s in batch {
            assert_eq!(s["traceId"].as_str().unwrap().len(), 32);
            assert!(s["startTimeUnixNano"].is_string(), "times are strings");
            assert!(s["kind"].is_u64(), "enums are integers");
        }
        bodies.push(body.clone());
    }
    assert_eq!(spans, 25);
    let all = bodies.join("\n");
    assert!(all.contains(r#""kind":2"#), "the server span");
    assert!(all.contains(r#""status":{"code":2,"message":"disk full"}"#));
    assert!(all.contains(r#""intValue":"200""#));
    assert!(all.contains(r#""doubleValue":"NaN""#));
    assert_valid(&bodies);
}

#[test]
fn retries_on_503_then_succeeds() {
    let (addr, received) = receiver(&[503, 503]);
    let mut e = exporter(addr);
    let spans = one_span();
    e.export(&spans).unwrap();
    let got = received.bodies();
    assert_eq!(got.len(), 3, "two refusals, then accepted");
    assert_valid(&[got[2].clone()]);
}

#[test]
fn retries_each_retryable_status_and_gives_up_at_the_limit() {
    let (addr, received) = receiver(&[429, 502, 504, 503, 503]);
    let mut e = exporter(addr);
    let err = e.export(&one_span()).unwrap_err();
    assert!(
        matches!(err, ExportError::GaveUp { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(received.requests().len(), 4);
}

#[test]
fn never_retries_a_400() {
    let (addr, received) = receiver(&[400]);
    let mut e = exporter(addr);
    let err = e.export(&one_span()).unwrap_err();
    assert!(
        matches!(err, ExportError::Rejected { status: 400, .. }),
        "{err}"
    );
    assert_eq!(received.requests().len(), 1);
}

#[test]
fn an_unreachable_receiver_is_an_error_not_a_hang() {
    // A port nobody listens on: bind, learn it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut e = OtlpExporter::new(
        OtlpOptions::new(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .retries(2, Duration::from_millis(1), Duration::from_millis(1)),
    );
    let err = e.export(&one_span()).unwrap_err();
    assert!(
        matches!(err, ExportError::GaveUp { attempts: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_flushes_what_is_queued() {
    let (addr, received) = receiver(&[]);
    let tracer = Tracer::builder()
        .exporter(exporter(addr))
        .batch_delay(Duration::from_secs(3600))
        .build();
    for i in 0..7 {
        tracer.start(format!("queued {i}")).end();
    }
    assert!(
        received.requests().is_empty(),
        "nothing sent before the delay"
    );
    tracer.shutdown().await;
    let got = received.bodies();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].matches("\"name\":\"queued").count(), 7);
}

#[test]
fn endpoints_are_checked() {
    assert_eq!(
        OtlpOptions::new("http://localhost:4318").unwrap().url(),
        "http://localhost:4318/v1/traces"
    );
    assert_eq!(
        OtlpOptions::new("http://collector/otel/").unwrap().url(),
        "http://collector:80/otel/v1/traces"
    );
    assert_eq!(
        OtlpOptions::with_traces_url("http://c:4318/custom")
            .unwrap()
            .url(),
        "http://c:4318/custom"
    );
    for bad in [
        "localhost:4318",
        "ftp://x",
        "http://",
        "http://host:port",
        "https://",
    ] {
        assert!(OtlpOptions::new(bad).is_err(), "accepted {bad}");
    }
}

#[tokio::test]
async fn the_service_name_is_exported_whichever_order_the_builder_is_called_in() {
    for name_first in [false, true] {
        let (addr, received) = receiver(&[]);
        let endpoint = format!("http://{addr}");
        let builder = Tracer::builder();
        let builder = if name_first {
            builder.service_name("billing").otlp(&endpoint).unwrap()
        } else {
            builder.otlp(&endpoint).unwrap().service_name("billing")
        };
        let tracer = builder.batch_delay(Duration::from_secs(3600)).build();
        tracer.start("one").end();
        tracer.shutdown().await;
        let bodies = received.bodies();
        assert_eq!(bodies.len(), 1);
        assert!(
            bodies[0].contains("\"stringValue\":\"billing\""),
            "name first: {name_first}: {}",
            bodies[0]
        );
        assert_valid(&bodies);
    }
}
