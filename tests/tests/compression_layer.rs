//! `CompressionLayer` in a real tower stack (an axum router, as a user
//! mounts it): what is compressed, how, and what is left alone.

use std::io::Read;

use axum::routing::{get, post};
use axum::Router;
use cortex::http::compression::{Compression, CompressionLayer};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn page() -> String {
    (0..400)
        .map(|i| format!("line {i} of the report\n"))
        .collect()
}

fn app() -> Router {
    Router::new()
        .route("/report", get(|| async { page() }))
        .route("/tiny", get(|| async { "ok" }))
        .route(
            "/photo",
            get(|| async { ([(http::header::CONTENT_TYPE, "image/png")], page()) }),
        )
        .route("/submit", post(|| async { page() }))
        .layer(CompressionLayer::new(
            Compression::default().metrics_registry(None),
        ))
}

async fn call(method: &str, path: &str, accept: Option<&str>) -> (http::response::Parts, Vec<u8>) {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(a) = accept {
        req = req.header(http::header::ACCEPT_ENCODING, a);
    }
    let response = app()
        .oneshot(req.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts, bytes)
}

fn header<'a>(parts: &'a http::response::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn gzip_and_brotli_bodies_decode_to_the_original() {
    let (parts, body) = call("GET", "/report", Some("gzip")).await;
    assert_eq!(parts.status, 200);
    assert_eq!(header(&parts, "content-encoding"), Some("gzip"));
    assert_eq!(header(&parts, "vary"), Some("accept-encoding"));
    assert_eq!(header(&parts, "content-length"), None);
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, page());
    assert!(body.len() < page().len() / 4, "{} bytes", body.len());

    let (parts, body) = call("GET", "/report", Some("gzip, br")).await;
    assert_eq!(header(&parts, "content-encoding"), Some("br"));
    let mut plain = String::new();
    brotli::Decompressor::new(&body[..], 4096)
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, page());
}

#[tokio::test]
async fn what_does_not_pay_or_may_not_be_changed_goes_as_is() {
    // No Accept-Encoding, a small body, an image, a HEAD.
    for (method, path, accept) in [
        ("GET", "/report", None),
        ("GET", "/tiny", Some("gzip")),
        ("GET", "/photo", Some("gzip")),
        ("HEAD", "/report", Some("gzip")),
    ] {
        let (parts, body) = call(method, path, accept).await;
        assert_eq!(parts.status, 200, "{method} {path}");
        assert_eq!(header(&parts, "content-encoding"), None, "{method} {path}");
        if method == "GET" && path == "/report" {
            assert_eq!(body, page().as_bytes());
        }
    }
}

#[tokio::test]
async fn nothing_acceptable_is_406_for_a_get_and_identity_for_a_post() {
    let (parts, body) = call("GET", "/report", Some("identity;q=0, zstd")).await;
    assert_eq!(parts.status, 406);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "none of the accepted content codings is available (br, gzip, identity)\n"
    );
    // The POST's handler already ran: its answer goes out uncompressed.
    let (parts, body) = call("POST", "/submit", Some("identity;q=0, zstd")).await;
    assert_eq!(parts.status, 200);
    assert_eq!(header(&parts, "content-encoding"), None);
    assert_eq!(body, page().as_bytes());
}
