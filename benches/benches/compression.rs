//! The compression middleware's throughput against the raw `flate2` and
//! `brotli` encoders on the same data, and against tower-http's
//! `CompressionLayer` at the same quality, in the same run.
//!
//! ```text
//! cargo bench -p cortex-benches --bench compression
//! ```

use std::io::Write;

use bytes::Bytes;
use cortex::http::compression::Compression;
use cortex::http::{Body, Method};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};

/// About 1 MiB of JSON, the kind of body an API serves.
fn data() -> Bytes {
    let s: String = (0..12_000)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"name\":\"order {i}\",\"status\":\"shipped\",\"cents\":{}}},",
                i * 137 % 9973
            )
        })
        .collect();
    Bytes::from(s)
}

fn compression(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let data = data();
    for (name, accept) in [("gzip_level_6", "gzip"), ("brotli_quality_4", "br")] {
        let mut g = c.benchmark_group(format!("compress_1mib_json_{name}"));
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.sample_size(20);
        g.bench_function("raw_encoder", |b| {
            b.iter(|| {
                if accept == "gzip" {
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
                    e.write_all(&data).unwrap();
                    e.finish().unwrap().len()
                } else {
                    let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, 4, 22);
                    e.write_all(&data).unwrap();
                    e.into_inner().len()
                }
            })
        });
        let cortex = Compression::default().metrics_registry(None);
        g.bench_function("cortex_middleware", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut r = http::Response::new(Body::from(data.clone()));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        "application/json".parse().unwrap(),
                    );
                    let r = cortex.apply(&Method::GET, Some(accept), r);
                    r.into_body().collect().await.unwrap().to_bytes().len()
                })
            })
        });
        let quality = if accept == "gzip" { 6 } else { 4 };
        let layer = tower_http::compression::CompressionLayer::new()
            .quality(tower_http::CompressionLevel::Precise(quality));
        let d = data.clone();
        let mut svc = layer.layer(tower::service_fn(
            move |_req: http::Request<Full<Bytes>>| {
                let d = d.clone();
                async move {
                    let mut r = http::Response::new(Full::new(d));
                    r.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        "application/json".parse().unwrap(),
                    );
                    Ok::<_, std::convert::Infallible>(r)
                }
            },
        ));
        g.bench_function("tower_http", |b| {
            b.iter(|| {
                rt.block_on(async {
                    let req = http::Request::builder()
                        .header(http::header::ACCEPT_ENCODING, accept)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let r = svc.ready().await.unwrap().call(req).await.unwrap();
                    r.into_body().collect().await.unwrap().to_bytes().len()
                })
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = cortex_benches::config(3);
    targets = compression
}
criterion_main!(benches);
