//! The demo service, shared by `cargo run --example demo` and its test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cortex::health::Health;
use cortex::http::{json, text, Method, Request, Response, RunningServer, Server, StatusCode};

pub mod inventory;
#[cfg(feature = "wasm")]
pub mod transform;

static NEXT_ORDER: AtomicU64 = AtomicU64::new(1000);

#[derive(Debug)]
enum OrderError {
    NotFound(u64),
    BadId(String),
}

/// Looks an order up (ids below 1 do not exist). Its objective: 99.9 % of
/// lookups succeed and 99 % answer within 10 ms (one of its bucket bounds).
#[cortex::traced(attributes(order.id = id))]
#[cortex::objective(
    name = "orders",
    success_rate = 99.9,
    latency = "10ms",
    latency_percentile = 99
)]
#[cortex::counted]
#[cortex::timed(native, buckets = [0.001, 0.005, 0.01, 0.05, 0.1], track_in_flight)]
async fn find_order(id: &str) -> Result<String, OrderError> {
    let id: u64 = id.parse().map_err(|_| OrderError::BadId(id.to_owned()))?;
    // Simulated storage latency.
    tokio::time::sleep(Duration::from_millis(1 + id % 5)).await;
    if id == 0 {
        return Err(OrderError::NotFound(id));
    }
    Ok(format!("{{\"id\":{id},\"status\":\"shipped\"}}\n"))
}

/// Stores a new order.
#[cortex::traced(attributes(order.bytes = body.len()))]
#[cortex::counted(labels(operation = "create"))]
#[cortex::timed(labels(operation = "create"))]
fn create_order(body: &[u8]) -> Result<u64, String> {
    if body.is_empty() {
        return Err("empty order".into());
    }
    Ok(NEXT_ORDER.fetch_add(1, Ordering::Relaxed))
}

async fn get_order(req: Request) -> Response {
    match find_order(req.param("id").unwrap_or("")).await {
        Ok(body) => json(StatusCode::OK, body),
        Err(OrderError::NotFound(id)) => text(StatusCode::NOT_FOUND, format!("no order {id}\n")),
        Err(OrderError::BadId(id)) => {
            text(StatusCode::BAD_REQUEST, format!("bad order id {id:?}\n"))
        }
    }
}

async fn post_order(req: Request) -> Response {
    match create_order(req.body()) {
        Ok(id) => json(StatusCode::CREATED, format!("{{\"id\":{id}}}\n")),
        Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    }
}

/// The order store answers (here it always does).
#[cortex::health_check(group = "readiness", timeout = "1s")]
async fn order_store() -> Health {
    Health::up().with_detail("orders_created", NEXT_ORDER.load(Ordering::Relaxed) - 1000)
}

/// CPU work runs on a worker pool, never on the async workers.
fn pool() -> &'static cortex::workers::WorkerPool {
    static POOL: std::sync::LazyLock<cortex::workers::WorkerPool> =
        std::sync::LazyLock::new(|| {
            cortex::workers::WorkerPool::new(
                cortex::workers::PoolOptions::named("demo-cpu")
                    .threads(2)
                    .timeout(std::time::Duration::from_secs(2)),
            )
        });
    &POOL
}

/// `GET /checksum/{rounds}`: a CPU-heavy checksum, offloaded to the pool.
async fn checksum(req: Request) -> Response {
    let rounds: u32 = match req.param("rounds").and_then(|r| r.parse().ok()) {
        Some(r) if r <= 100_000 => r,
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                "rounds must be a number up to 100000\n",
            )
        }
    };
    let work = move |_: &mut ()| {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for i in 0..rounds {
            for b in i.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    };
    match pool().submit(work).await {
        Ok(task) => match task.await {
            Ok(h) => json(
                StatusCode::OK,
                format!("{{\"rounds\":{rounds},\"checksum\":\"{h:016x}\"}}\n"),
            ),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        },
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// Installs the global tracer from the standard OpenTelemetry variables
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
/// `OTEL_TRACES_SAMPLER_ARG`); the service name defaults to `cortex-demo`.
/// Without an endpoint, spans still propagate `traceparent` and give
/// exemplars, but nothing is exported.
///
/// # Errors
/// A variable with a value that cannot be used (the error names it).
pub fn install_tracing() -> Result<cortex::trace::Tracer, cortex::trace::ConfigError> {
    cortex::trace::Tracer::builder()
        .service_name("cortex-demo")
        .from_env()?
        .install()
}

/// Starts the demo service on `addr`: `GET /orders/{id}`, `POST /orders`,
/// `GET /checksum/{rounds}` (CPU work on a worker pool),
/// `GET /inventory/{item}` (a downstream call behind a retry, the
/// `inventory` breaker and a timeout; `POST /inventory/fail` and
/// `/inventory/heal` steer the simulated service, see [`inventory`]), with feature
/// `wasm` `POST /transform` (the body run through a WebAssembly guest, see
/// [`transform`]), and the admin endpoints, with compressed responses.
///
/// # Errors
/// If the address cannot be bound.
pub async fn start(addr: &str) -> Result<RunningServer, cortex::http::Error> {
    service()?.bind(addr).await
}

/// The demo's server, routes and admin endpoints, not bound yet.
pub fn service() -> Result<Server, cortex::http::Error> {
    routes()?.with_admin()
}

/// The demo's server and routes, without the admin endpoints.
pub fn routes() -> Result<Server, cortex::http::Error> {
    // `cortex_build_info` and `target_info` name this crate and version.
    cortex::build_info!();
    let server = Server::new()
        .route(Method::GET, "/orders/{id}", get_order)?
        .route(Method::POST, "/orders", post_order)?
        .route(Method::GET, "/checksum/{rounds}", checksum)?
        .route(Method::GET, "/inventory/{item}", inventory::get_stock)?
        .route(Method::POST, "/inventory/fail", inventory::fail)?
        .route(Method::POST, "/inventory/heal", inventory::heal)?;
    #[cfg(feature = "wasm")]
    let server = server.route(Method::POST, "/transform", transform::transform)?;
    Ok(server)
}
