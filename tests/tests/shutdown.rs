//! Graceful shutdown as Kubernetes needs it: readiness turns
//! OUT_OF_SERVICE first, the server drains, in-flight requests finish, the
//! report counts what was really open; SIGTERM does all of it; a dropped
//! `RunningServer` keeps serving.

use std::time::{Duration, Instant};

use cortex::health::{CheckOptions, Group, Health, HealthRegistry};
use cortex::http::{Admin, Request, RunningServer, Server};
use cortex::metrics::Registry;
use cortex_tests::raw;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

fn service(health: &'static HealthRegistry) -> Server {
    let registry = leak(Registry::new());
    let server = Server::new()
        .metrics_registry(registry)
        .route(Method::GET, "/slow", |_req: Request| async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            "finally\n"
        })
        .unwrap()
        .route(Method::GET, "/stuck", |_req: Request| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "never\n"
        })
        .unwrap()
        .route(Method::GET, "/fast", |_req: Request| async { "fast\n" })
        .unwrap();
    Admin::with_registries(registry, health)
        .mount(server)
        .unwrap()
}

fn health() -> &'static HealthRegistry {
    let health = leak(HealthRegistry::new());
    health.register(
        "db",
        CheckOptions::default().group(Group::Readiness),
        || async { Health::up() },
    );
    health
}

#[tokio::test]
async fn readiness_turns_out_of_service_then_the_server_drains_and_finishes() {
    let health = health();
    let server = service(health)
        .drain_delay(Duration::from_millis(400))
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_eq!(raw::get(addr, "/health/ready", &[]).await.status, 200);
    let in_flight = tokio::spawn(async move { raw::get(addr, "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    let shutdown = tokio::spawn(server.shutdown(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Draining: readiness is 503 OUT_OF_SERVICE, liveness still 200, and
    // new connections are still served.
    let ready = raw::get(addr, "/health/ready", &[]).await;
    assert_eq!(ready.status, 503);
    let json: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(json["status"], "OUT_OF_SERVICE");
    assert_eq!(
        json["components"]["readinessState"]["status"],
        "OUT_OF_SERVICE"
    );
    assert_eq!(json["components"]["db"]["status"], "UP");
    assert_eq!(raw::get(addr, "/health/live", &[]).await.status, 200);
    let served = raw::get(addr, "/fast", &[]).await;
    assert_eq!((served.status, served.body.as_str()), (200, "fast\n"));

    // After the drain delay the listener is closed.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    let slow = in_flight.await.unwrap();
    assert_eq!((slow.status, slow.body.as_str()), (200, "finally\n"));
    let report = shutdown.await.unwrap();
    assert!(asked.elapsed() >= Duration::from_millis(400));
    assert_eq!(report.aborted_connections, 0);
}

#[tokio::test]
async fn the_report_counts_only_connections_really_open() {
    let server = service(health()).bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    // Four connections that finished (the client closed them)...
    for _ in 0..4 {
        let r = raw::get(addr, "/fast", &[]).await;
        assert_eq!(r.status, 200);
    }
    // ...and one busy at the deadline.
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = server.shutdown(Duration::from_millis(200)).await;
    assert_eq!(report.open_connections, 1);
    assert_eq!(report.aborted_connections, 1);
    let mut rest = Vec::new();
    let _ = busy.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "the aborted request got no response");
}

#[tokio::test]
async fn a_dropped_running_server_keeps_serving() {
    let server: RunningServer = service(health()).bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    drop(server);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = raw::get(addr, "/fast", &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, "fast\n"));
    // The admin server `serve` starts keeps serving once dropped, too.
    let admin = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let admin_addr = admin.local_addr();
    drop(admin);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(raw::get(admin_addr, "/metrics", &[]).await.status, 200);
}

#[tokio::test]
async fn sigterm_drains_and_stops_the_server() {
    let health = health();
    let server = service(health)
        .drain_delay(Duration::from_millis(200))
        .shutdown_timeout(Duration::from_secs(5))
        .shutdown_on_signals()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let in_flight = tokio::spawn(async move { raw::get(addr, "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // SAFETY: sends a signal to this very process, which listens for it.
    let sent = unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    assert_eq!(sent, 0);
    let report = tokio::time::timeout(Duration::from_secs(5), server.stopped())
        .await
        .expect("stopped after SIGTERM");
    assert!(health.is_out_of_service());
    assert_eq!(report.aborted_connections, 0);
    let slow = in_flight.await.unwrap();
    assert_eq!((slow.status, slow.body.as_str()), (200, "finally\n"));
}
