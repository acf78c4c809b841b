//! Pushing metrics over OTLP/HTTP to a loopback receiver: the bodies pass
//! the official proto (JSON and protobuf), the values are exact, pushes run
//! on the interval and once more at shutdown, delta temporality sends
//! changes, failures are retried like span export, and the standard
//! variables configure it.

use std::sync::LazyLock;
use std::time::Duration;

use cortex::metrics::{Buckets, OtlpMetricsExporter, Registry, Temporality};
use cortex::trace::{ConfigError, ExportError, OtlpOptions, Protocol};
use cortex_tests::receiver::Receiver;
use cortex_tests::{otlp_protobuf_matches_json, otlp_validate, until, vars};
use serde_json::Value;

/// A registry with one of each kind, leaked: the exporter pushes a
/// `&'static Registry`.
fn registry() -> &'static Registry {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let jobs = registry
        .counter_family("jobs_total", "Jobs done.", &["queue"])
        .unwrap();
    jobs.with_labels(&["fast"]).unwrap().inc_by(3);
    registry
        .counter("spent_total", "Money spent.")
        .unwrap()
        .inc_by_f64(2.5)
        .unwrap();
    registry
        .gauge("queue_depth", "Waiting jobs.")
        .unwrap()
        .set(7.0);
    let latency = registry
        .histogram(
            "job_duration_seconds",
            "Job time.",
            Buckets::new([0.1, 1.0]).unwrap(),
        )
        .unwrap();
    latency.observe(0.05);
    latency.observe(0.5);
    latency.observe(0.7);
    registry
}

fn options(receiver: &Receiver) -> OtlpOptions {
    OtlpOptions::metrics(&receiver.url())
        .unwrap()
        .service_name("shop")
        .retries(3, Duration::from_millis(5), Duration::from_millis(20))
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap()
}

fn metric<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {body}"))
}

