//! Response sizes before and after compression, for a few bodies, through
//! the same middleware the server uses.
//!
//! ```text
//! cargo run --example compression
//! ```

use cortex::http::compression::Compression;
use cortex::http::{Body, Method, Response};
use http::header;
use http_body_util::BodyExt;

fn response(content_type: &str, body: Vec<u8>) -> Response {
    let mut r = http::Response::new(Body::from(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    r
}

#[tokio::main]
async fn main() -> Result<(), cortex::http::BoxError> {
    // Some real /metrics output, after a few annotated calls.
    #[cortex::counted]
    #[cortex::timed]
    fn work(i: u64) -> u64 {
        i * 2
    }
    for i in 0..100 {
        work(i);
    }
    let metrics = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
    let json: String = (0..500)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"name\":\"order {i}\",\"status\":\"shipped\",\"total_cents\":{}}},",
                i * 137
            )
        })
        .collect();
    let random: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "/metrics",
            "text/plain; version=0.0.4",
            metrics.into_bytes(),
        ),
        (
            "orders JSON",
            "application/json",
            format!("[{}]", json.trim_end_matches(',')).into_bytes(),
        ),
        (
            "HTML page",
            "text/html",
            "<p>Hello, compression!</p>\n".repeat(400).into_bytes(),
        ),
        ("patterned bytes", "application/octet-stream", random),
        ("small JSON", "application/json", b"{\"ok\":true}".to_vec()),
        ("PNG image", "image/png", vec![0x89; 5000]),
    ];
    let compression = Compression::default().metrics_registry(None);
    println!(
        "{:<14} {:>9} {:>9} {:>9}   (bytes; br = brotli quality 4, gzip = level 6)",
        "body", "original", "br", "gzip"
    );
    for (name, content_type, body) in bodies {
        let mut sizes = Vec::new();
        for accept in ["br", "gzip"] {
            let r = compression.apply(
                &Method::GET,
                Some(accept),
                response(content_type, body.clone()),
            );
            let encoding = r
                .headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap_or("?").to_owned());
            let len = r.into_body().collect().await?.to_bytes().len();
            sizes.push(match encoding {
                Some(_) => len.to_string(),
                None => "as is".to_string(),
            });
        }
        println!(
            "{:<14} {:>9} {:>9} {:>9}",
            name,
            body.len(),
            sizes[0],
            sizes[1]
        );
    }
    println!("\n(small bodies are below the 1024-byte threshold; images are never compressed.)");
    Ok(())
}
