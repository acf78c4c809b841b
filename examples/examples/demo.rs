//! The Cortex demo service.
//!
//! A small order service whose handlers are annotated, a health check, and
//! the admin endpoints, with compressed responses, on `127.0.0.1:3000` (or
//! `$CORTEX_ADDR`):
//!
//! ```text
//! cargo run --example demo
//! curl -i localhost:3000/orders/42
//! curl -i localhost:3000/orders/0          # an order that does not exist: 404, result="error"
//! curl -i -X POST localhost:3000/orders -d '{"item":"coffee"}'
//! curl --compressed -i localhost:3000/metrics
//! curl -i localhost:3000/health
//! curl -i localhost:3000/inventory/coffee  # a downstream call behind the `inventory` breaker
//! curl -s localhost:3000/cortex/circuitbreakers
//! ```
//!
//! Policies are tuned without a rebuild from `$CORTEX_CONFIG` (a TOML file)
//! and `CORTEX_*` variables (`CORTEX_CIRCUIT_BREAKER__INVENTORY__OPEN_FOR=30s`),
//! checked by the attributes' rules: a bad value stops the demo with the
//! place it was written, and exit code 2. `kill -HUP` reloads them.
//! `CORTEX_ADMIN_TOKEN` turns on the admin writes (forcing a breaker's
//! state, `POST /cortex/config/reload`).
//!
//! Traces: every request is a `server` span (continuing the caller's
//! `traceparent`), with the annotated functions as children. Point it at an
//! OpenTelemetry Collector, Jaeger or Tempo with the standard variables, no
//! code change:
//!
//! ```text
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_TRACES_SAMPLER=traceidratio \
//!   OTEL_TRACES_SAMPLER_ARG=0.5 cargo run --example demo
//! ```
//!
//! The same variables push the metrics to `{endpoint}/v1/metrics` every
//! `OTEL_METRIC_EXPORT_INTERVAL` milliseconds (default 60 s), and once more
//! on the way out; `/metrics` stays for Prometheus either way.
//!
//! SIGTERM or Ctrl-C stops it gracefully: `/health/ready` turns 503
//! (`OUT_OF_SERVICE`) at once, it keeps serving for `$CORTEX_DRAIN_DELAY`
//! seconds (default 0; 5 on Kubernetes), then lets in-flight requests finish
//! for up to 25 s and exits 0. The service itself is in `src/lib.rs`.

use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // Before anything is built on it: a refused configuration stops the
    // demo, naming each bad value's place.
    if let Err(refused) = cortex::config::load() {
        eprintln!("configuration refused:\n{refused}");
        std::process::exit(2);
    }
    let tracer = cortex_examples::install_tracing()?;
    let metrics = cortex::metrics::OtlpMetricsExporter::from_env()?.map(|b| b.start());
    let addr = std::env::var("CORTEX_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let drain: u64 = std::env::var("CORTEX_DRAIN_DELAY")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .map_err(|e| format!("CORTEX_DRAIN_DELAY must be whole seconds: {e}"))?
        .unwrap_or(0);
    let server = cortex_examples::service()?
        .drain_delay(Duration::from_secs(drain))
        .shutdown_on_signals()
        .bind(&addr)
        .await?;
    let at = server.local_addr();
    println!("Cortex demo listening on http://{at}");
    println!("  curl -i http://{at}/orders/42");
    println!("  curl -i -X POST http://{at}/orders -d '{{\"item\":\"coffee\"}}'");
    println!("  curl --compressed http://{at}/metrics");
    println!("  curl -i http://{at}/health");
    println!("Ctrl-C (or SIGTERM) to stop.");
    let report = server.stopped().await;
    // Sends the spans still queued.
    tracer.shutdown().await;
    if let Some(metrics) = metrics {
        if let Err(e) = metrics.shutdown() {
            eprintln!("the last metrics push failed: {e}");
        }
    }
    println!(
        "stopped ({} connection(s) closed at the deadline)",
        report.aborted_connections
    );
    Ok(())
}
