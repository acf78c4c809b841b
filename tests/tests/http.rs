//! The HTTP server and the admin endpoints, over real loopback connections.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cortex::health::{CheckOptions, Group, Health, HealthRegistry, ShowDetails};
use cortex::http::{Admin, Limits, Request, Server};
use cortex::metrics::{global, Format, Registry};
use cortex_tests::raw;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A server with only the admin endpoints over `health` (and an empty
/// metrics registry of its own).
async fn admin_server(
    health: &'static HealthRegistry,
    details: ShowDetails,
) -> cortex::http::RunningServer {
    let registry = leak(Registry::new());
    Admin::with_registries(registry, health)
        .show_details(details)
        .mount(Server::new().metrics_registry(registry))
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == series).then(|| value.parse().expect("number"))
    })
}

#[tokio::test]
async fn metrics_endpoint_negotiates_format_and_content_type() {
    let registry = leak(Registry::new());
    registry
        .counter("http_test_hits_total", "Hits.")
        .unwrap()
        .inc_by(3);
    let admin = Admin::with_registries(registry, leak(HealthRegistry::new()));
    let server = admin
        .mount(Server::new().metrics_registry(registry))
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();

    let text = raw::get(addr, "/metrics", &[]).await;
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some(Format::PrometheusText.content_type())
    );
    assert!(
        text.body.contains("http_test_hits_total 3\n"),
        "{}",
        text.body
    );

    let om = raw::get(
        addr,
        "/metrics",
        &["Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"],
    )
    .await;
    assert_eq!(
        om.header("content-type"),
        Some(Format::OpenMetrics.content_type())
    );
    assert!(
        om.body
            .contains("# TYPE http_test_hits counter\nhttp_test_hits_total 3\n"),
        "{}",
        om.body
    );
    assert!(om.body.ends_with("# EOF\n"));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn health_status_codes_follow_up_degraded_down() {
    let state = Arc::new(AtomicU8::new(0));
    let health = leak(HealthRegistry::new());
    let s = Arc::clone(&state);
    health.register("db", CheckOptions::default(), move || {
        let v = s.load(Ordering::SeqCst);
        async move {
            match v {
                0 => Health::up().with_detail("pool", 4),
                1 => Health::degraded(),
                _ => Health::down().with_detail("error", "connection refused"),
            }
        }
    });
    let server = admin_server(health, ShowDetails::Always).await;
    let addr = server.local_addr();

    let up = raw::get(addr, "/health", &[]).await;
    assert_eq!(up.status, 200);
    assert_eq!(up.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&up.body).unwrap();
    assert_eq!(body["status"], "UP");
    assert_eq!(body["components"]["db"]["status"], "UP");
    assert_eq!(body["components"]["db"]["details"]["pool"], 4);
    assert!(body["components"]["db"]["durationMs"].is_number());

    state.store(1, Ordering::SeqCst);
    let degraded = raw::get(addr, "/health", &[]).await;
    assert_eq!(degraded.status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&degraded.body).unwrap()["status"],
        "DEGRADED"
    );

    state.store(2, Ordering::SeqCst);
    let down = raw::get(addr, "/health", &[]).await;
    assert_eq!(down.status, 503);
    let body: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(body["status"], "DOWN");
    assert_eq!(
        body["components"]["db"]["details"]["error"],
        "connection refused"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn hanging_and_panicking_checks_are_contained() {
    let health = leak(HealthRegistry::new());
    health.register(
        "hangs",
        CheckOptions::default().timeout(Duration::from_millis(200)),
        || async {
            std::future::pending::<()>().await;
            Health::up()
        },
    );
    health.register("panics", CheckOptions::default(), || async {
        panic!("the check fell over")
    });
    health.register("fine", CheckOptions::default(), || async { Health::up() });
    let server = admin_server(health, ShowDetails::Always).await;
    let started = Instant::now();
    let r = raw::get(server.local_addr(), "/health", &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the hanging check must not hang the probe"
    );
    assert_eq!(r.status, 503);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["components"]["hangs"]["status"], "DOWN");
    assert_eq!(
        body["components"]["hangs"]["details"]["error"],
        "timed out after 200ms"
    );
    assert_eq!(body["components"]["panics"]["status"], "DOWN");
    assert_eq!(
        body["components"]["panics"]["details"]["error"],
        "panicked: the check fell over"
    );
    assert_eq!(body["components"]["fine"]["status"], "UP");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn groups_details_policy_and_non_critical_checks() {
    let health = leak(HealthRegistry::new());
    health.register(
        "live_only",
        CheckOptions::default().group(Group::Liveness),
        || async { Health::up().with_detail("secret_host", "db-7.internal") },
    );
    health.register(
        "cache",
        CheckOptions::default()
            .group(Group::Readiness)
            .critical(false),
        || async { Health::down() },
    );
    let server = admin_server(health, ShowDetails::WhenAuthorized("t0ken".into())).await;
    let addr = server.local_addr();

    let live: serde_json::Value =
        serde_json::from_str(&raw::get(addr, "/health/live", &[]).await.body).unwrap();
    assert_eq!(live["status"], "UP");
    assert!(live["components"].get("cache").is_none());
    assert!(
        live["components"]["live_only"].get("details").is_none(),
        "hidden without the token"
    );

    let ready = raw::get(addr, "/health/ready", &[]).await;
    assert_eq!(
        ready.status, 200,
        "a failing non-critical check degrades, it does not fail the probe"
    );
    let ready: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(ready["status"], "DEGRADED");
    assert!(ready["components"].get("live_only").is_none());

    let authorized: serde_json::Value = serde_json::from_str(
        &raw::get(addr, "/health", &["Authorization: Bearer t0ken"])
            .await
            .body,
    )
    .unwrap();
    assert_eq!(
        authorized["components"]["live_only"]["details"]["secret_host"],
        "db-7.internal"
    );
    let wrong: serde_json::Value = serde_json::from_str(
        &raw::get(addr, "/health", &["Authorization: Bearer nope"])
            .await
            .body,
    )
    .unwrap();
    assert!(wrong["components"]["live_only"].get("details").is_none());
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn results_can_be_cached_against_probe_storms() {
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let health = leak(HealthRegistry::new());
    let r = Arc::clone(&runs);
    health.register("db", CheckOptions::default(), move || {
        r.fetch_add(1, Ordering::SeqCst);
        async { Health::up() }
    });
    health.cache_results_for(Duration::from_secs(60));
    for _ in 0..5 {
        assert_eq!(
            health.check(None).await.status(),
            cortex::health::Status::Up
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

async fn api_server(limits: Limits) -> cortex::http::RunningServer {
    Server::new()
        .limits(limits)
        .route(Method::GET, "/orders/{id}", |req: Request| async move {
            format!("order {}\n", req.param("id").unwrap_or("?"))
        })
        .unwrap()
        .route(Method::POST, "/orders", |req: Request| async move {
            (StatusCode::CREATED, format!("{} bytes\n", req.body().len()))
        })
        .unwrap()
        .route(Method::GET, "/slow", |_req: Request| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            "finally\n"
        })
        .unwrap()
        .route(Method::GET, "/very-slow", |_req: Request| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "never\n"
        })
        .unwrap()
        .route(Method::GET, "/boom", |_req: Request| async {
            if true {
                panic!("handler bug");
            }
            "unreachable"
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn routing_404_405_and_413() {
    let limits = Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    };
    let server = api_server(limits).await;
    let addr = server.local_addr();

    let ok = raw::get(addr, "/orders/42", &[]).await;
    assert_eq!((ok.status, ok.body.as_str()), (200, "order 42\n"));

    assert_eq!(raw::get(addr, "/nothing/here", &[]).await.status, 404);

    let wrong = raw::request(addr, "DELETE", "/orders/42", &[], "").await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));

    let created = raw::request(addr, "POST", "/orders", &[], "{\"item\":1}").await;
    assert_eq!((created.status, created.body.as_str()), (201, "10 bytes\n"));

    let big = "x".repeat(2000);
    let declared = raw::request(addr, "POST", "/orders", &[], &big).await;
    assert_eq!(declared.status, 413);
    // A chunked body gives no length up front: it is cut off at the limit.
    let chunk = "y".repeat(600);
    let chunked = format!(
        "POST /orders HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n{chunk}\r\n258\r\n{chunk}\r\n0\r\n\r\n"
    );
    assert_eq!(raw::exchange(addr, chunked.as_bytes()).await.status, 413);

    // Bad input never takes the server down.
    let garbage = raw::exchange(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    assert_eq!(raw::get(addr, "/orders/7", &[]).await.status, 200);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_panicking_handler_gets_500_and_the_server_carries_on() {
    let server = api_server(Limits::default()).await;
    let addr = server.local_addr();
    assert_eq!(raw::get(addr, "/boom", &[]).await.status, 500);
    assert_eq!(raw::get(addr, "/orders/1", &[]).await.status, 200);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    let server = api_server(Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let started = Instant::now();
    let head = b"GET /orders/1 HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut_off = false;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    // Whatever the server sent before closing (possibly a 408), it must not
    // be an answer to the request, and the connection must be closed.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    let closed = cut_off || matches!(read, Ok(Ok(_)) | Ok(Err(_)));
    assert!(closed, "the connection was not closed");
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&rest)
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let server = api_server(Limits::default()).await;
    let addr = server.local_addr();
    let in_flight = tokio::spawn(async move { raw::get(addr, "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = server.shutdown(Duration::from_secs(5)).await;
    let response = in_flight.await.unwrap();
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, "finally\n")
    );
    assert_eq!(report.aborted_connections, 0);
    assert_eq!(report.open_connections, 1);
    // Stopped accepting.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_closes_what_misses_the_deadline() {
    let server = api_server(Limits::default()).await;
    let addr = server.local_addr();
    let in_flight = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /very-slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let report = server.shutdown(Duration::from_millis(200)).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(report.aborted_connections, 1);
    assert!(
        in_flight.await.unwrap().is_empty(),
        "the aborted request got no response"
    );
}

#[tokio::test]
async fn request_metrics_use_the_route_template() {
    let server = Server::new()
        .route(
            Method::GET,
            "/metrics-test/items/{id}",
            |_req: Request| async { "item\n" },
        )
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    for id in ["1", "2", "3"] {
        assert_eq!(
            raw::get(addr, &format!("/metrics-test/items/{id}"), &[])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        raw::request(addr, "POST", "/metrics-test/items/9", &[], "")
            .await
            .status,
        405
    );
    assert_eq!(
        raw::request(addr, "BREW", "/metrics-test/pot", &[], "")
            .await
            .status,
        404
    );
    let text = global().encode(Format::PrometheusText);
    assert_eq!(
        metric_value(
            &text,
            "cortex_http_requests_total{method=\"GET\",route=\"/metrics-test/items/{id}\",status=\"200\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        metric_value(
            &text,
            "cortex_http_requests_total{method=\"POST\",route=\"/metrics-test/items/{id}\",status=\"405\"}"
        ),
        Some(1.0)
    );
    assert!(
        metric_value(
            &text,
            "cortex_http_requests_total{method=\"OTHER\",route=\"unmatched\",status=\"404\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "unknown methods and paths share one series"
    );
    assert!(
        !text.contains("/metrics-test/items/1\""),
        "raw paths never become labels"
    );
    assert_eq!(
        metric_value(
            &text,
            "cortex_http_request_duration_seconds_count{method=\"GET\",route=\"/metrics-test/items/{id}\"}"
        ),
        Some(3.0)
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn http2_requests_are_served() {
    let server = api_server(Limits::default()).await;
    let stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (mut sender, conn) = hyper_client::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri("http://localhost/orders/5")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"order 5\n");
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn bad_routes_and_busy_ports_are_clear_errors() {
    let err = Server::new()
        .route(Method::GET, "orders", |_r: Request| async { "" })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "bad route `orders`: a route must start with `/`"
    );
    let err = Server::new()
        .route(Method::GET, "/metrics", |_r: Request| async { "" })
        .unwrap()
        .with_admin()
        .unwrap_err();
    assert!(
        err.to_string().contains("GET /metrics is registered twice"),
        "{err}"
    );
    let first = Server::new().bind("127.0.0.1:0").await.unwrap();
    let err = Server::new().bind(first.local_addr()).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot listen on"), "{err}");
    first.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn admin_is_a_hyper_service_for_other_servers() {
    // A plain hyper server (no Cortex router) serving the admin endpoints.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let registry = leak(Registry::new());
    registry
        .gauge("plain_hyper_gauge", "A gauge.")
        .unwrap()
        .set(7.0);
    let admin = Admin::with_registries(registry, leak(HealthRegistry::new()));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), admin)
                .await;
            });
        }
    });
    let metrics = raw::get(addr, "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("plain_hyper_gauge 7\n"));
    let health = raw::get(addr, "/health/ready", &[]).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "{\"status\":\"UP\",\"components\":{}}")
    );
    assert_eq!(raw::get(addr, "/other", &[]).await.status, 404);
    let post = raw::request(addr, "POST", "/metrics", &[], "").await;
    assert_eq!(
        (post.status, post.header("allow")),
        (405, Some("GET, HEAD"))
    );
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let server = api_server(Limits {
        max_header_bytes: 8 * 1024,
        ..Limits::default()
    })
    .await;
    let addr = server.local_addr();
    let huge = format!("X-Huge: {}", "h".repeat(32 * 1024));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /orders/1 HTTP/1.1\r\nHost: t\r\n{huge}\r\nConnection: close\r\n\r\n");
    // The server may close before reading everything; a failed write is fine.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "an oversized head is refused, not served: {text}"
    );
    assert!(!text.contains("order 1"));
    // A normal request still works.
    assert_eq!(raw::get(addr, "/orders/1", &[]).await.status, 200);
    server.shutdown(Duration::from_secs(1)).await;
}

/// The router's two documented choices: empty segments and a trailing slash
/// are ignored (as nginx's `merge_slashes`), and a path belongs to the
/// route it matches first (literal segments before `{param}` ones), so a
/// method that route lacks gets 405, without falling back to a `{param}`
/// route that has it (as axum does).
#[tokio::test]
async fn empty_segments_are_ignored_and_a_literal_route_does_not_fall_back() {
    let server = Server::new()
        .route(Method::GET, "/orders/{id}", |req: Request| async move {
            format!("order {}\n", req.param("id").unwrap_or("?"))
        })
        .unwrap()
        .route(Method::POST, "/orders/{id}", |_req: Request| async {
            "updated\n"
        })
        .unwrap()
        .route(Method::GET, "/orders/new", |_req: Request| async {
            "form\n"
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    for path in ["/orders/42", "/orders//42", "/orders/42/", "//orders/42//"] {
        let r = raw::get(addr, path, &[]).await;
        assert_eq!((r.status, r.body.as_str()), (200, "order 42\n"), "{path}");
    }
    assert_eq!(raw::get(addr, "/orders/new", &[]).await.body, "form\n");
    let posted = raw::request(addr, "POST", "/orders/new", &[], "").await;
    assert_eq!(posted.status, 405, "the literal route has no POST");
    assert_eq!(posted.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        raw::request(addr, "POST", "/orders/7", &[], "").await.body,
        "updated\n"
    );
    server.shutdown(Duration::from_secs(1)).await;
}
