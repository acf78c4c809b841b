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

fn bridge() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        installed();
        let subscriber = tracing_subscriber::registry().with(cortex::trace::TracingLayer::global());
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
    });
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
