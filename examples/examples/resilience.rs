//! Resilience policies in action, printing what happens:
//! a breaker opening on a failing backend and recovering, retry with
//! backoff, a bulkhead under load, and a composed stack.
//!
//! ```text
//! cargo run --example resilience
//! ```

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cortex::resilience::{
    circuit_breaker, Bulkhead, BulkheadConfig, Error, Pipeline, Retry, RetryConfig, Timeout,
};

// The fields are read through `Debug` when results are printed.
#[allow(dead_code)]
#[derive(Debug)]
enum BackendError {
    Unavailable,
    Policy(Error),
}

impl From<Error> for BackendError {
    fn from(e: Error) -> Self {
        BackendError::Policy(e)
    }
}

static BACKEND_UP: AtomicBool = AtomicBool::new(false);

/// A backend that fails while it is down.
#[cortex::circuit_breaker(
    name = "inventory",
    failure_rate = 50,
    minimum_calls = 4,
    window = 8,
    open_for = "300ms",
    half_open_calls = 2
)]
async fn inventory(item: u32) -> Result<u32, BackendError> {
    if BACKEND_UP.load(Ordering::SeqCst) {
        Ok(item * 3)
    } else {
        Err(BackendError::Unavailable)
    }
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Fails twice, then works: retried with exponential backoff.
#[cortex::retry(max = 4, delay = "20ms", multiplier = 2.0, max_delay = "100ms")]
async fn flaky_quote(symbol: String) -> Result<String, BackendError> {
    let n = ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    println!("    attempt {n} for {symbol}");
    if n < 3 {
        Err(BackendError::Unavailable)
    } else {
        Ok(format!("{symbol}: 42.0"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let breaker = circuit_breaker("inventory").expect("registered at link time");
    breaker.on_state_change(|c| println!("    [breaker {}: {} -> {}]", c.name, c.from, c.to));

    println!("1. The backend is down: the breaker opens after 4 calls.");
    for i in 0..6 {
        let r = inventory(i).await;
        println!("    call {i}: {r:?}");
    }
    println!("2. The backend recovers; after open_for the trial calls close the breaker.");
    BACKEND_UP.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    for i in 0..3 {
        println!("    call {i}: {:?}", inventory(i).await);
    }
    println!("    state: {}", breaker.state());

    println!("3. Retry with backoff (20 ms, then 40 ms):");
    let started = Instant::now();
    let quote = flaky_quote("ACME".into()).await;
    println!("    {quote:?} after {:?}", started.elapsed());

    println!("4. A bulkhead of 2 under 6 concurrent calls (no waiting):");
    let bulkhead = Bulkhead::new(
        "reports",
        BulkheadConfig {
            max_concurrent: 2,
            max_wait: Duration::ZERO,
            ..Default::default()
        },
    )?;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let b = bulkhead.clone();
        tasks.push(tokio::spawn(async move {
            let r: Result<u32, Error> = b
                .call(|| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(i)
                })
                .await;
            r
        }));
    }
    for t in tasks {
        match t.await? {
            Ok(i) => println!("    report {i} rendered"),
            Err(e) => println!("    rejected: {e}"),
        }
    }

    println!("5. A composed stack: retry(timeout(call)); each attempt gets 30 ms.");
    let calls = Arc::new(AtomicU32::new(0));
    let stack = Pipeline::new()
        .retry(Retry::new(
            "search",
            RetryConfig {
                max: 3,
                delay: Duration::from_millis(10),
                ..Default::default()
            },
        )?)
        .timeout(Timeout::new("search", Duration::from_millis(30))?);
    let c = Arc::clone(&calls);
    let result: Result<&str, Error> = stack
        .call(|| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            async move {
                // The first two attempts are too slow; the third is quick.
                let delay = if n < 2 { 100 } else { 5 };
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Ok("results")
            }
        })
        .await;
    println!(
        "    {result:?} after {} attempts",
        calls.load(Ordering::SeqCst)
    );

    println!("\nThe policies' metrics:");
    let text = cortex::metrics::global().encode(cortex::metrics::Format::PrometheusText);
    for line in text.lines().filter(|l| {
        !l.starts_with('#')
            && (l.contains("inventory") || l.contains("\"reports\"") || l.contains("\"search\""))
            && !l.ends_with(" 0")
    }) {
        println!("    {line}");
    }
    Ok(())
}
