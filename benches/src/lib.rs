//! What the criterion benches share.

use std::time::Duration;

/// Criterion settings for every bench: a short warm-up and `measure_secs`
/// of measurement per case, so a whole bench runs in a few minutes on the
/// 2-core CI machine.
pub fn config(measure_secs: u64) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(measure_secs))
}

/// Runs `op` `iters` times on each of `threads` OS threads at once (all
/// started together) and returns the time per operation per thread, scaled
/// back to `iters` operations: what one call costs while every thread is
/// busy with the same instance.
pub fn on_threads<F>(threads: usize, iters: u64, op: F) -> Duration
where
    F: Fn() + Sync,
{
    let start = std::sync::Barrier::new(threads);
    let total: Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let t = std::time::Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .sum()
    });
    total / u32::try_from(threads).unwrap_or(1)
}

/// Every core of the machine (at least 2).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Sends `total` GET requests for `path` over `connections` keep-alive
/// HTTP/1.1 connections to `addr` (each answer read whole, each must be
/// 200) and returns how long they took.
pub async fn load(
    addr: std::net::SocketAddr,
    path: &'static str,
    total: u64,
    connections: u64,
) -> Duration {
    use http_body_util::BodyExt;
    let per = total.div_ceil(connections);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            for _ in 0..per {
                let req = http::Request::get(path)
                    .header(http::header::HOST, "bench")
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap();
                let resp = sender.send_request(req).await.unwrap();
                assert_eq!(resp.status(), 200);
                let _ = resp.into_body().collect().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}
