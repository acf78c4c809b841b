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
use criterion::{criterion_group, Criterion};
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

async fn serve(app: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Served over loopback (8 keep-alive connections, a 2-worker runtime),
/// bare axum and axum with `ObserveLayer` alternate in short rounds; the
/// median throughput ratio is the cost of the layer on a served request
/// (the drift of this machine's speed cancels out).
fn paired() {
    const ROUNDS: usize = 15;
    const REQUESTS: u64 = 16_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let bare = rt.block_on(serve(app()));
    let observed = rt.block_on(serve(app().layer(cortex::tower::ObserveLayer::new())));
    let metrics = PromMetrics::new();
    let peers = rt.block_on(serve(
        app()
            .layer(axum::middleware::from_fn_with_state(
                metrics,
                prometheus_middleware,
            ))
            .layer(tower_http::trace::TraceLayer::new_for_http()),
    ));
    println!("\npaired rounds over loopback ({ROUNDS} x {REQUESTS} requests each side): throughput / bare axum's");
    for (name, addr) in [
        ("cortex ObserveLayer", observed),
        ("TraceLayer + prometheus", peers),
    ] {
        let mut ratios: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let b = rt.block_on(cortex_benches::load(bare, "/orders/42", REQUESTS, 8));
                let o = rt.block_on(cortex_benches::load(addr, "/orders/42", REQUESTS, 8));
                b.as_secs_f64() / o.as_secs_f64()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ROUNDS / 2];
        println!(
            "  {name:28} median {median:.3} (costs {:.1} % of throughput; rounds {:.3}..{:.3})",
            (1.0 - median) * 100.0,
            ratios[0],
            ratios[ROUNDS - 1]
        );
    }
}

fn main() {
    benches();
    paired();
    Criterion::default().configure_from_args().final_summary();
}
