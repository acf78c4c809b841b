//! A real tonic service behind `ObserveLayer`, served over HTTP/2 on a
//! loopback port and called by tonic's generated client through
//! `ClientLayer`: RPC labels, status codes from the trailers, and one trace
//! from the client's span to the handler's.

use std::net::SocketAddr;

use cortex::metrics::{Format, Registry};
use cortex::tower::{ClientLayer, ObserveLayer};
use cortex::trace::{SpanKind, Status};
use cortex_tests::shop::orders_client::OrdersClient;
use cortex_tests::shop::orders_server::OrdersServer;
use cortex_tests::shop::{OrderRequest, Shop};
use cortex_tests::spans::installed;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;

/// Serves the shop over HTTP/2 (prior knowledge), observed.
async fn serve(registry: &'static Registry) -> SocketAddr {
    serve_with(ObserveLayer::with_registry(registry).unwrap()).await
}

async fn serve_with(layer: ObserveLayer) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(OrdersServer::new(Shop));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .http2_only()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_service_is_observed_by_the_rpc_conventions() {
    let (tracer, exporter) = installed();
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let addr = serve(registry).await;
    let channel = ServiceBuilder::new()
        .layer(ClientLayer::with_registry(registry).unwrap())
        .service(
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http::<tonic::body::BoxBody>(),
        );
    let mut client = OrdersClient::with_origin(channel, format!("http://{addr}").parse().unwrap());
    let root = tracer.start("grpc caller");
    let trace_id = root.context().trace_id().unwrap();
    let calls = {
        let _in = root.enter();
        cortex::trace::in_current_span(async move {
            let found = client
                .get(OrderRequest { id: 7 })
                .await
                .unwrap()
                .into_inner();
            let missing = client.get(OrderRequest { id: 0 }).await.unwrap_err();
            (found, missing)
        })
    };
    let (found, missing) = calls.await;
    assert_eq!(found.summary, "order 7: 2 items");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    drop(root);
    assert!(tracer.force_flush());

    let text = registry.encode(Format::PrometheusText);
    let count = |side: &str, labels: &str| {
        cortex_tests::value(
            &text,
            &format!("cortex_rpc_{side}_duration_seconds_count{{{labels}}}"),
        )
    };
    assert_eq!(
        count("server", r#"service="shop.Orders",method="Get",code="OK""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(
            "server",
            r#"service="shop.Orders",method="Get",code="NOT_FOUND""#
        ),
        Some(1.0)
    );
    assert_eq!(
        count("client", r#"service="shop.Orders",method="Get",code="OK""#),
        Some(1.0)
    );
    assert_eq!(
        count(
            "client",
            r#"service="shop.Orders",method="Get",code="NOT_FOUND""#
        ),
        Some(1.0)
    );
    assert!(
        !text.contains("cortex_http_client_requests_total{"),
        "gRPC calls are counted as RPCs"
    );

    let spans: Vec<_> = exporter
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "shop.Orders/Get" && s.kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 2, "{spans:#?}");
    let clients: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .collect();
    assert_eq!(clients.len(), 2);
    // The client's spans follow the RPC conventions too; a client fails on
    // every code but OK.
    assert!(clients.iter().all(|c| c.name == "shop.Orders/Get"));
    assert_eq!(
        clients
            .iter()
            .filter(|c| c.status == Status::Error("NOT_FOUND".into()))
            .count(),
        1,
        "{clients:#?}"
    );
    for server in &servers {
        assert_eq!(server.kind, SpanKind::Server);
        assert!(
            clients
                .iter()
                .any(|c| Some(c.span_id) == server.parent_span_id),
            "continues the client's trace"
        );
    }
    // NOT_FOUND is the caller's problem, not the server's: no error.
    assert!(
        servers.iter().all(|s| s.status == Status::Unset),
        "{servers:#?}"
    );
    let summarize = spans
        .iter()
        .find(|s| s.name == "cortex_tests::shop::summarize")
        .unwrap();
    assert!(
        servers
            .iter()
            .any(|s| Some(s.span_id) == summarize.parent_span_id),
        "the handler runs inside the server span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_convention_names_cover_rpcs_and_clients() {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    let addr = serve_with(
        ObserveLayer::with_registry(registry)
            .unwrap()
            .semconv(registry)
            .unwrap(),
    )
    .await;
    let channel = ServiceBuilder::new()
        .layer(
            ClientLayer::with_registry(registry)
                .unwrap()
                .semconv(registry)
                .unwrap(),
        )
        .service(
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http::<tonic::body::BoxBody>(),
        );
    let mut client =
        OrdersClient::with_origin(channel.clone(), format!("http://{addr}").parse().unwrap());
    client.get(OrderRequest { id: 3 }).await.unwrap();
    // A plain HTTP request through the same client layer, to a port that
    // is closed: no answer.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let http_client = ServiceBuilder::new()
        .layer(
            ClientLayer::with_registry(registry)
                .unwrap()
                .semconv(registry)
                .unwrap(),
        )
        .service(
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>(),
        );
    let request = http::Request::get(format!("http://{closed}/"))
        .body(http_body_util::Empty::new())
        .unwrap();
    assert!(tower::ServiceExt::oneshot(http_client, request)
        .await
        .is_err());
    let text = registry.encode(Format::PrometheusText);
    let count = |series: &str| cortex_tests::value(&text, series);
    assert_eq!(
        count(
            r#"rpc_server_call_duration_seconds_count{rpc_system="grpc",rpc_service="shop.Orders",rpc_method="Get",rpc_grpc_status_code="0"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(
            r#"rpc_client_call_duration_seconds_count{rpc_system="grpc",rpc_service="shop.Orders",rpc_method="Get",rpc_grpc_status_code="0"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        count(
            r#"http_client_request_duration_seconds_count{http_request_method="GET",server_address="127.0.0.1",http_response_status_code="",error_type="transport"}"#
        ),
        Some(1.0)
    );
    assert!(!text.contains("cortex_rpc_server_duration_seconds_count{"));
}
