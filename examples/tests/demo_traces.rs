//! The demo sends traces to a collector named only by the standard
//! OpenTelemetry variables: no code change.

use cortex_tests::receiver::Receiver;
use cortex_tests::{otlp_validate, raw, Verdict};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_exports_to_the_endpoint_in_the_environment() {
    // A collector stand-in on a loopback port.
    let collector = Receiver::start(&[]);
    let endpoint = collector.url();
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

    let bodies = collector.bodies();
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
