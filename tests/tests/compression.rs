//! Response compression and request decompression.

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use cortex::http::compression::Compression;
use cortex::http::{text, Body, Method, Request, Response, Server, StatusCode};
use cortex::metrics::Registry;
use cortex_tests::bodies::Chunks;
use cortex_tests::raw;
use http::header;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn quiet() -> Compression {
    Compression::default().metrics_registry(None)
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn payload(n: usize) -> String {
    (0..n)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

fn response(ct: &str, body: impl Into<Body>) -> Response {
    let mut r = http::Response::new(body.into());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, ct.parse().unwrap());
    r
}

async fn collect(r: Response) -> Vec<u8> {
    r.into_body().collect().await.unwrap().to_bytes().to_vec()
}

#[tokio::test]
async fn round_trips_with_the_reference_decoders() {
    let text = payload(2000);
    for (accept, decode) in [("gzip", gunzip as fn(&[u8]) -> Vec<u8>), ("br", unbrotli)] {
        let r = quiet().apply(
            &Method::GET,
            Some(accept),
            response("text/plain", text.clone()),
        );
        assert_eq!(r.headers()[header::CONTENT_ENCODING], accept);
        let compressed = collect(r).await;
        assert!(
            compressed.len() * 5 < text.len(),
            "{accept}: {} -> {}",
            text.len(),
            compressed.len()
        );
        assert_eq!(decode(&compressed), text.as_bytes());
    }
}

#[tokio::test]
async fn headers_on_compressed_and_uncompressed_responses() {
    let mut r = response("application/json", payload(100));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, "99999".parse().unwrap());
    r.headers_mut()
        .insert(header::ACCEPT_RANGES, "bytes".parse().unwrap());
    r.headers_mut()
        .insert(header::VARY, "Origin".parse().unwrap());
    let r = quiet().apply(&Method::GET, Some("gzip"), r);
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
    assert!(r.headers().get(header::ACCEPT_RANGES).is_none());
    let vary: Vec<_> = r.headers().get_all(header::VARY).iter().collect();
    assert_eq!(vary, ["Origin", "accept-encoding"]);

    // Vary is never duplicated.
    let mut r = response("text/html", payload(100));
    r.headers_mut()
        .insert(header::VARY, "Accept-Encoding".parse().unwrap());
    let r = quiet().apply(&Method::GET, Some("br"), r);
    assert_eq!(r.headers().get_all(header::VARY).iter().count(), 1);

    // A compressible type sent as is (the client asked for nothing) still varies.
    let r = quiet().apply(&Method::GET, None, response("text/html", payload(100)));
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    assert_eq!(r.headers()[header::VARY], "accept-encoding");
    // An image does not vary.
    let r = quiet().apply(
        &Method::GET,
        Some("gzip"),
        response("image/png", vec![0u8; 5000]),
    );
    assert!(r.headers().get(header::VARY).is_none());
}

#[tokio::test]
async fn every_skip_rule() {
    let big = || payload(200);
    let compressed = |r: &Response| r.headers().contains_key(header::CONTENT_ENCODING);
    let c = quiet();
    // Skipped by type.
    for ct in [
        "image/png",
        "audio/ogg",
        "video/mp4",
        "application/zip",
        "application/gzip",
        "text/event-stream",
    ] {
        let r = c.apply(&Method::GET, Some("gzip"), response(ct, big()));
        assert!(!compressed(&r), "{ct}");
    }
    // SVG is an image worth compressing.
    assert!(compressed(&c.apply(
        &Method::GET,
        Some("gzip"),
        response("image/svg+xml", big())
    )));
    // Already encoded.
    let mut r = response("text/plain", big());
    r.headers_mut()
        .insert(header::CONTENT_ENCODING, "deflate".parse().unwrap());
    let r = c.apply(&Method::GET, Some("gzip"), r);
    assert_eq!(r.headers()[header::CONTENT_ENCODING], "deflate");
    // Partial content.
    let mut r = response("text/plain", big());
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    r.headers_mut()
        .insert(header::CONTENT_RANGE, "bytes 0-99/5000".parse().unwrap());
    assert!(!compressed(&c.apply(&Method::GET, Some("gzip"), r)));
    // HEAD.
    assert!(!compressed(&c.apply(
        &Method::HEAD,
        Some("gzip"),
        response("text/plain", big())
    )));
    // 204, 304, 1xx.
    for status in [
        StatusCode::NO_CONTENT,
        StatusCode::NOT_MODIFIED,
        StatusCode::CONTINUE,
    ] {
        let mut r = response("text/plain", big());
        *r.status_mut() = status;
        assert!(
            !compressed(&c.apply(&Method::GET, Some("gzip"), r)),
            "{status}"
        );
    }
    // no-transform.
    let mut r = response("text/plain", big());
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        "max-age=60, no-transform".parse().unwrap(),
    );
    assert!(!compressed(&c.apply(&Method::GET, Some("gzip"), r)));
    // Below the threshold; unknown size is compressed.
    assert!(!compressed(&c.apply(
        &Method::GET,
        Some("gzip"),
        response("text/plain", "tiny")
    )));
    let unknown = Body::new(Chunks {
        left: 1,
        chunk: Bytes::from_static(b"tiny"),
    });
    assert!(compressed(&c.apply(
        &Method::GET,
        Some("gzip"),
        response("text/plain", unknown)
    )));
    // The skip list is configurable.
    let custom = quiet()
        .skip_list(&["text/plain"])
        .compress_content_type("image/png");
    assert!(!compressed(&custom.apply(
        &Method::GET,
        Some("gzip"),
        response("text/plain", big())
    )));
    assert!(compressed(&custom.apply(
        &Method::GET,
        Some("gzip"),
        response("image/png", big())
    )));
    // Refusing identity and every coding we have: 406.
    let r = c.apply(
        &Method::GET,
        Some("identity;q=0, deflate"),
        response("text/plain", big()),
    );
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
}

