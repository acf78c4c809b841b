//! The policies as tower layers: the same instances the attributes use,
//! around an axum route and around a client service.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use axum::Router;
use cortex::resilience::tower::{
    rejection_response, BoxError, BulkheadLayer, CircuitBreakerLayer, GrpcFailures, RateLimitLayer,
    RetryLayer, TimeoutLayer,
};
use cortex::resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, Error, RateLimiter,
    RateLimiterConfig, Retry, RetryConfig, State, Timeout, Window,
};
use tower::{Service, ServiceBuilder, ServiceExt};

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(
        name,
        CircuitBreakerConfig {
            failure_rate: 50,
            minimum_calls: 4,
            window: Window::Count(4),
            open_for: Duration::from_secs(30),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Answers `status` and counts its calls.
fn answering(
    status: u16,
    calls: &Arc<AtomicU32>,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<()>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let calls = Arc::clone(calls);
    tower::service_fn(move |_req: http::Request<()>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut r = http::Response::new(());
            *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
            Ok::<_, Infallible>(r)
        }
    })
}

fn get_request() -> http::Request<()> {
    http::Request::get("http://payments/charge")
        .body(())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_route_behind_a_breaker_opens_on_5xx_and_answers_503() {
    let payments = breaker("tower-axum-payments");
    let failing = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&failing);
    let app = Router::new()
        .route(
            "/charge",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { (http::StatusCode::BAD_GATEWAY, "card network down") }
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: BoxError| async move {
                    rejection_response::<axum::body::Body>(&e).unwrap_or_else(|| {
                        http::Response::builder()
                            .status(500)
                            .body(axum::body::Body::empty())
                            .unwrap()
                    })
                }))
                .layer(CircuitBreakerLayer::new(payments.clone())),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let response = client
            .get(format!("http://{addr}/charge").parse().unwrap())
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 503 {
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(statuses, [502, 502, 502, 502, 503, 503]);
    assert_eq!(
        failing.load(Ordering::SeqCst),
        4,
        "open: the handler is not called"
    );
    assert_eq!(
        payments.state(),
        State::Open,
        "the same instance the attributes see"
    );
    let secs: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((29..=30).contains(&secs), "{secs}");
}

#[tokio::test]
async fn grpc_non_ok_statuses_are_failures() {
    let b = breaker("tower-grpc");
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |_req: http::Request<()>| {
        c.fetch_add(1, Ordering::SeqCst);
        async {
            // A trailers-only gRPC answer: HTTP 200, `grpc-status: 14`
            // (UNAVAILABLE).
            let r = http::Response::builder()
                .header("content-type", "application/grpc")
                .header("grpc-status", "14")
                .body(())
                .unwrap();
            Ok::<_, Infallible>(r)
        }
    });
    let mut svc = ServiceBuilder::new()
        .layer(CircuitBreakerLayer::new(b.clone()).classify(GrpcFailures))
        .service(svc);
    for _ in 0..4 {
        assert!(svc.ready().await.unwrap().call(get_request()).await.is_ok());
    }
    assert_eq!(b.state(), State::Open);
    let refused = svc
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap_err();
    assert!(matches!(
        cortex::resilience::rejection_in(&*refused),
        Some(Error::CircuitOpen { .. })
    ));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn retry_repeats_5xx_and_returns_the_last_answer() {
    let calls = Arc::new(AtomicU32::new(0));
    let retry = Retry::new(
        "tower-retry",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry))
        .service(answering(503, &calls));
    let response = svc
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "the last answer, as it is");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // A 4xx is the caller's mistake: not retried.
    let calls = Arc::new(AtomicU32::new(0));
    let retry = Retry::new(
        "tower-retry-404",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry))
        .service(answering(404, &calls));
    assert_eq!(
        svc.ready()
            .await
            .unwrap()
            .call(get_request())
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Answers 429 with `Retry-After: 1` the first time, 200 after.
fn busy_once(
    calls: &Arc<AtomicU32>,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<()>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let c = Arc::clone(calls);
    tower::service_fn(move |_req: http::Request<()>| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            let r = if n == 0 {
                http::Response::builder()
                    .status(429)
                    .header("retry-after", "1")
                    .body(())
                    .unwrap()
            } else {
                http::Response::new(())
            };
            Ok::<_, Infallible>(r)
        }
    })
}

fn too_many_or_5xx(r: &Result<http::Response<()>, BoxError>) -> bool {
    r.as_ref()
        .map_or(true, |r| r.status() == 429 || r.status().is_server_error())
}

#[tokio::test]
async fn retry_honours_retry_after() {
    // Backoff of 500 ms then 1 s: the remaining attempts would wait 1.5 s,
    // so a `Retry-After: 1` is waited for, and the second attempt succeeds.
    let calls = Arc::new(AtomicU32::new(0));
    let retry = Retry::new(
        "tower-retry-after",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry).classify(too_many_or_5xx))
        .service(busy_once(&calls));
    let started = std::time::Instant::now();
    let response = svc
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited as asked: {:?}",
        started.elapsed()
    );
    // Backoff of 1 ms: its attempts would all be made within the second the
    // server asked for, so none is made, and the 429 is the answer.
    let calls = Arc::new(AtomicU32::new(0));
    let retry = Retry::new(
        "tower-retry-after-short",
        RetryConfig {
            max: 3,
            delay: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(retry).classify(too_many_or_5xx))
        .service(busy_once(&calls));
    let response = svc
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the server is not hammered"
    );
}

#[tokio::test]
async fn timeout_bulkhead_and_rate_limit_refuse_with_their_answers() {
    let slow = tower::service_fn(|_req: http::Request<()>| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok::<_, Infallible>(http::Response::new(()))
    });
    let mut timed = ServiceBuilder::new()
        .layer(TimeoutLayer::new(
            Timeout::new("tower-timeout", Duration::from_millis(20)).unwrap(),
        ))
        .service(slow);
    let e = timed
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap_err();
    assert_eq!(rejection_response::<String>(&e).unwrap().status(), 504);

    let bulkhead = Bulkhead::new(
        "tower-bulkhead",
        BulkheadConfig {
            max_concurrent: 1,
            max_wait: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    let mut held = ServiceBuilder::new()
        .layer(BulkheadLayer::new(bulkhead))
        .service(slow);
    let first = held.ready().await.unwrap().call(get_request());
    let first = tokio::spawn(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = held
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap_err();
    assert_eq!(rejection_response::<String>(&e).unwrap().status(), 503);
    assert!(first.await.unwrap().is_ok());

    let limiter = RateLimiter::new(
        "tower-rate",
        RateLimiterConfig {
            permits: 1,
            period: Duration::from_secs(60),
            max_wait: Duration::ZERO,
        },
    )
    .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let mut limited = ServiceBuilder::new()
        .layer(RateLimitLayer::new(limiter))
        .service(answering(200, &calls));
    assert!(limited
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .is_ok());
    let e = limited
        .ready()
        .await
        .unwrap()
        .call(get_request())
        .await
        .unwrap_err();
    let answer = rejection_response::<String>(&e).unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(
        answer.body(),
        "rate limiter `tower-rate` has no permit left\n"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // An error of the service itself is not a rejection.
    let own: BoxError = "connection reset".into();
    assert!(rejection_response::<String>(&own).is_none());
}