#[test]
fn a_push_carries_every_kind_exactly() {
    let receiver = Receiver::start(&[]);
    let exporter = OtlpMetricsExporter::builder(options(&receiver))
        .registry(registry())
        .start();
    exporter.push().unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/metrics");
    assert!(
        requests[0]
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{}",
        requests[0].head
    );
    otlp_validate(&receiver.bodies()).assert_ok();
    let body = json(&requests[0].body);
    let resource = &body["resourceMetrics"][0]["resource"]["attributes"][0];
    assert_eq!(resource["key"], "service.name");
    assert_eq!(resource["value"]["stringValue"], "shop");
    assert_eq!(
        body["resourceMetrics"][0]["scopeMetrics"][0]["scope"]["name"],
        "cortex"
    );

    let jobs = metric(&body, "jobs");
    assert_eq!(jobs["description"], "Jobs done.");
    assert_eq!(jobs["sum"]["isMonotonic"], true);
    assert_eq!(jobs["sum"]["aggregationTemporality"], 2);
    let point = &jobs["sum"]["dataPoints"][0];
    assert_eq!(point["asInt"], "3");
    assert_eq!(
        point["attributes"],
        serde_json::json!([{"key": "queue", "value": {"stringValue": "fast"}}])
    );
    assert!(point["startTimeUnixNano"].as_str().unwrap() < point["timeUnixNano"].as_str().unwrap());
    assert_eq!(
        metric(&body, "spent")["sum"]["dataPoints"][0]["asDouble"],
        2.5
    );
    assert_eq!(
        metric(&body, "queue_depth")["gauge"]["dataPoints"][0]["asDouble"],
        7.0
    );

    let latency = metric(&body, "job_duration_seconds");
    assert_eq!(latency["unit"], "s");
    assert_eq!(latency["histogram"]["aggregationTemporality"], 2);
    let point = &latency["histogram"]["dataPoints"][0];
    assert_eq!(point["count"], "3");
    assert_eq!(point["sum"], 1.25);
    assert_eq!(point["bucketCounts"], serde_json::json!(["1", "2", "0"]));
    assert_eq!(point["explicitBounds"], serde_json::json!([0.1, 1.0]));
    // A family without series (Cortex's own dropped-series counter, which
    // every registry has) is left out, as the text exposition leaves it.
    assert_eq!(
        body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    exporter.shutdown().unwrap();
}

#[test]
fn protobuf_bodies_say_what_json_bodies_say() {
    let registry = registry();
    let json_receiver = Receiver::start(&[]);
    let proto_receiver = Receiver::start(&[]);
    let as_json = OtlpMetricsExporter::builder(options(&json_receiver))
        .registry(registry)
        .start();
    let as_proto =
        OtlpMetricsExporter::builder(options(&proto_receiver).protocol(Protocol::HttpProtobuf))
            .registry(registry)
            .start();
    as_json.push().unwrap();
    as_proto.push().unwrap();
    let sent = &proto_receiver.requests()[0];
    assert!(
        sent.head
            .to_ascii_lowercase()
            .contains("content-type: application/x-protobuf"),
        "{}",
        sent.head
    );
    otlp_protobuf_matches_json(&sent.raw_body, &json_receiver.bodies()[0]).assert_ok();
}

#[test]
fn pushes_run_on_the_interval_and_once_more_when_dropped() {
    let receiver = Receiver::start(&[]);
    let registry = registry();
    let exporter = OtlpMetricsExporter::builder(options(&receiver))
        .registry(registry)
        .interval(Duration::from_millis(30))
        .start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(until("two scheduled pushes", || {
        receiver.requests().len() >= 2
    }));
    let counter = registry.counter("late_total", "Counted after.").unwrap();
    counter.inc_by(42);
    drop(exporter);
    let last = json(&receiver.bodies().last().unwrap().clone());
    assert_eq!(metric(&last, "late")["sum"]["dataPoints"][0]["asInt"], "42");
    let pushes = receiver.requests().len();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(receiver.requests().len(), pushes, "no push after the drop");
}

#[test]
fn delta_temporality_sends_what_changed_since_the_last_push() {
    let receiver = Receiver::start(&[]);
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let counter = registry.counter("calls_total", "Calls.").unwrap();
    let latency = registry
        .histogram("call_seconds", "", Buckets::new([1.0]).unwrap())
        .unwrap();
    counter.inc_by(5);
    latency.observe(0.5);
    let exporter = OtlpMetricsExporter::builder(options(&receiver))
        .registry(registry)
        .temporality(Temporality::Delta)
        .start();
    exporter.push().unwrap();
    counter.inc_by(2);
    latency.observe(3.0);
    exporter.push().unwrap();
    exporter.push().unwrap();
    otlp_validate(&receiver.bodies()).assert_ok();
    let bodies: Vec<Value> = receiver.bodies().iter().map(|b| json(b)).collect();
    let calls = |i: usize| metric(&bodies[i], "calls")["sum"].clone();
    assert_eq!(calls(0)["aggregationTemporality"], 1);
    assert_eq!(calls(0)["dataPoints"][0]["asInt"], "5");
    assert_eq!(calls(1)["dataPoints"][0]["asInt"], "2");
    assert_eq!(calls(2)["dataPoints"][0]["asInt"], "0");
    // Each delta starts where the previous one ended.
    assert_eq!(
        calls(1)["dataPoints"][0]["startTimeUnixNano"],
        calls(0)["dataPoints"][0]["timeUnixNano"]
    );
    let h = metric(&bodies[1], "call_seconds")["histogram"]["dataPoints"][0].clone();
    assert_eq!(h["count"], "1");
    assert_eq!(h["sum"], 3.0);
    assert_eq!(h["bucketCounts"], serde_json::json!(["0", "1"]));
}

#[test]
fn failures_are_retried_and_refusals_reported() {
    // 503 twice, then the default 200.
    let receiver = Receiver::start(&[503, 503]);
    let exporter = OtlpMetricsExporter::builder(options(&receiver))
        .registry(registry())
        .start();
    exporter.push().unwrap();
    assert_eq!(receiver.requests().len(), 3);

    let refusing = Receiver::start(&[400]);
    let exporter = OtlpMetricsExporter::builder(options(&refusing))
        .registry(registry())
        .start();
    let err = exporter.shutdown().unwrap_err();
    assert!(
        matches!(err, ExportError::Rejected { status: 400, .. }),
        "{err}"
    );
    assert_eq!(refusing.requests().len(), 1, "a 400 is not retried");
}

#[test]
fn histogram_exemplars_name_the_trace() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let latency = registry
        .histogram("traced_seconds", "", Buckets::new([1.0]).unwrap())
        .unwrap();
    let (root, _) =
        cortex_tests::spans::in_trace(|| latency.observe_duration(Duration::from_millis(500)));
    let trace_id = root.trace_id.to_hex();
    let receiver = Receiver::start(&[]);
    let exporter = OtlpMetricsExporter::builder(options(&receiver))
        .registry(registry)
        .start();
    exporter.push().unwrap();
    otlp_validate(&receiver.bodies()).assert_ok();
    let body = json(&receiver.bodies()[0]);
    let point = &metric(&body, "traced_seconds")["histogram"]["dataPoints"][0];
    assert_eq!(point["exemplars"][0]["traceId"], trace_id.as_str());
    assert_eq!(point["exemplars"][0]["asDouble"], 0.5);
}

