//! Cortex in services that run on axum: `ObserveLayer` on the server,
//! `ClientLayer` on the calls it makes. Two real axum apps on loopback
//! ports, a request carrying a `traceparent`, and one trace across both.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use cortex::metrics::{Format, Registry};
use cortex::tower::{ClientLayer, ObserveLayer};
use cortex::trace::{encode_otlp_json, SpanKind, Status, TraceId};
use cortex_tests::spans::installed;
use cortex_tests::{otlp_validate, Verdict};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};

type HttpClient = cortex::tower::ClientService<Client<HttpConnector, Full<Bytes>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<&'static Registry> = OnceLock::new();
    R.get_or_init(|| Box::leak(Box::new(Registry::new())))
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[cortex::traced]
async fn count_stock(sku: &str) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    sku.len() as u32
}

/// The downstream service: stock levels.
async fn inventory() -> SocketAddr {
    inventory_in(registry()).await
}

async fn inventory_in(registry: &'static Registry) -> SocketAddr {
    let app = Router::new()
        .route(
            "/stock/{sku}",
            get(|Path(sku): Path<String>| async move { count_stock(&sku).await.to_string() }),
        )
        .layer(ObserveLayer::with_registry(registry).unwrap());
    serve(app).await
}

#[derive(Clone)]
struct Orders {
    client: HttpClient,
    inventory: SocketAddr,
}

/// The service under test: an order looks its stock up downstream.
async fn orders(inventory: SocketAddr) -> SocketAddr {
    let client = ServiceBuilder::new()
        .layer(ClientLayer::with_registry(registry()).unwrap())
        .service(Client::builder(TokioExecutor::new()).build_http());
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|State(s): State<Orders>, Path(id): Path<u32>| async move {
                let uri = format!("http://{}/stock/sku-{id}", s.inventory);
                let request = http::Request::get(uri)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let response = s.client.clone().oneshot(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                format!("order {id}: {} in stock", String::from_utf8_lossy(&body))
            }),
        )
        .route(
            "/broken",
            get(|| async { (http::StatusCode::INTERNAL_SERVER_ERROR, "down") }),
        )
        .with_state(Orders { client, inventory })
        .layer(ObserveLayer::with_registry(registry()).unwrap());
    serve(app).await
}

