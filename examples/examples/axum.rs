//! Cortex added to an axum service in a few lines: `ObserveLayer` on the
//! router (request metrics by route, a server span per request continuing
//! the caller's trace), a circuit breaker and `ClientLayer` around the call
//! to a downstream service, `#[traced]` functions, spans of the `tracing`
//! crate joined to the same trace, and Cortex's admin endpoints mounted
//! beside the routes.
//!
//! ```text
//! cargo run --example axum
//! ```
//!
//! It starts both services on loopback ports, sends them a few requests
//! (one with a `traceparent`), then prints the trace tree and the metrics
//! they produced.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use cortex::http::Admin;
use cortex::resilience::tower::{rejection_response, CircuitBreakerLayer};
use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig};
use cortex::tower::{ClientLayer, ObserveLayer};
use cortex::trace::{InMemoryExporter, SpanData, Tracer, TracingLayer};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Work inside the downstream service: a `#[traced]` function.
#[cortex::traced]
async fn count_stock(sku: &str) -> u32 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    sku.len() as u32 * 3
}

async fn inventory() -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route(
            "/stock/{sku}",
            get(|Path(sku): Path<String>| async move { count_stock(&sku).await.to_string() }),
        )
        .layer(ObserveLayer::new());
    serve(app).await
}

type Downstream = tower::util::BoxCloneSyncService<
    http::Request<Full<Bytes>>,
    http::Response<cortex::tower::ObservedBody<hyper::body::Incoming>>,
    cortex::resilience::tower::BoxError,
>;

#[derive(Clone)]
struct Orders {
    inventory: SocketAddr,
    client: Downstream,
}

async fn order(State(s): State<Orders>, Path(id): Path<u32>) -> axum::response::Response {
    // A span of the `tracing` crate, as libraries make them: it joins the
    // request's trace.
    let lookup = async {
        let uri = format!("http://{}/stock/sku-{id}", s.inventory);
        let request = http::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .unwrap();
        s.client.clone().oneshot(request).await
    }
    .instrument(tracing::info_span!("check stock", order.id = id));
    match lookup.await {
        Ok(response) => {
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let stock = String::from_utf8_lossy(&body).into_owned();
            tracing::info!(stock = %stock, "stock checked");
            axum::response::IntoResponse::into_response(format!("order {id}: {stock} in stock\n"))
        }
        // An open breaker (or another policy's refusal) is a 503 with
        // Retry-After, not a crash.
        Err(e) => rejection_response(&e).unwrap_or_else(|| {
            axum::response::IntoResponse::into_response((
                http::StatusCode::BAD_GATEWAY,
                e.to_string(),
            ))
        }),
    }
}

async fn orders(inventory: SocketAddr) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let breaker = CircuitBreaker::new("inventory", CircuitBreakerConfig::default())?;
    let client = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(breaker))
        .layer(ClientLayer::new())
        .service(Client::builder(TokioExecutor::new()).build_http());
    let admin = Admin::new();
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .with_state(Orders {
            inventory,
            client: Downstream::new(client),
        })
        .layer(ObserveLayer::new())
        // The admin endpoints, beside the routes (not observed themselves).
        .route_service("/metrics", admin.clone())
        .route_service("/health", admin);
    Ok(serve(app).await?)
}

async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn get_text(
    addr: SocketAddr,
    path: &str,
    traceparent: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::get(format!("http://{addr}{path}"));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let response = client
        .request(request.body(Full::new(Bytes::new()))?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(format!(
        "{status} {}",
        String::from_utf8_lossy(&body).trim_end()
    ))
}

fn print_tree(spans: &[SpanData], parent: Option<cortex::trace::SpanId>, depth: usize) {
    let mut children: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.parent_span_id == parent)
        .collect();
    children.sort_by_key(|s| s.start_unix_nanos);
    for s in children {
        println!(
            "{:indent$}{} [{:?}, {:.1} ms]",
            "",
            s.name,
            s.kind,
            s.duration().as_secs_f64() * 1e3,
            indent = depth * 2
        );
        print_tree(spans, Some(s.span_id), depth + 1);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exporter = InMemoryExporter::default();
    let tracer = Tracer::builder()
        .service_name("orders")
        .exporter(exporter.clone())
        .install()?;
    // `tracing` spans and events join Cortex's traces.
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(TracingLayer::global()),
    )?;

    let inventory = inventory().await?;
    let orders = orders(inventory).await?;
    println!("orders on http://{orders}, inventory on http://{inventory}\n");

    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{caller}-00f067aa0ba902b7-01");
    println!(
        "GET /orders/42 -> {}",
        get_text(orders, "/orders/42", Some(&traceparent)).await?
    );
    println!(
        "GET /orders/7  -> {}",
        get_text(orders, "/orders/7", None).await?
    );

    tracer.force_flush();
    let spans: Vec<SpanData> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id.to_hex() == caller)
        .collect();
    println!("\nthe trace of the first request (its caller's span is 00f067aa0ba902b7):");
    let caller_span = cortex::trace::SpanId::from_hex("00f067aa0ba902b7");
    print_tree(&spans, caller_span, 1);

    let metrics = get_text(orders, "/metrics", None).await?;
    println!("\nGET /metrics (the request lines) ->");
    for line in metrics.lines().filter(|l| {
        (l.starts_with("cortex_http_requests_total{")
            || l.starts_with("cortex_http_client_requests_total{"))
            && !l.contains("/metrics")
    }) {
        println!("  {line}");
    }
    Ok(())
}
