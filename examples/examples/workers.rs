//! CPU work offloaded to the worker pool from async code, with a panicking
//! and a hanging task shown surviving.
//!
//! ```text
//! cargo run --example workers
//! ```

use std::time::{Duration, Instant};

use cortex::workers::{PoolOptions, TaskError, WorkerPool};

/// Deliberately CPU-heavy: a few rounds of FNV over the input.
fn checksum(data: &[u8], rounds: u32) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for _ in 0..rounds {
        for b in data {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[tokio::main]
async fn main() -> Result<(), TaskError> {
    std::panic::set_hook(Box::new(|_| {}));
    // Each worker keeps a scratch buffer: per-worker state, rebuilt if a
    // task panics.
    let pool = WorkerPool::with_state(
        PoolOptions::named("checksums")
            .threads(2)
            .queue(64)
            .timeout(Duration::from_millis(300)),
        || Vec::<u8>::with_capacity(1 << 20),
    );

    println!("1. Ordinary CPU work, awaited from async code:");
    for size in [64 * 1024, 256 * 1024, 1024 * 1024] {
        let started = Instant::now();
        let sum = pool
            .submit(move |scratch: &mut Vec<u8>| {
                scratch.clear();
                scratch.extend((0..size).map(|i| (i % 251) as u8));
                checksum(scratch, 20)
            })
            .await?
            .await?;
        println!(
            "   {size:>8} bytes x20 -> {sum:016x} in {:?}",
            started.elapsed()
        );
    }

    println!("2. A task that panics: the caller gets the message, the worker is replaced.");
    let boom = pool
        .submit(|_: &mut Vec<u8>| -> u64 { panic!("corrupt input at byte 17") })
        .await?
        .await;
    println!("   {boom:?}");

    println!("3. A task that hangs past the 300 ms timeout: answered at the deadline.");
    let started = Instant::now();
    let hung = pool
        .submit(|_: &mut Vec<u8>| {
            std::thread::sleep(Duration::from_secs(2));
            0u64
        })
        .await?
        .await;
    println!("   {hung:?} after {:?}", started.elapsed());

    println!("4. The pool still works at full strength:");
    let handles: Vec<_> = (0..4u64)
        .map(|i| pool.try_submit(move |_: &mut Vec<u8>| checksum(&i.to_le_bytes(), 1000)))
        .collect::<Result<_, _>>()?;
    for h in handles {
        println!("   {:016x}", h.await?);
    }
    println!("   stats: {:?}", pool.stats());

    let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
    println!("\nThe pool's metrics:");
    for line in text.lines().filter(|l| {
        l.starts_with("cortex_worker_pool_") && !l.contains("_bucket") && !l.ends_with(" 0")
    }) {
        println!("   {line}");
    }
    // Graceful shutdown in a blocking section: it joins the threads.
    tokio::task::spawn_blocking(move || pool.shutdown())
        .await
        .map_err(|_| TaskError::Cancelled)?;
    Ok(())
}
