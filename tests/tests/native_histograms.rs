//! Native histograms: buckets as Prometheus defines them, in the protobuf
//! exposition (decoded with the client_model messages), negotiated by the
//! admin endpoint, exact under threads, allocation-free once a bucket
//! exists, bounded by halving the resolution, and pushed over OTLP as
//! exponential histograms.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cortex::metrics::{Buckets, Format, NativeOptions, OtlpMetricsExporter, Registry};
use cortex::trace::{OtlpOptions, Protocol};
use cortex_tests::prometheus_model::{families, Histogram, MetricFamily, MetricType};
use cortex_tests::receiver::Receiver;

/// Counts this thread's allocations.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// The bucket of `v` at `schema` by definition: the smallest `k` with
/// `v <= 2^(k / 2^schema)`.
fn expected_key(v: f64, schema: i32) -> i32 {
    let n = 2f64.powi(schema);
    let mut k = (v.log2() * n).ceil() as i32;
    while 2f64.powf(f64::from(k - 1) / n) >= v {
        k -= 1;
    }
    while 2f64.powf(f64::from(k) / n) < v {
        k += 1;
    }
    k
}

/// `(index, count)` from spans and deltas.
fn buckets(
    spans: &[cortex_tests::prometheus_model::BucketSpan],
    deltas: &[i64],
) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let (mut index, mut count, mut d) = (0i32, 0i64, deltas.iter());
    for span in spans {
        // The first offset is an index, the next ones gaps after the
        // previous span: both are added to where the last span ended.
        index += span.offset;
        for _ in 0..span.length {
            count += d.next().expect("a delta per bucket");
            out.push((index, count as u64));
            index += 1;
        }
    }
    out
}

fn family<'a>(all: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
    all.iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn histogram(all: &[MetricFamily], name: &str) -> Histogram {
    family(all, name).metric[0]
        .histogram
        .clone()
        .expect("a histogram")
}

