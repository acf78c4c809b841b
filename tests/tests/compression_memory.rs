//! A gigabyte response body streams through the compression middleware
//! while the process's memory stays bounded. Its own test binary, so no
//! other test's allocations count against it.

use std::io::Write;

use bytes::Bytes;
use cortex::http::compression::Compression;
use cortex::http::{Body, Method};
use cortex_tests::bodies::Chunks;
use http::header;
use http_body_util::BodyExt;

fn payload(n: usize) -> String {
    (0..n)
        .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
        .collect()
}

fn response(ct: &str, body: Body) -> cortex::http::Response {
    let mut r = http::Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, ct.parse().unwrap());
    r
}

fn quiet() -> Compression {
    Compression::default().metrics_registry(None)
}

fn resident_mib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096 / (1024 * 1024)
}

#[tokio::test]
async fn a_gigabyte_streams_through_in_bounded_memory() {
    const CHUNK: usize = 256 * 1024;
    const GIB: u64 = 1 << 30;
    let chunk = Bytes::from(payload(CHUNK / 50).into_bytes()[..CHUNK].to_vec());
    let body = Body::new(Chunks {
        left: GIB / CHUNK as u64,
        chunk,
    });
    let before = resident_mib();
    let r = quiet()
        .gzip_level(1)
        .apply(&Method::GET, Some("gzip"), response("text/plain", body));
    let mut body = r.into_body();
    let (mut bytes_out, mut peak) = (0u64, 0u64);
    let mut decoder = flate2::write::GzDecoder::new(CountingSink(0));
    let mut frames = 0u64;
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        bytes_out += data.len() as u64;
        decoder.write_all(&data).unwrap();
        frames += 1;
        if frames % 512 == 0 {
            peak = peak.max(resident_mib());
        }
    }
    let decoded = decoder.finish().unwrap().0;
    assert_eq!(decoded, GIB, "every byte made it through");
    assert!(bytes_out < GIB / 10, "compressed to {bytes_out} bytes");
    assert!(
        peak < before + 64,
        "resident memory grew from {before} MiB to {peak} MiB"
    );
}

struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
