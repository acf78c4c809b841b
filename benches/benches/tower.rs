//! What Cortex's `ObserveLayer` costs on an axum route, against bare axum
//! and against the usual hand-made stack (tower-http's `TraceLayer` plus a
//! `prometheus`-crate middleware counting and timing by matched route, as
//! axum-prometheus does), in the same run. Requests go through the router
//! in process (`oneshot`), so the numbers are the middleware's own cost
//! plus a constant for the call itself.
//!
//! ```text
//! cargo bench -p cortex-benches --bench tower
//! ```

use std::hint::black_box;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt;

fn app() -> Router {
    Router::new().route("/orders/{id}", get(|| async { "ok" }))
}

fn request() -> http::Request<axum::body::Body> {
    http::Request::get("/orders/42")
        .body(axum::body::Body::empty())
        .unwrap()
}

/// A `prometheus`-crate middleware: a counter and a histogram by method,
/// matched route and status, the way axum-prometheus and most hand-made
/// middleware record requests.
#[derive(Clone)]
struct PromMetrics {
    requests: prometheus::IntCounterVec,
    durations: prometheus::HistogramVec,
}

impl PromMetrics {
    fn new() -> Self {
        let registry = prometheus::Registry::new();
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new("http_requests_total", "Requests."),
            &["method", "route", "status"],
        )
        .unwrap();
        let durations = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new("http_request_duration_seconds", "Latency."),
            &["method", "route"],
        )
        .unwrap();
        registry.register(Box::new(requests.clone())).unwrap();
        registry.register(Box::new(durations.clone())).unwrap();
        PromMetrics {
            requests,
            durations,
        }
    }
}

async fn prometheus_middleware(
    axum::extract::State(m): axum::extract::State<PromMetrics>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(req).await;
    m.requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    m.durations
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    response
}

fn observe(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("axum_route");
    let bare = app();
    g.bench_function("bare_axum", |b| {
        b.iter(|| {
            rt.block_on(bare.clone().oneshot(black_box(request())))
                .unwrap()
        })
    });
    let cortex = app().layer(cortex::tower::ObserveLayer::new());
    g.bench_function("cortex_observe_layer", |b| {
        b.iter(|| {
            rt.block_on(cortex.clone().oneshot(black_box(request())))
                .unwrap()
        })
    });
    let metrics = PromMetrics::new();
    let peers = app()
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            prometheus_middleware,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http());
    g.bench_function("tower_http_trace_plus_prometheus", |b| {
        b.iter(|| {
            rt.block_on(peers.clone().oneshot(black_box(request())))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(3);
    targets = observe
}
criterion_main!(benches);
