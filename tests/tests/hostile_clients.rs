//! Clients that try to hold the server: slow bodies, slow or missing heads,
//! idle HTTP/2 connections, connection floods, oversized heads and bodies,
//! and HEAD over HTTP/2. Each case asserts what the client sees and that the
//! server keeps answering a probe meanwhile. Real loopback connections,
//! short limits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cortex::http::{AtConnectionLimit, Limits, Request, RouteOptions, RunningServer, Server};
use cortex::metrics::{Format, Registry};
use cortex_tests::raw;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// Set while a handler's future is alive; cleared when it is dropped.
struct Alive(Arc<AtomicBool>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

struct Fixture {
    server: RunningServer,
    registry: &'static Registry,
    handler_alive: Arc<AtomicBool>,
}

async fn start(limits: Limits) -> Fixture {
    let registry = leak(Registry::new());
    let handler_alive = Arc::new(AtomicBool::new(false));
    let alive = Arc::clone(&handler_alive);
    let server = Server::new()
        .metrics_registry(registry)
        .limits(limits)
        .route(Method::GET, "/probe", |_req: Request| async { "up\n" })
        .unwrap()
        .route(Method::GET, "/orders/{id}", |req: Request| async move {
            format!("order {}\n", req.param("id").unwrap_or("?"))
        })
        .unwrap()
        .route(Method::POST, "/upload", |req: Request| async move {
            format!("{} bytes\n", req.body().len())
        })
        .unwrap()
        .route(Method::POST, "/hold", |req: Request| async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            format!("held {} bytes\n", req.body().len())
        })
        .unwrap()
        .route_with(
            Method::GET,
            "/stuck",
            move |_req: Request| {
                let alive = Arc::clone(&alive);
                async move {
                    alive.store(true, Ordering::SeqCst);
                    let _guard = Alive(alive);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "never\n"
                }
            },
            RouteOptions::default().request_timeout(Duration::from_millis(200)),
        )
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    Fixture {
        server,
        registry,
        handler_alive,
    }
}

impl Fixture {
    fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    async fn probe_answers(&self) {
        let probe = raw::get(self.addr(), "/probe", &[]).await;
        assert_eq!((probe.status, probe.body.as_str()), (200, "up\n"));
    }

    fn metric(&self, series: &str) -> Option<f64> {
        let text = self.registry.encode(Format::PrometheusText);
        text.lines().find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == series).then(|| value.parse().expect("number"))
        })
    }
}

/// Reads until the server closes; `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut seen)).await {
        Ok(_) => Some(seen),
        Err(_) => None,
    }
}

fn short() -> Limits {
    Limits::default()
        .header_read_timeout(Duration::from_millis(300))
        .body_read_timeout(Duration::from_millis(400))
        .idle_timeout(Duration::from_millis(900))
}

