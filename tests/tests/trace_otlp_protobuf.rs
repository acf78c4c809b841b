//! OTLP over `http/protobuf`: the hand-written encoder against the official
//! proto (parsed by Python's protobuf), span for span the same as the JSON
//! encoding; and the exporter sending it (gzipped when asked).

use std::time::Duration;

use cortex::trace::ConfigError;
use cortex::trace::{
    encode_otlp_json, encode_otlp_protobuf, KeyValue, SpanData, SpanKind, Status, Tracer,
};
use cortex_tests::receiver::Receiver;
use cortex_tests::{otlp_protobuf_matches_json, Verdict};

fn spans() -> Vec<SpanData> {
    let memory = cortex::trace::InMemoryExporter::default();
    let tracer = Tracer::builder().exporter(memory.clone()).build();
    {
        let mut root = tracer
            .span("GET /orders/{id}")
            .kind(SpanKind::Server)
            .start();
        root.set_attribute("http.response.status_code", 200);
        root.set_attribute("ratio", 0.5);
        root.set_attribute("cached", false);
        root.set_attribute("text", "quote \" and ünïcode");
        root.set_attribute("negative", -7);
        let _in = root.enter();
        let mut child = tracer.start("load");
        child.add_event("checkpoint", vec![KeyValue::new("n", 4)]);
        child.set_status(Status::Error("disk full".into()));
        drop(child);
        tracer.start("ok").set_status(Status::Ok);
    }
    tracer.force_flush();
    memory.spans()
}

#[test]
fn the_protobuf_body_says_what_the_json_body_says() {
    let spans = spans();
    assert_eq!(spans.len(), 3);
    let proto = encode_otlp_protobuf("proto-test", &spans);
    let json = encode_otlp_json("proto-test", &spans);
    match otlp_protobuf_matches_json(&proto, &json) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("{why}"),
    }
}

#[test]
fn the_exporter_sends_gzipped_protobuf_when_the_variables_say_so() {
    use std::io::Read;
    let received = Receiver::replying("127.0.0.1:0", Vec::new()).unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", received.url()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_SERVICE_NAME", "proto-test".to_owned()),
    ];
    let tracer = Tracer::builder()
        .from_vars(cortex_tests::vars(&env))
        .unwrap()
        .batch_delay(Duration::from_secs(3600))
        .build();
    {
        let mut root = tracer
            .span("GET /orders/{id}")
            .kind(SpanKind::Server)
            .start();
        root.set_attribute("http.response.status_code", 200);
    }
    assert!(tracer.force_flush());
    let got = received.requests();
    assert_eq!(got.len(), 1);
    let head = got[0].head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(&got[0].raw_body[..])
        .read_to_end(&mut body)
        .expect("a gzip body");
    assert_eq!(body[0], 0x0a);
    assert!(body.windows(10).any(|w| w == b"proto-test"));
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
    ] {
        let env = [(variable, value.to_owned())];
        match Tracer::builder().from_vars(cortex_tests::vars(&env)) {
            Err(ConfigError::BadVariable { variable: v, .. }) => assert_eq!(v, variable),
            other => panic!("{variable}={value} accepted: {:?}", other.err()),
        }
    }
}