#[test]
fn the_protobuf_exposition_carries_every_kind() {
    let registry = Registry::new();
    registry
        .counter_family("jobs_total", "Jobs.", &["queue"])
        .unwrap()
        .with_labels(&["fast"])
        .unwrap()
        .inc_by(3);
    registry.gauge("depth", "Depth.").unwrap().set(-2.5);
    let classic = registry
        .histogram(
            "classic_seconds",
            "Classic.",
            Buckets::new([0.1, 1.0]).unwrap(),
        )
        .unwrap();
    let native = registry
        .histogram(
            "native_seconds",
            "Native.",
            Buckets::new([0.1, 1.0])
                .unwrap()
                .with_native(NativeOptions::default()),
        )
        .unwrap();
    let values = [0.001, 0.0011, 0.5, 0.5, 1.0, 3.0, 0.0];
    for v in values {
        classic.observe(v);
        native.observe(v);
    }
    let all = families(&registry.encode_protobuf());
    let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        ["classic_seconds", "depth", "jobs_total", "native_seconds"]
    );

    let jobs = family(&all, "jobs_total");
    assert_eq!(jobs.r#type, MetricType::Counter as i32);
    assert_eq!(jobs.help, "Jobs.");
    assert_eq!(jobs.metric[0].label[0].name, "queue");
    assert_eq!(jobs.metric[0].label[0].value, "fast");
    assert_eq!(jobs.metric[0].counter.as_ref().unwrap().value, 3.0);
    let depth = family(&all, "depth");
    assert_eq!(depth.r#type, MetricType::Gauge as i32);
    assert_eq!(depth.metric[0].gauge.as_ref().unwrap().value, -2.5);

    let c = histogram(&all, "classic_seconds");
    assert_eq!(
        family(&all, "classic_seconds").r#type,
        MetricType::Histogram as i32
    );
    assert_eq!(c.sample_count, 7);
    assert!((c.sample_sum - 5.0021).abs() < 1e-9);
    let bounds: Vec<(f64, u64)> = c
        .bucket
        .iter()
        .map(|b| (b.upper_bound, b.cumulative_count))
        .collect();
    assert_eq!(bounds, [(0.1, 3), (1.0, 6)], "+Inf is the sample count");
    assert!(
        c.positive_span.is_empty() && c.schema == 0,
        "no native part"
    );

    let n = histogram(&all, "native_seconds");
    assert_eq!(n.schema, 3);
    assert_eq!(n.zero_threshold, 2f64.powi(-128));
    assert_eq!(n.zero_count, 1);
    assert_eq!(n.sample_count, 7);
    assert_eq!(n.bucket.len(), 2, "the classic buckets too");
    let mut want: Vec<(i32, u64)> = Vec::new();
    for v in values.iter().filter(|&&v| v > 0.0) {
        let k = expected_key(*v, 3);
        match want.iter_mut().find(|(i, _)| *i == k) {
            Some(b) => b.1 += 1,
            None => want.push((k, 1)),
        }
    }
    want.sort();
    assert_eq!(buckets(&n.positive_span, &n.positive_delta), want);
    assert!(n.negative_span.is_empty());
}

#[test]
fn an_empty_native_histogram_is_still_native_and_negative_values_count() {
    let registry = Registry::new();
    let h = registry
        .histogram("empty_seconds", "", Buckets::native())
        .unwrap();
    let n = histogram(&families(&registry.encode_protobuf()), "empty_seconds");
    assert_eq!(n.sample_count, 0);
    assert_eq!(n.positive_span.len(), 1, "an empty span marks it native");
    assert_eq!(
        (n.positive_span[0].offset, n.positive_span[0].length),
        (0, 0)
    );
    h.observe(-4.0);
    h.observe(-4.0);
    h.observe(-0.3);
    let n = histogram(&families(&registry.encode_protobuf()), "empty_seconds");
    assert_eq!(
        buckets(&n.negative_span, &n.negative_delta),
        [(expected_key(0.3, 3), 1), (expected_key(4.0, 3), 2)]
    );
    // The text formats show what a native-only histogram has there.
    assert_eq!(
        registry.encode(Format::PrometheusText),
        "# TYPE empty_seconds histogram\nempty_seconds_bucket{le=\"+Inf\"} 3\nempty_seconds_sum -8.3\nempty_seconds_count 3\n"
    );
}

#[test]
fn past_max_buckets_the_resolution_halves_and_counts_stay_exact() {
    let registry = Registry::new();
    let h = registry
        .histogram(
            "wide_seconds",
            "",
            Buckets::native_with(NativeOptions::new().max_buckets(10).unwrap()),
        )
        .unwrap();
    for i in 0..1000 {
        h.observe(1e-6 * 1.02f64.powi(i));
    }
    let n = histogram(&families(&registry.encode_protobuf()), "wide_seconds");
    let got = buckets(&n.positive_span, &n.positive_delta);
    assert!(got.len() <= 10, "{} buckets", got.len());
    assert!(n.schema < 3 && n.schema >= -4, "schema {}", n.schema);
    assert_eq!(got.iter().map(|b| b.1).sum::<u64>(), 1000);
    assert_eq!(n.sample_count, 1000);
    // Each value is in the bucket its schema says.
    for i in [0, 500, 999] {
        let k = expected_key(1e-6 * 1.02f64.powi(i), n.schema);
        assert!(got.iter().any(|b| b.0 == k), "{k} not in {got:?}");
    }
}

#[test]
fn observing_is_exact_under_threads_and_allocates_only_for_new_pages() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let h = registry
        .histogram("busy_seconds", "", Buckets::native())
        .unwrap();
    h.observe(0.25);
    let before = allocations();
    for _ in 0..1000 {
        h.observe(0.25);
        h.observe(0.26);
    }
    assert_eq!(
        allocations(),
        before,
        "an existing bucket's page takes no allocation"
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = h.clone();
            std::thread::spawn(move || {
                for i in 0..50_000u32 {
                    h.observe(f64::from(i % 1000 + 1) * 1e-3 * f64::from(t + 1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n = histogram(&families(&registry.encode_protobuf()), "busy_seconds");
    let total: u64 = buckets(&n.positive_span, &n.positive_delta)
        .iter()
        .map(|b| b.1)
        .sum();
    assert_eq!(total, 2001 + 200_000);
    assert_eq!(n.sample_count, 2001 + 200_000);
}

#[cortex::timed(native)]
fn native_only_function() {}

#[cortex::counted]
#[cortex::timed(native, buckets = [0.5])]
fn fused_native_function() -> Result<(), String> {
    Ok(())
}

#[test]
fn annotated_functions_keep_native_buckets() {
    native_only_function();
    fused_native_function().unwrap();
    fused_native_function().unwrap();
    let all = families(&cortex::metrics::global().encode_protobuf());
    let durations = family(&all, "cortex_function_duration_seconds");
    let by_function = |name: &str| {
        durations
            .metric
            .iter()
            .find(|m| {
                m.label
                    .iter()
                    .any(|l| l.name == "function" && l.value == name)
            })
            .and_then(|m| m.histogram.clone())
            .unwrap_or_else(|| panic!("no series of {name}"))
    };
    let only = by_function("native_only_function");
    assert_eq!(
        (only.schema, only.sample_count, only.bucket.len()),
        (3, 1, 0)
    );
    let fused = by_function("fused_native_function");
    assert_eq!(
        (fused.schema, fused.sample_count, fused.bucket.len()),
        (3, 2, 1)
    );
    assert_eq!(fused.bucket[0].cumulative_count, 2);
    let text = cortex::metrics::global().encode(Format::PrometheusText);
    assert!(text.contains(
        "cortex_function_duration_seconds_bucket{function=\"native_only_function\",module=\"native_histograms\",le=\"+Inf\"} 1\n"
    ), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_endpoint_answers_prometheus_in_protobuf() {
    native_only_function();
    let server = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
    let header = format!("Accept: {accept}");
    let r = cortex_tests::raw::get(server.local_addr(), "/metrics", &[&header]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some(cortex::metrics::PROTOBUF_CONTENT_TYPE)
    );
    let all = families(&r.bytes);
    assert!(all
        .iter()
        .any(|f| f.name == "cortex_function_duration_seconds"));
    let plain = cortex_tests::raw::get(server.local_addr(), "/metrics", &[]).await;
    assert!(plain
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    server.shutdown(std::time::Duration::from_secs(1)).await;
}

#[test]
fn native_buckets_push_as_otlp_exponential_histograms() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let h = registry
        .histogram("exp_seconds", "Exp.", Buckets::native())
        .unwrap();
    for v in [0.5, 1.0, 1.5, 3.0, 0.0] {
        h.observe(v);
    }
    let json_receiver = Receiver::start(&[]);
    let proto_receiver = Receiver::start(&[]);
    let options = |r: &Receiver| OtlpOptions::metrics(&r.url()).unwrap().service_name("exp");
    OtlpMetricsExporter::builder(options(&json_receiver))
        .registry(registry)
        .start()
        .shutdown()
        .unwrap();
    OtlpMetricsExporter::builder(options(&proto_receiver).protocol(Protocol::HttpProtobuf))
        .registry(registry)
        .start()
        .shutdown()
        .unwrap();
    let bodies = json_receiver.bodies();
    cortex_tests::otlp_validate(&bodies).assert_ok();
    let body: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let metric = &body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
    assert_eq!(metric["name"], "exp_seconds");
    let point = &metric["exponentialHistogram"]["dataPoints"][0];
    assert_eq!(metric["exponentialHistogram"]["aggregationTemporality"], 2);
    assert_eq!(point["scale"], 3);
    assert_eq!(point["count"], "5");
    assert_eq!(point["zeroCount"], "1");
    assert_eq!(point["sum"], 6.0);
    // OpenTelemetry's index i is (base^i, base^(i+1)]: Prometheus's i + 1.
    let first = expected_key(0.5, 3) - 1;
    assert_eq!(point["positive"]["offset"], first);
    let counts: Vec<u64> = point["positive"]["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 4);
    for v in [0.5, 1.0, 1.5, 3.0] {
        let i = (expected_key(v, 3) - 1 - first) as usize;
        assert!(counts[i] >= 1, "{v} in bucket {i} of {counts:?}");
    }
    cortex_tests::otlp_protobuf_matches_json(&proto_receiver.requests()[0].raw_body, &bodies[0])
        .assert_ok();
}
