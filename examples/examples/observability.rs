//! Metrics, health checks, and Cortex's admin endpoints mounted in an axum
//! app as tower services. It starts the app on a free loopback port, calls
//! it a few times, prints what it got, and exits.
//!
//! ```text
//! cargo run --example observability
//! ```

use std::time::Duration;

use axum::routing::get;
use cortex::health::{CheckOptions, Group, Health};
use cortex::http::Admin;
use cortex::metrics::global;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An annotated function called by an axum handler.
#[cortex::counted]
#[cortex::timed(buckets = [0.0001, 0.001, 0.01])]
async fn greet(name: &str) -> String {
    format!("hello, {name}\n")
}

/// Found by `/health` through the linker, with no registration code.
#[cortex::health_check(group = "readiness")]
async fn greeter_ready() -> Health {
    Health::up()
}

async fn fetch(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A hand-made metric and a check registered in code, beside the
    // annotated ones.
    let greetings = global().counter("example_greetings_total", "Greetings sent.")?;
    cortex::health::global().register(
        "downstream",
        CheckOptions::default()
            .group(Group::Readiness)
            .timeout(Duration::from_millis(200)),
        || async { Health::up().with_detail("latency_ms", 3) },
    );

    let admin = Admin::new();
    let app = axum::Router::new()
        .route(
            "/hello/{name}",
            get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let greetings = greetings.clone();
                    async move {
                        greetings.inc();
                        greet(&name).await
                    }
                },
            ),
        )
        // Cortex's endpoints, mounted as tower services.
        .route_service("/metrics", admin.clone())
        .route_service("/health", admin.clone())
        .route_service("/health/live", admin.clone())
        .route_service("/health/ready", admin);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("axum app with Cortex endpoints on http://{addr}");

    for name in ["ada", "grace"] {
        let response = fetch(addr, &format!("/hello/{name}")).await?;
        println!(
            "GET /hello/{name} -> {}",
            response.lines().last().unwrap_or("")
        );
    }
    let ready = fetch(addr, "/health/ready").await?;
    println!(
        "\nGET /health/ready ->\n{}",
        ready.split("\r\n\r\n").nth(1).unwrap_or("")
    );
    let metrics = fetch(addr, "/metrics").await?;
    println!("\nGET /metrics (the lines for this example) ->");
    for line in metrics.lines().filter(|l| l.contains("greet")) {
        println!("{line}");
    }
    server.abort();
    Ok(())
}