async fn get_text(addr: SocketAddr, path: &str, traceparent: Option<&str>) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::get(format!("http://{addr}{path}"));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let response = client
        .request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn metric(text: &str, series: &str) -> Option<f64> {
    cortex_tests::value(text, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_across_two_axum_services() {
    let (tracer, exporter) = installed();
    let inventory = inventory().await;
    let orders = orders(inventory).await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{caller_trace}-00f067aa0ba902b7-01");
    let (status, body) = get_text(orders, "/orders/42", Some(&traceparent)).await;
    assert_eq!((status, body.as_str()), (200, "order 42: 6 in stock"));
    assert!(tracer.force_flush());
    let trace_id = TraceId::from_hex(caller_trace).unwrap();
    let spans: Vec<_> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let find = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "no span {name:?} in {:#?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let orders_server = find("GET /orders/{id}");
    let client = find("GET");
    let inventory_server = find("GET /stock/{sku}");
    let counted = find("tower::count_stock");
    assert_eq!(orders_server.kind, SpanKind::Server);
    assert_eq!(
        orders_server.parent_span_id.map(|p| p.to_hex()).as_deref(),
        Some("00f067aa0ba902b7"),
        "continues the caller's span"
    );
    assert!(orders_server.parent_is_remote);
    assert_eq!(client.kind, SpanKind::Client);
    assert_eq!(client.parent_span_id, Some(orders_server.span_id));
    assert_eq!(inventory_server.parent_span_id, Some(client.span_id));
    assert!(inventory_server.parent_is_remote);
    assert_eq!(counted.parent_span_id, Some(inventory_server.span_id));
    assert_eq!(spans.len(), 4, "{spans:#?}");
    assert_eq!(
        orders_server
            .attribute("http.route")
            .map(ToString::to_string)
            .as_deref(),
        Some("/orders/{id}")
    );
    assert_eq!(
        client
            .attribute("http.response.status_code")
            .map(ToString::to_string)
            .as_deref(),
        Some("200")
    );
    let body = encode_otlp_json("tower-test", &spans);
    match otlp_validate(&[body]) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("otlp_validate refused the trace: {why}"),
    }
    let text = registry().encode(Format::PrometheusText);
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_requests_total{method="GET",route="/orders/{id}",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_requests_total{method="GET",route="/stock/{sku}",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_client_requests_total{method="GET",host="127.0.0.1",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_request_duration_seconds_count{method="GET",route="/orders/{id}"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_an_error_and_an_unmatched_path_is_not_a_series_of_its_own() {
    let (tracer, exporter) = installed();
    let orders = orders(inventory().await).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let tp = format!("00-{trace}-b7ad6b7169203331-01");
    assert_eq!(get_text(orders, "/broken", Some(&tp)).await.0, 500);
    for id in 0..3 {
        assert_eq!(
            get_text(orders, &format!("/no/such/{id}"), None).await.0,
            404
        );
    }
    assert!(tracer.force_flush());
    let broken = exporter
        .spans()
        .into_iter()
        .find(|s| s.trace_id == TraceId::from_hex(trace).unwrap())
        .unwrap();
    assert_eq!(broken.name, "GET /broken");
    assert_eq!(broken.status, Status::Error("HTTP 500".into()));
    let text = registry().encode(Format::PrometheusText);
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_requests_total{method="GET",route="/broken",status="500"}"#
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &text,
            r#"cortex_http_requests_total{method="GET",route="unmatched",status="404"}"#
        )
        .is_some_and(|n| n >= 3.0),
        "{text}"
    );
    assert!(!text.contains("/no/such"), "raw paths never become labels");
}

#[tokio::test]
async fn a_panicking_service_is_counted_as_500_and_goes_on_unwinding() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let service = ServiceBuilder::new()
        .layer(
            ObserveLayer::with_registry(registry)
                .unwrap()
                .route_with(|_, _, _| Some("/boom".into())),
        )
        .service(tower::service_fn(|_req: http::Request<()>| async {
            if true {
                panic!("handler bug");
            }
            Ok::<_, Infallible>(http::Response::new(()))
        }));
    let joined = tokio::spawn(service.oneshot(http::Request::get("/boom").body(()).unwrap())).await;
    assert!(joined.unwrap_err().is_panic(), "the panic is not swallowed");
    let text = registry.encode(Format::PrometheusText);
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_requests_total{method="GET",route="/boom",status="500"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_transport_error_is_counted_as_error() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut client = ServiceBuilder::new()
        .layer(ClientLayer::with_registry(registry).unwrap())
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let request = http::Request::get(format!("http://localhost:{port}/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(client.ready().await.unwrap().call(request).await.is_err());
    let text = registry.encode(Format::PrometheusText);
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_client_requests_total{method="GET",host="localhost",status="error"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn semantic_convention_names_are_opt_in() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let layer = ObserveLayer::with_registry(registry)
        .unwrap()
        .semconv(registry)
        .unwrap()
        .route_with(|_, uri, _| (uri.path() == "/items").then(|| "/items".into()));
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, Infallible>(http::Response::new(()))
        }));
    for path in ["/items", "/items", "/elsewhere"] {
        service
            .clone()
            .oneshot(http::Request::post(path).body(()).unwrap())
            .await
            .unwrap();
    }
    let text = registry.encode(Format::PrometheusText);
    assert_eq!(
        metric(
            &text,
            r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/items",http_response_status_code="200"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="",http_response_status_code="200"}"#
        ),
        Some(1.0)
    );
    assert!(text.contains(r#"le="0.075""#), "the conventions' buckets");
    assert!(
        !text.contains("cortex_http_requests_total{"),
        "instead of Cortex's names"
    );
}

/// A gRPC-shaped body: one message, then trailers with the status.
struct GrpcBody(std::collections::VecDeque<http_body::Frame<Bytes>>);

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }
}

/// Answers `/shop.Orders/Get` with status 0 in trailers, `/shop.Orders/Fail`
/// trailers-only with 14 (UNAVAILABLE), anything else 12 (UNIMPLEMENTED).
async fn grpc_server(req: http::Request<()>) -> Result<http::Response<GrpcBody>, Infallible> {
    let trailers_only = |code: &'static str| {
        http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", code)
            .body(GrpcBody(Default::default()))
            .unwrap()
    };
    Ok(match req.uri().path() {
        "/shop.Orders/Get" => {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let frames = [
                http_body::Frame::data(Bytes::from_static(b"\0\0\0\0\0")),
                http_body::Frame::trailers(trailers),
            ];
            http::Response::builder()
                .header("content-type", "application/grpc")
                .body(GrpcBody(frames.into_iter().collect()))
                .unwrap()
        }
        "/shop.Orders/Fail" => trailers_only("14"),
        _ => trailers_only("12"),
    })
}

fn grpc_request(path: &str) -> http::Request<()> {
    http::Request::post(path)
        .header("content-type", "application/grpc")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn grpc_calls_are_labelled_by_service_and_method_with_their_status() {
    let (tracer, exporter) = installed();
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let service = ServiceBuilder::new()
        .layer(ObserveLayer::with_registry(registry).unwrap())
        .service(tower::service_fn(grpc_server));
    // A status in the trailers: known only once the body is read.
    let response = service
        .clone()
        .oneshot(grpc_request("/shop.Orders/Get"))
        .await
        .unwrap();
    let text = registry.encode(Format::PrometheusText);
    assert!(!text.contains("code=\"OK\""), "not before the trailers");
    let body = response.into_body().collect().await.unwrap();
    assert!(body.trailers().is_some(), "the trailers pass through");
    // Trailers-only, as servers answer errors.
    service
        .clone()
        .oneshot(grpc_request("/shop.Orders/Fail"))
        .await
        .unwrap();
    // Methods the server does not have share one series.
    for path in ["/shop.Orders/Nope", "/random.Path/x1", "/random.Path/x2"] {
        service.clone().oneshot(grpc_request(path)).await.unwrap();
    }
    // A body dropped before its trailers: the client went away.
    drop(
        service
            .clone()
            .oneshot(grpc_request("/shop.Orders/Get"))
            .await
            .unwrap(),
    );
    let text = registry.encode(Format::PrometheusText);
    let count = |labels: &str| {
        metric(
            &text,
            &format!("cortex_rpc_server_duration_seconds_count{{{labels}}}"),
        )
    };
    assert_eq!(
        count(r#"service="shop.Orders",method="Get",code="OK""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(r#"service="shop.Orders",method="Fail",code="UNAVAILABLE""#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"service="unknown",method="unknown",code="UNIMPLEMENTED""#),
        Some(3.0)
    );
    assert_eq!(
        count(r#"service="shop.Orders",method="Get",code="CANCELLED""#),
        Some(1.0)
    );
    assert!(!text.contains("random.Path"));
    assert!(
        !text.contains("cortex_http_requests_total{"),
        "gRPC calls are counted as RPCs"
    );
    assert!(tracer.force_flush());
    let spans = exporter.spans();
    let fail = spans.iter().find(|s| s.name == "shop.Orders/Fail").unwrap();
    assert_eq!(fail.status, Status::Error("UNAVAILABLE".into()));
    assert_eq!(
        fail.attribute("rpc.grpc.status_code")
            .map(ToString::to_string)
            .as_deref(),
        Some("14")
    );
    assert_eq!(
        fail.attribute("rpc.system")
            .map(ToString::to_string)
            .as_deref(),
        Some("grpc")
    );
    let ok = spans
        .iter()
        .find(|s| s.name == "shop.Orders/Get" && s.status == Status::Unset);
    assert!(ok.is_some(), "an OK call is not an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_calls_through_the_middleware_join_the_trace() {
    let (tracer, exporter) = installed();
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let inventory = inventory_in(registry).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(cortex::tower::ReqwestMiddleware::from_layer(
            ClientLayer::with_registry(registry).unwrap(),
        ))
        .build();
    let root = tracer.start("reqwest caller");
    let trace_id = root.context().trace_id().unwrap();
    let request = {
        let _in = root.enter();
        cortex::trace::in_current_span(async {
            client
                .get(format!("http://{inventory}/stock/abc"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    assert_eq!(request.await, "3");
    drop(root);
    assert!(tracer.force_flush());
    let spans: Vec<_> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let caller = spans.iter().find(|s| s.name == "reqwest caller").unwrap();
    let client_span = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    let server = spans.iter().find(|s| s.name == "GET /stock/{sku}").unwrap();
    assert_eq!(client_span.parent_span_id, Some(caller.span_id));
    assert_eq!(server.parent_span_id, Some(client_span.span_id));
    let text = registry.encode(Format::PrometheusText);
    assert_eq!(
        metric(
            &text,
            r#"cortex_http_client_requests_total{method="GET",host="127.0.0.1",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
}