#[tokio::test]
async fn a_slow_body_gets_408_and_the_server_keeps_answering() {
    let f = start(short()).await;
    let mut stream = TcpStream::connect(f.addr()).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\nx")
        .await
        .unwrap();
    let started = Instant::now();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream.write_all(b"x").await.is_err() {
                break;
            }
        }
    };
    let probe = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        f.probe_answers().await;
    };
    tokio::join!(probe, async {
        // Writes keep the body trickling only until the server answers.
        let _ = tokio::time::timeout(Duration::from_millis(600), trickle).await;
    });
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("closed after the 408");
    let response = raw::parse(&seen);
    assert_eq!(response.status, 408);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        f.metric(r#"cortex_http_requests_total{method="POST",route="/upload",status="408"}"#),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_slow_head_is_cut_off_while_others_are_served() {
    let f = start(short()).await;
    let mut stream = TcpStream::connect(f.addr()).await.unwrap();
    let head =
        b"GET /orders/1 HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut cut_off = false;
    for (i, byte) in head.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        if i == 2 {
            f.probe_answers().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rest = if cut_off {
        Vec::new()
    } else {
        closed_within(&mut stream, Duration::from_secs(3))
            .await
            .expect("closed")
    };
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
    assert!(started.elapsed() < Duration::from_secs(5));
    f.probe_answers().await;
}

#[tokio::test]
async fn a_client_that_says_nothing_is_closed_after_the_head_timeout() {
    let f = start(short()).await;
    let mut stream = TcpStream::connect(f.addr()).await.unwrap();
    let started = Instant::now();
    f.probe_answers().await;
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("a silent connection is closed");
    assert!(seen.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(
        f.metric(r#"cortex_http_requests_total{method="OTHER",route="rejected",status="408"}"#),
        Some(1.0),
        "counted, though no answer was sent"
    );
}

#[tokio::test]
async fn a_malformed_head_gets_400_and_is_counted() {
    let f = start(short()).await;
    let mut stream = TcpStream::connect(f.addr()).await.unwrap();
    stream
        .write_all(b"GET /probe HTTP/1.1\r\nBad Header\r\n\r\n")
        .await
        .unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("closed after the answer");
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 400"),
        "{seen:?}"
    );
    let rejected = r#"cortex_http_requests_total{method="OTHER",route="rejected",status="400"}"#;
    for _ in 0..100 {
        if f.metric(rejected).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.metric(rejected), Some(1.0));
    f.probe_answers().await;
}

#[tokio::test]
async fn an_http2_client_that_sends_only_the_preface_is_closed() {
    let f = start(short()).await;
    let mut stream = TcpStream::connect(f.addr()).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    f.probe_answers().await;
    // The server's SETTINGS may come first; then the connection must end.
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("a preface-only connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(
        !String::from_utf8_lossy(&seen).contains("order"),
        "nothing was answered"
    );
}

async fn h2_client(
    addr: std::net::SocketAddr,
) -> (
    hyper_client::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper_client::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, driver)
}

fn h2_request(method: Method, path: &str) -> http::Request<http_body_util::Empty<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .body(http_body_util::Empty::new())
        .unwrap()
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout() {
    let f = start(short()).await;
    let (mut sender, driver) = h2_client(f.addr()).await;
    let resp = sender
        .send_request(h2_request(Method::GET, "/orders/3"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.into_body().collect().await.unwrap();
    let idle_from = Instant::now();
    // Past the head timeout the connection is still there: idle is not a
    // head being trickled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!driver.is_finished(), "closed before the idle timeout");
    f.probe_answers().await;
    tokio::time::timeout(Duration::from_secs(3), driver)
        .await
        .expect("the idle connection is closed")
        .unwrap();
    assert!(idle_from.elapsed() >= Duration::from_millis(850));
}

#[tokio::test]
async fn a_kept_alive_http1_connection_lives_until_the_idle_timeout() {
    let f = start(short()).await;
    let mut stream = TcpStream::connect(f.addr()).await.unwrap();
    stream
        .write_all(b"GET /orders/9 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("order 9"));
    let idle_from = Instant::now();
    // A second request after the head timeout but within the idle timeout
    // is answered on the same connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
        .write_all(b"GET /orders/10 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("order 10"));
    let idle_from_second = Instant::now();
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("closed once idle");
    assert!(seen.is_empty());
    assert!(idle_from.elapsed() >= Duration::from_millis(1300));
    assert!(idle_from_second.elapsed() >= Duration::from_millis(850));
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_are_closed_and_counted() {
    let limits = Limits::default()
        .max_connections(3)
        .at_connection_limit(AtConnectionLimit::Close);
    let f = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(f.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.metric("cortex_http_open_connections"), Some(3.0));
    let mut extra = TcpStream::connect(f.addr()).await.unwrap();
    let _ = extra
        .write_all(b"GET /probe HTTP/1.1\r\nHost: t\r\n\r\n")
        .await;
    let seen = closed_within(&mut extra, Duration::from_secs(2))
        .await
        .expect("closed at once");
    assert!(seen.is_empty(), "no answer past the limit");
    assert_eq!(
        f.metric("cortex_http_connections_rejected_total"),
        Some(1.0)
    );
    // Once one closes, a new client is served.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.probe_answers().await;
    assert_eq!(f.metric("cortex_http_open_connections"), Some(2.0));
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_wait_their_turn() {
    let f = start(Limits::default().max_connections(2)).await;
    let mut held = vec![
        TcpStream::connect(f.addr()).await.unwrap(),
        TcpStream::connect(f.addr()).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = f.addr();
    let waiting = tokio::spawn(async move { raw::get(addr, "/probe", &[]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served past the limit");
    drop(held.pop());
    let response = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(
        f.metric("cortex_http_connections_rejected_total"),
        Some(0.0)
    );
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused_and_the_server_carries_on() {
    let f = start(
        Limits::default()
            .max_header_bytes(8192)
            .max_body_bytes(1000),
    )
    .await;
    let big = format!("X-Big: {}", "a".repeat(20_000));
    let head = raw::get(f.addr(), "/probe", &[&big]).await;
    assert_eq!(head.status, 431);
    // Refused by hyper before any handler: still counted.
    let rejected = r#"cortex_http_requests_total{method="OTHER",route="rejected",status="431"}"#;
    for _ in 0..100 {
        if f.metric(rejected).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.metric(rejected), Some(1.0));
    let body = raw::request(f.addr(), "POST", "/upload", &[], &"b".repeat(1500)).await;
    assert_eq!(body.status, 413);
    let fits = raw::request(f.addr(), "POST", "/upload", &[], &"b".repeat(900)).await;
    assert_eq!((fits.status, fits.body.as_str()), (200, "900 bytes\n"));
    f.probe_answers().await;
}

#[tokio::test]
async fn bodies_held_at_once_are_bounded_server_wide() {
    let f = start(Limits::default().max_buffered_body_bytes(1000)).await;
    let addr = f.addr();
    let first =
        tokio::spawn(
            async move { raw::request(addr, "POST", "/hold", &[], &"x".repeat(800)).await },
        );
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The first body is still held by its handler: 800 + 800 > 1000.
    let second = raw::request(addr, "POST", "/upload", &[], &"y".repeat(800)).await;
    assert_eq!(second.status, 503);
    let first = first.await.unwrap();
    assert_eq!(
        (first.status, first.body.as_str()),
        (200, "held 800 bytes\n")
    );
    // Released with the request: the budget is whole again.
    let third = raw::request(addr, "POST", "/upload", &[], &"z".repeat(800)).await;
    assert_eq!(third.status, 200);
}

#[tokio::test]
async fn a_handler_past_its_timeout_is_dropped_with_503() {
    let f = start(Limits::default()).await;
    let started = Instant::now();
    let response = raw::get(f.addr(), "/stuck", &[]).await;
    assert_eq!(response.status, 503);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        !f.handler_alive.load(Ordering::SeqCst),
        "the handler's future was dropped"
    );
    assert_eq!(
        f.metric(r#"cortex_http_requests_total{method="GET",route="/stuck",status="503"}"#),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_server_wide_request_timeout_applies_to_every_route() {
    let server = Server::new()
        .metrics_registry(leak(Registry::new()))
        .limits(Limits::default().request_timeout(Some(Duration::from_millis(100))))
        .route(Method::GET, "/slow", |_req: Request| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "never\n"
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    assert_eq!(
        raw::get(server.local_addr(), "/slow", &[]).await.status,
        503
    );
}

#[tokio::test]
async fn head_over_http2_sends_no_body() {
    let f = start(Limits::default()).await;
    let (mut sender, _driver) = h2_client(f.addr()).await;
    let get = sender
        .send_request(h2_request(Method::GET, "/orders/77"))
        .await
        .unwrap();
    let get_body = get.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&get_body[..], b"order 77\n");
    let head = sender
        .send_request(h2_request(Method::HEAD, "/orders/77"))
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()
            .get(http::header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap().to_owned()),
        Some(get_body.len().to_string()),
        "HEAD gives the GET's length"
    );
    let head_body = head.into_body().collect().await.unwrap().to_bytes();
    assert!(head_body.is_empty(), "no DATA for HEAD: {head_body:?}");
    // And over HTTP/1 the same.
    let h1 = raw::request(f.addr(), "HEAD", "/orders/77", &[], "").await;
    assert_eq!(h1.status, 200);
    assert_eq!(h1.header("content-length"), Some("9"));
    assert!(h1.body.is_empty());
    f.probe_answers().await;
}

#[tokio::test]
async fn malformed_and_unsafe_paths_get_400() {
    let f = start(Limits::default()).await;
    for path in [
        "/orders/a%2Fb",
        "/orders/%2e%2e",
        "/orders/%FF",
        "/orders/%+A",
        "/orders/%4",
        "/x/../probe",
    ] {
        let r = raw::get(f.addr(), path, &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST.as_u16(), "{path}");
    }
    for (path, body) in [
        ("/orders/1/", "order 1\n"),
        ("//orders//2", "order 2\n"),
        ("/orders/caf%C3%A9", "order café\n"),
    ] {
        let r = raw::get(f.addr(), path, &[]).await;
        assert_eq!((r.status, r.body.as_str()), (200, body), "{path}");
    }
}

/// One HTTP/2 frame: length, type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test]
async fn an_http2_peer_that_stops_answering_pings_is_dropped() {
    let server = Server::new()
        .metrics_registry(leak(Registry::new()))
        .limits(
            Limits::default()
                .http2_keep_alive_interval(Some(Duration::from_millis(200)))
                .http2_keep_alive_timeout(Duration::from_millis(200)),
        )
        .route(Method::GET, "/forever", |_req: Request| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "never\n"
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(0x4, 0, 0, &[])); // SETTINGS
                                         // HEADERS, END_STREAM | END_HEADERS: GET http://a/forever (HPACK:
                                         // indexed :method GET, :scheme http; literal :path and :authority).
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/forever");
    block.extend_from_slice(&[0x41, 1, b'a']);
    hello.extend(frame(0x1, 0x5, 1, &block));
    stream.write_all(&hello).await.unwrap();
    // The client now goes silent: it never acknowledges a SETTINGS or PING.
    let started = Instant::now();
    let seen = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("a peer that does not answer pings is dropped");
    assert!(started.elapsed() >= Duration::from_millis(150));
    // What it got before the close: frames from the server, among them a
    // PING (type 6), and no response HEADERS for the request.
    let mut kinds = Vec::new();
    let mut rest = &seen[..];
    while rest.len() >= 9 {
        let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
        kinds.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    assert!(kinds.contains(&0x6), "the server pinged: {kinds:?}");
    assert!(!kinds.contains(&0x1), "no response headers: {kinds:?}");
}
