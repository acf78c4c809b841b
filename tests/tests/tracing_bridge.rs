//! Spans of the `tracing` crate inside Cortex's traces (the `TracingLayer`
//! bridge): nesting both ways, across `.await` on a multi-threaded
//! runtime, fields as attributes, events as span events.

use std::sync::Once;
use std::time::Duration;

use cortex::tower::ObserveLayer;
use cortex::trace::{SpanData, SpanKind, Status, Value};
use cortex_tests::spans::{in_trace, installed};
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Every log line written so far, as the JSON formatter wrote them.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Logs;

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bridge() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        installed();
        let subscriber = tracing_subscriber::registry()
            .with(cortex::trace::TracingLayer::global())
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(cortex::trace::JsonLines)
                    .with_writer(|| Logs),
            );
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
    });
}

fn log_lines() -> Vec<serde_json::Value> {
    String::from_utf8(LOGS.lock().unwrap().clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no {name:?} in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

#[cortex::traced]
async fn innermost() -> u32 {
    tokio::task::yield_now().await;
    7
}

async fn query() -> u32 {
    tokio::task::yield_now().await;
    let n = innermost().await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    tracing::info!(rows = n, "query done");
    tracing::debug!("not kept: below INFO");
    n
}

#[cortex::traced]
async fn outer() -> u32 {
    let span = tracing::info_span!(
        "db query",
        db.system = "postgresql",
        db.rows = tracing::field::Empty
    );
    let n = query().instrument(span.clone()).await;
    span.record("db.rows", n);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_and_cortex_spans_nest_both_ways_across_await() {
    bridge();
    let (tracer, exporter) = installed();
    let root = tracer.start("bridge root");
    let trace_id = root.context().trace_id().unwrap();
    let spawned = {
        let _in = root.enter();
        cortex::trace::spawn(async { outer().await })
    };
    assert_eq!(spawned.await.unwrap(), 7);
    drop(root);
    assert!(tracer.force_flush());
    let spans: Vec<SpanData> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let root = named(&spans, "bridge root");
    let outer = named(&spans, "tracing_bridge::outer");
    let query = named(&spans, "db query");
    let innermost = named(&spans, "tracing_bridge::innermost");
    assert_eq!(outer.parent_span_id, Some(root.span_id));
    assert_eq!(
        query.parent_span_id,
        Some(outer.span_id),
        "a tracing span under a Cortex span"
    );
    assert_eq!(
        innermost.parent_span_id,
        Some(query.span_id),
        "a Cortex span under a tracing span"
    );
    assert_eq!(query.kind, SpanKind::Internal);
    assert_eq!(
        query.attribute("db.system"),
        Some(&Value::Str("postgresql".into()))
    );
    assert_eq!(
        query.attribute("db.rows"),
        Some(&Value::I64(7)),
        "recorded after opening"
    );
    assert_eq!(query.events.len(), 1, "{:?}", query.events);
    assert_eq!(query.events[0].name, "query done");
    assert!(query.events[0]
        .attributes
        .iter()
        .any(|kv| kv.key == "rows" && kv.value == Value::I64(7)));
    assert!(query.duration() >= Duration::from_millis(2));
}

#[test]
fn an_error_event_fails_its_span_and_an_explicit_parent_is_followed() {
    bridge();
    let (root, spans) = in_trace(|| {
        let parent = tracing::info_span!("batch");
        let child = tracing::info_span!(parent: &parent, "item", id = 3);
        let _in = child.enter();
        tracing::error!(reason = "checksum", "item rejected");
    });
    let batch = named(&spans, "batch");
    let item = named(&spans, "item");
    assert_eq!(batch.parent_span_id, Some(root.span_id));
    assert_eq!(item.parent_span_id, Some(batch.span_id));
    assert_eq!(item.status, Status::Error("item rejected".into()));
    assert_eq!(item.events[0].name, "item rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracing_span_in_a_handler_nests_under_the_server_span() {
    bridge();
    let (tracer, exporter) = installed();
    let service = ServiceBuilder::new()
        .layer(ObserveLayer::new().route_with(|_, _, _| Some("/bridge".into())))
        .service(tower::service_fn(|_req: http::Request<()>| async {
            async {
                tokio::task::yield_now().await;
            }
            .instrument(tracing::info_span!("load order"))
            .await;
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }));
    let trace = "5bf92f3577b34da6a3ce929d0e0e4736";
    let request = http::Request::get("/bridge")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(())
        .unwrap();
    service.oneshot(request).await.unwrap();
    assert!(tracer.force_flush());
    let spans: Vec<SpanData> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id.to_hex() == trace)
        .collect();
    let server = named(&spans, "GET /bridge");
    let load = named(&spans, "load order");
    assert_eq!(load.parent_span_id, Some(server.span_id));
}

#[test]
fn log_lines_carry_the_ids_of_their_span() {
    bridge();
    let (root, spans) = in_trace(|| {
        tracing::warn!(order = 7, "card declined");
        let inner = tracing::info_span!("retrying");
        let _in = inner.enter();
        tracing::info!("second try");
    });
    let retrying = named(&spans, "retrying");
    let lines = log_lines();
    let line = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
            .clone()
    };
    let declined = line("card declined");
    assert_eq!(declined["level"], "WARN");
    assert_eq!(declined["fields"]["order"], 7);
    assert_eq!(declined["trace_id"], root.trace_id.to_hex());
    assert_eq!(declined["span_id"], root.span_id.to_hex());
    let second = line("second try");
    assert_eq!(
        second["span_id"],
        retrying.span_id.to_hex(),
        "the tracing span's own id"
    );
    assert!(second["timestamp"].as_str().unwrap().ends_with('Z'));
    // Outside any span: no ids.
    tracing::info!("between traces");
    let between = log_lines()
        .into_iter()
        .find(|l| l["message"] == "between traces")
        .unwrap();
    assert!(between.get("trace_id").is_none());
}