/// A body fed from a channel: what the handler sends, when it sends it.
struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

#[tokio::test]
async fn a_flushed_chunk_reaches_the_client_before_the_body_ends() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let rx = std::sync::Mutex::new(Some(rx));
    let server = Server::new()
        .compression(Some(quiet()))
        .route(Method::GET, "/events", move |_req: Request| {
            let rx = rx.lock().unwrap().take().expect("one request");
            async move { response("application/json", Body::new(Channel(rx))) }
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET /events HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    tx.send(Bytes::from_static(b"{\"first\":true}\n"))
        .await
        .unwrap();
    // Read until the head and some body bytes have arrived, with the body
    // still open.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((_, body)) = text.split_once("\r\n\r\n") {
                if body.len() > 10 {
                    break;
                }
            }
        }
    })
    .await
    .expect("the first chunk arrives while the body is still open");
    tx.send(Bytes::from_static(b"{\"second\":true}\n"))
        .await
        .unwrap();
    drop(tx);
    stream.read_to_end(&mut got).await.unwrap();
    let r = raw::parse(&got);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let body_start = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let body = dechunk(&got[body_start..]);
    assert_eq!(gunzip(&body), b"{\"first\":true}\n{\"second\":true}\n");
    server.shutdown(Duration::from_secs(1)).await;
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = s.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&s[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&s[line_end + 2..line_end + 2 + size]);
        s = &s[line_end + 2 + size + 2..];
    }
}

