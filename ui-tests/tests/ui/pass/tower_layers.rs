// The layers take the services people already have, with their usual
// bounds: an axum `Router` (through `Router::layer`, which wants a `Clone`
// service with an infallible error: ObserveLayer keeps the service's own
// error), axum with a policy behind `HandleErrorLayer`, a tonic generated
// server, and a hyper client.
use std::convert::Infallible;

use axum::error_handling::HandleErrorLayer;
use axum::routing::get;
use cortex::resilience::tower::{rejection_response, BoxError, CircuitBreakerLayer, RetryLayer};
use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig, Retry, RetryConfig};
use cortex::tower::{ClientLayer, ObserveLayer};
use tower::ServiceBuilder;

fn axum_app() -> axum::Router {
    let breaker = CircuitBreaker::new("ui-tower", CircuitBreakerConfig::default()).unwrap();
    axum::Router::new()
        .route("/orders/{id}", get(|| async { "ok" }))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: BoxError| async move {
                    rejection_response::<axum::body::Body>(&e).unwrap_or_default()
                }))
                .layer(CircuitBreakerLayer::new(breaker)),
        )
        .layer(ObserveLayer::new())
}

fn tonic_server() -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<cortex::tower::ObservedBody<tonic::body::BoxBody>>,
    Error = Infallible,
> + Clone {
    ServiceBuilder::new()
        .layer(ObserveLayer::new())
        .service(cortex_tests::shop::orders_server::OrdersServer::new(cortex_tests::shop::Shop))
}

fn hyper_client() -> impl tower::Service<
    http::Request<http_body_util::Full<bytes::Bytes>>,
    Response = http::Response<cortex::tower::ObservedBody<hyper::body::Incoming>>,
    Error = BoxError,
> + Clone {
    let retry = Retry::new("ui-tower", RetryConfig::default()).unwrap();
    ServiceBuilder::new()
        .layer(RetryLayer::new(retry))
        .layer(ClientLayer::new())
        .service(
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http(),
        )
}

fn main() {
    let _ = axum_app();
    let _ = tonic_server();
    let _ = hyper_client();
}
