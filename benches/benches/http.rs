//! Requests per second through Cortex's server (routing, body limits,
//! panic guard, request metrics) against a bare hyper server answering the
//! same bytes, in the same run, over loopback with keep-alive connections.
//!
//! ```text
//! cargo bench -p cortex-benches --bench http
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, Criterion, Throughput};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

const CONNECTIONS: u64 = 8;

/// A hyper server that answers every request with `body`, nothing else;
/// with `header_timeout`, it also guards against slow headers as Cortex does
/// (a timer per request), to show what that protection alone costs.
async fn bare_hyper(body: Bytes, content_type: &'static str, header_timeout: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        let mut r = http::Response::new(Full::new(body));
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static(content_type),
                        );
                        Ok::<_, Infallible>(r)
                    }
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if header_timeout {
                    builder
                        .http1()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10));
                }
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Sends `total` GET requests over `CONNECTIONS` keep-alive connections.
async fn load(addr: SocketAddr, path: &'static str, total: u64) -> Duration {
    cortex_benches::load(addr, path, total, CONNECTIONS).await
}

struct Servers {
    cortex: SocketAddr,
    bare_health: SocketAddr,
    bare_route: SocketAddr,
    guarded_route: SocketAddr,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn start_servers(rt: &tokio::runtime::Runtime) -> Servers {
    let health_registry: &'static cortex::health::HealthRegistry =
        Box::leak(Box::new(cortex::health::HealthRegistry::new()));
    health_registry.register("ping", Default::default(), || async {
        cortex::health::Health::up()
    });
    let (cortex, bare_health, bare_route, guarded_route) = rt.block_on(async {
        let server =
            cortex::http::Admin::with_registries(cortex::metrics::global(), health_registry)
                .mount(cortex::http::Server::new())
                .unwrap()
                .route(
                    http::Method::GET,
                    "/orders/{id}",
                    |req: cortex::http::Request| async move {
                        format!("order {}\n", req.param("id").unwrap_or("?"))
                    },
                )
                .unwrap()
                .bind("127.0.0.1:0")
                .await
                .unwrap();
        let addr = server.local_addr();
        std::mem::forget(server);
        // The bare server answers exactly the bytes Cortex answers.
        let health_body = health_registry.check(None).await.to_json(true);
        let bare_health = bare_hyper(Bytes::from(health_body), "application/json", false).await;
        let route_body = Bytes::from_static(b"order 42\n");
        let text = "text/plain; charset=utf-8";
        let bare_route = bare_hyper(route_body.clone(), text, false).await;
        let guarded_route = bare_hyper(route_body, text, true).await;
        (addr, bare_health, bare_route, guarded_route)
    });
    Servers {
        cortex,
        bare_health,
        bare_route,
        guarded_route,
    }
}

fn http(c: &mut Criterion) {
    let rt = runtime();
    let Servers {
        cortex: cortex_addr,
        bare_health,
        bare_route,
        guarded_route,
    } = start_servers(&rt);

    let mut g = c.benchmark_group("http_requests");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30);
    g.bench_function("bare_hyper_route", |b| {
        b.iter_custom(|iters| rt.block_on(load(bare_route, "/orders/42", iters)))
    });
    g.bench_function("bare_hyper_route_with_header_timeout", |b| {
        b.iter_custom(|iters| rt.block_on(load(guarded_route, "/orders/42", iters)))
    });
    g.bench_function("cortex_route", |b| {
        b.iter_custom(|iters| rt.block_on(load(cortex_addr, "/orders/42", iters)))
    });
    g.bench_function("bare_hyper_health", |b| {
        b.iter_custom(|iters| rt.block_on(load(bare_health, "/health", iters)))
    });
    g.bench_function("cortex_health", |b| {
        b.iter_custom(|iters| rt.block_on(load(cortex_addr, "/health", iters)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(4);
    targets = http
}

/// This 2-core machine drifts between speeds over seconds, which moves
/// whole criterion cases; alternating the two servers in short rounds and
/// taking the median ratio cancels that drift.
fn paired(rt: &tokio::runtime::Runtime, servers: &Servers) {
    const ROUNDS: usize = 15;
    const REQUESTS: u64 = 16_000;
    let cases = [
        ("route", servers.bare_route, servers.cortex, "/orders/42"),
        (
            "route, bare hyper with header timeout",
            servers.guarded_route,
            servers.cortex,
            "/orders/42",
        ),
        ("health", servers.bare_health, servers.cortex, "/health"),
    ];
    println!("\npaired rounds ({ROUNDS} x {REQUESTS} requests each side): cortex throughput / bare hyper throughput");
    for (name, bare, cortex, path) in cases {
        let mut ratios: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let b = rt.block_on(load(bare, path, REQUESTS));
                let c = rt.block_on(load(cortex, path, REQUESTS));
                b.as_secs_f64() / c.as_secs_f64()
            })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ROUNDS / 2];
        println!(
            "  {name:40} median {median:.3} (cortex costs {:.1} % of throughput; rounds {:.3}..{:.3})",
            (1.0 - median) * 100.0,
            ratios[0],
            ratios[ROUNDS - 1]
        );
    }
}

fn main() {
    benches();
    let rt = runtime();
    let servers = start_servers(&rt);
    paired(&rt, &servers);
    Criterion::default().configure_from_args().final_summary();
}