static BASE: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    vec![(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://collector:4318".into(),
    )]
});

#[test]
fn the_standard_variables_configure_it() {
    assert!(OtlpMetricsExporter::from_vars(vars::<String>(&[]))
        .unwrap()
        .is_none());
    let b = OtlpMetricsExporter::from_vars(vars(&BASE))
        .unwrap()
        .unwrap();
    assert!(format!("{b:?}").contains("path: \"/v1/metrics\""), "{b:?}");
    let b = OtlpMetricsExporter::from_vars(vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "http://metrics:9000/push",
        ),
        ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_SERVICE_NAME", "shop"),
    ]))
    .unwrap()
    .unwrap();
    let text = format!("{b:?}");
    for part in [
        "host: \"metrics\"",
        "port: 9000",
        "path: \"/push\"",
        "interval: 15s",
        "temporality: Delta",
        "protocol: HttpProtobuf",
        "service_name: \"shop\"",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
    let bad = |name: &'static str, value: &'static str| {
        let mut all: Vec<(&str, String)> = BASE.clone();
        all.push((name, value.into()));
        OtlpMetricsExporter::from_vars(vars(&all)).unwrap_err()
    };
    assert_eq!(
        bad("OTEL_METRIC_EXPORT_INTERVAL", "soon").to_string(),
        "OTEL_METRIC_EXPORT_INTERVAL=\"soon\": expected a number of milliseconds"
    );
    assert_eq!(
        bad("OTEL_METRIC_EXPORT_INTERVAL", "0").to_string(),
        "OTEL_METRIC_EXPORT_INTERVAL=\"0\": the interval must be above 0 milliseconds"
    );
    assert_eq!(
        bad("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "weekly").to_string(),
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=\"weekly\": expected cumulative, delta or lowmemory"
    );
    assert!(matches!(
        bad("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
        ConfigError::BadVariable {
            variable: "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
            ..
        }
    ));
    assert!(matches!(
        bad("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ConfigError::BadVariable {
            variable: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            ..
        }
    ));
}

#[test]
fn gzip_from_the_variables() {
    let receiver = Receiver::start(&[]);
    let exporter = OtlpMetricsExporter::from_vars(vars(&[
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("{}/v1/metrics", receiver.url()),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
    ]))
    .unwrap()
    .unwrap()
    .registry(registry())
    .start();
    exporter.push().unwrap();
    let sent = &receiver.requests()[0];
    assert!(sent
        .head
        .to_ascii_lowercase()
        .contains("content-encoding: gzip"));
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&sent.raw_body[..]),
        &mut text,
    )
    .unwrap();
    otlp_validate(&[text]).assert_ok();
}