async fn upload_server(limit: usize) -> cortex::http::RunningServer {
    Server::new()
        .compression(Some(quiet().decode_requests(limit)))
        .route(Method::POST, "/upload", |req: Request| async move {
            format!("{} bytes\n", req.body().len())
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

async fn post_raw(addr: std::net::SocketAddr, encoding: &str, body: &[u8]) -> raw::Response {
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw::exchange(addr, &req).await
}

#[tokio::test]
async fn compressed_requests_are_decoded_within_a_limit() {
    let server = upload_server(1024 * 1024).await;
    let addr = server.local_addr();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&[7u8; 5000]).unwrap();
    let r = post_raw(addr, "gzip", &gz.finish().unwrap()).await;
    assert_eq!((r.status, r.body.as_str()), (200, "5000 bytes\n"));

    let mut br = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    br.write_all(&[1u8; 3000]).unwrap();
    let r = post_raw(addr, "br", &br.into_inner()).await;
    assert_eq!((r.status, r.body.as_str()), (200, "3000 bytes\n"));

    // A bomb: 100 MiB of zeros in about 100 KiB. Refused, not unpacked.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..100 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 200 * 1024);
    assert_eq!(post_raw(addr, "gzip", &bomb).await.status, 413);

    assert_eq!(post_raw(addr, "gzip", b"not gzip at all").await.status, 400);
    assert_eq!(post_raw(addr, "zstd", b"whatever").await.status, 415);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_server_compresses_and_counts() {
    let registry = leak(Registry::new());
    let server = Server::new()
        .compression(Some(
            Compression::default().metrics_registry(Some(registry)),
        ))
        .route(Method::GET, "/report", |_req: Request| async {
            text(StatusCode::OK, payload(500))
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let r = raw::get(addr, "/report", &["Accept-Encoding: br;q=1.0, gzip;q=0.8"]).await;
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(
        raw::get(addr, "/report", &["Accept-Encoding: identity;q=0"])
            .await
            .status,
        406
    );
    let plain = raw::get(addr, "/report", &[]).await;
    assert!(plain.header("content-encoding").is_none());
    assert_eq!(plain.header("vary"), Some("accept-encoding"));
    let text = registry.encode(cortex::metrics::Format::PrometheusText);
    assert!(
        text.contains("cortex_http_compressed_responses_total{encoding=\"br\"} 1"),
        "{text}"
    );
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit_once(' '))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap()
    };
    let (bytes_in, bytes_out) = (
        value("cortex_http_compression_in_bytes_total{encoding=\"br\"}"),
        value("cortex_http_compression_out_bytes_total{encoding=\"br\"}"),
    );
    assert_eq!(bytes_in, payload(500).len() as f64);
    assert!(
        bytes_out > 0.0 && bytes_out * 5.0 < bytes_in,
        "{bytes_in} -> {bytes_out}"
    );
    server.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn a_406_only_replaces_a_response_that_would_have_been_compressed() {
    let big = || payload(200);
    let compressed = |r: &Response| r.headers().contains_key(header::CONTENT_ENCODING);
    let c = quiet();
    let refuse = Some("identity;q=0, deflate");
    // Would have been compressed, safe method: 406.
    let r = c.apply(&Method::GET, refuse, response("text/plain", big()));
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    // Not compressed anyway: sent as identity, status kept.
    let mut no_content = response("text/plain", Body::empty());
    *no_content.status_mut() = StatusCode::NO_CONTENT;
    let mut not_modified = response("text/plain", Body::empty());
    *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
    let mut encoded = response("text/plain", big());
    encoded
        .headers_mut()
        .insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
    for (name, method, r, status) in [
        ("204", Method::GET, no_content, StatusCode::NO_CONTENT),
        ("304", Method::GET, not_modified, StatusCode::NOT_MODIFIED),
        (
            "HEAD",
            Method::HEAD,
            response("text/plain", big()),
            StatusCode::OK,
        ),
        (
            "image",
            Method::GET,
            response("image/png", big()),
            StatusCode::OK,
        ),
        ("encoded", Method::GET, encoded, StatusCode::OK),
        (
            "small",
            Method::GET,
            response("text/plain", "tiny"),
            StatusCode::OK,
        ),
        // The handler of a POST already ran: its answer is not lost.
        (
            "POST",
            Method::POST,
            response("text/plain", big()),
            StatusCode::OK,
        ),
    ] {
        let out = c.apply(&method, refuse, r);
        assert_eq!(out.status(), status, "{name}");
        if name == "encoded" {
            assert_eq!(
                out.headers()[header::CONTENT_ENCODING],
                "gzip",
                "left as is"
            );
        } else {
            assert!(!compressed(&out), "{name}");
        }
    }
}

#[test]
fn a_strong_etag_turns_weak_when_the_body_is_compressed() {
    let big = || payload(200);
    let compressed = |r: &Response| r.headers().contains_key(header::CONTENT_ENCODING);
    let c = quiet();
    let tagged = |tag: &str| {
        let mut r = response("text/plain", big());
        r.headers_mut().insert(header::ETAG, tag.parse().unwrap());
        r
    };
    let out = c.apply(&Method::GET, Some("gzip"), tagged("\"v1\""));
    assert!(compressed(&out));
    assert_eq!(out.headers()[header::ETAG], "W/\"v1\"");
    let weak = c.apply(&Method::GET, Some("gzip"), tagged("W/\"v2\""));
    assert_eq!(weak.headers()[header::ETAG], "W/\"v2\"");
    // Sent as is: the tag stays strong.
    let plain = c.apply(&Method::GET, None, tagged("\"v3\""));
    assert_eq!(plain.headers()[header::ETAG], "\"v3\"");
}

#[tokio::test]
async fn a_route_can_turn_compression_off() {
    let registry: &'static cortex::metrics::Registry =
        Box::leak(Box::new(cortex::metrics::Registry::new()));
    let server = Server::new()
        .metrics_registry(registry)
        .route_with(
            Method::GET,
            "/secret",
            |_req: Request| async { text(StatusCode::OK, payload(5000)) },
            cortex::http::RouteOptions::default().compress(false),
        )
        .unwrap()
        .route(Method::GET, "/public", |_req: Request| async {
            text(StatusCode::OK, payload(5000))
        })
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    let secret = raw::get(addr, "/secret", &["Accept-Encoding: gzip"]).await;
    assert_eq!(secret.status, 200);
    assert!(secret.header("content-encoding").is_none());
    let public = raw::get(addr, "/public", &["Accept-Encoding: gzip"]).await;
    assert_eq!(public.header("content-encoding"), Some("gzip"));
}
