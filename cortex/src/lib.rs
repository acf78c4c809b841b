//! # Cortex
//!
//! Observable, resilient services by annotation. Put an attribute on a
//! function and its metrics exist, registered at link time, with no
//! registration code; their configuration is checked by the compiler.
//!
//! ```
//! use cortex::metrics::{global, Format};
//!
//! #[derive(Debug)]
//! struct PaymentError;
//!
//! /// Charges a card.
//! #[cortex::counted]
//! #[cortex::timed(buckets = [0.01, 0.1, 1.0])]
//! fn charge(amount_cents: u64) -> Result<u64, PaymentError> {
//!     if amount_cents == 0 { Err(PaymentError) } else { Ok(amount_cents) }
//! }
//!
//! // Before the first call, the series already exist at zero.
//! let text = global().encode(Format::PrometheusText);
//! assert!(text.contains(
//!     r#"cortex_function_calls_total{function="charge",module="rust_out",result="ok"} 0"#
//! ));
//!
//! charge(500).unwrap();
//! charge(0).unwrap_err();
//!
//! let text = global().encode(Format::PrometheusText);
//! assert!(text.contains(
//!     r#"cortex_function_calls_total{function="charge",module="rust_out",result="ok"} 1"#
//! ));
//! assert!(text.contains(
//!     r#"cortex_function_calls_total{function="charge",module="rust_out",result="error"} 1"#
//! ));
//! assert!(text.contains(
//!     r#"cortex_function_duration_seconds_count{function="charge",module="rust_out"} 2"#
//! ));
//! ```
//!
//! ## What is here
//! - [`metrics`]: counters, gauges, histograms, label families, the
//!   [global registry](metrics::global), and the Prometheus text 0.0.4 and
//!   OpenMetrics 1.0 expositions; [`counted`] and [`timed`] record any
//!   function.
//! - [`slo`]: service-level objectives on annotated functions
//!   ([`objective`]), checked by the compiler, with generated Prometheus
//!   recording rules and burn-rate alerts.
//! - [`health`]: health checks run in parallel under timeouts, an
//!   Actuator-style report, and [`health_check`] to register a function.
//! - `http` (feature `http`): a hyper server with routes, limits, request
//!   metrics and graceful shutdown; the admin endpoints `/metrics`,
//!   `/health` and the operations endpoints under `/cortex/` (breakers and
//!   the other policies, their recent events, the configuration, build
//!   info; also as a hyper/tower service); `http::compression`
//!   (feature `compression`) for brotli/gzip responses.
//! - [`trace`]: spans with [`traced`], sampling (head and tail), W3C
//!   `traceparent` propagation, export over OTLP/HTTP JSON, and exemplars on
//!   the metrics of traced calls.
//! - [`resilience`]: circuit breaker, retry, bulkhead, timeout and rate
//!   limiter, by hand or with [`circuit_breaker`], [`retry`], [`bulkhead`],
//!   [`timeout`] and [`rate_limit`], their options checked by the compiler.
//! - [`config`]: overrides of every named instance's settings from a TOML
//!   file and `CORTEX_*` variables, checked by the attributes' rules, with
//!   the place of every refused value, and reloaded all or nothing (also on
//!   `SIGHUP` and from the admin API).
//! - `actor` (feature `actors`): actors with supervision and an event bus.
//! - `workers` (feature `workers`): a worker thread pool with timeouts,
//!   panic isolation and per-worker state.
//! - `wasm` (feature `wasm`): a host-side memory manager over WebAssembly
//!   linear memory and a runner for guest modules under fuel, time and
//!   memory limits (wasmtime).
//!
//! ## Cargo features
//! `http`, `compression`, `actors` and `workers` are on by default; `wasm`
//! is opt-in because wasmtime is heavy to build; `full` turns on everything.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

// Lets expansions written as `::cortex::...` work inside this crate's own
// tests and doc examples too.
#[allow(unused_extern_crates)]
extern crate self as cortex;

#[cfg(feature = "actors")]
pub mod actor;
pub mod config;
pub mod health;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
mod otlp;
pub mod resilience;
pub mod slo;
#[cfg(feature = "http")]
pub mod tower;
pub mod trace;
mod util;
#[cfg(feature = "wasm")]
pub mod wasm;
#[cfg(feature = "workers")]
pub mod workers;

#[doc(hidden)]
pub mod __private;

pub use cortex_macros::{
    bulkhead, circuit_breaker, counted, health_check, objective, rate_limit, retry, timed, timeout,
    traced,
};
