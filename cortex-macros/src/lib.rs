//! Attribute macros for Cortex. Use them through the `cortex` crate
//! (`#[cortex::counted]`, `#[cortex::timed]`), which re-exports them; the
//! expansions call into `::cortex::__private`.
//!
//! ## Stacking
//!
//! Attributes on one function nest in the order they are written: the
//! attribute written first is the outermost layer, for every Cortex
//! attribute, however it is spelled or imported. The recommended stack is
//! `traced`, `counted`/`timed`, `retry`, `circuit_breaker`, `rate_limit`,
//! `timeout`, `bulkhead`. Here the count is taken outside the retry, so a
//! call counts once however many attempts it made:
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use cortex::metrics::{global, Format};
//! use cortex::resilience::Error;
//!
//! static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
//!
//! #[cortex::counted]
//! #[cortex::retry(max = 3, delay = "1ms")]
//! fn flaky() -> Result<(), Error> {
//!     ATTEMPTS.fetch_add(1, Ordering::Relaxed);
//!     Err(Error::timeout("backend", std::time::Duration::from_secs(1)))
//! }
//!
//! flaky().unwrap_err();
//! assert_eq!(ATTEMPTS.load(Ordering::Relaxed), 3);
//! let text = global().encode(Format::PrometheusText);
//! assert!(text.contains(
//!     r#"cortex_function_calls_total{function="flaky",module="rust_out",result="error"} 1"#
//! ));
//! ```
//!
//! Written the other way round (`#[retry]` above `#[counted]`), each attempt
//! would be counted: 3.
//!
//! ## Identity
//!
//! A site's metrics and its policy instances are named after the function,
//! with its impl's self type and trait for a method (`function="Pg::load"`,
//! `function="<Pg as Store>::load"`); two functions share a policy instance
//! only when they give the same `name`.
//!
//! The expansions bind only names that start with `__cortex`; a user's
//! `check`, `REGISTRY` or `result` never collides with them.
#![deny(missing_docs)]

mod args;
mod expand;
mod item;
mod stack;

use proc_macro::TokenStream;

use stack::Kind;

/// Counts calls of a function by how they ended.
///
/// Each call adds one to `cortex_function_calls_total{function, module,
/// result}`, where `result` is `ok`, `error` (the function returned `Err`),
/// `panic` (it unwound) or `cancelled` (an async fn's future was dropped
/// before it finished). Functions that do not return a `Result` count as
/// `ok`. The series exist at zero from program start.
///
/// Options (all optional):
/// - `name = "..."`: another metric name; must end with `_total`.
/// - `help = "..."`: the HELP text.
/// - `labels(key = "value", ...)`: extra constant labels.
/// - `crate = path`: where `cortex` is, if it is re-exported.
///
/// ```
/// #[cortex::counted(labels(team = "payments"))]
/// fn refund(id: u64) -> Result<(), String> {
///     if id == 0 { Err("no such order".into()) } else { Ok(()) }
/// }
/// # refund(1).unwrap();
/// ```
///
/// Every mistake in the options is a compile error on the offending token:
///
/// ```compile_fail
/// #[cortex::counted(name = "refunds")] // error: must end with `_total`
/// fn refund() {}
/// ```
#[proc_macro_attribute]
pub fn counted(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Counted, args.into(), item.into()).into()
}

/// Records the wall time of each call of a function.
///
/// Observations go to the histogram `cortex_function_duration_seconds{function,
/// module}`; for an async fn the time runs from the first poll to
/// completion. Calls that panic or are cancelled are timed too.
///
/// Options (all optional):
/// - `name = "..."`: another metric name; must end with `_seconds`.
/// - `help = "..."`: the HELP text.
/// - `buckets = [0.01, 0.1, 1.0]`: upper bounds in seconds; non-empty,
///   finite, non-negative and strictly increasing.
/// - `native`, or `native(factor = 1.1, zero_threshold = 2.9e-39,
///   max_buckets = 160)`: Prometheus native (exponential) buckets, served
///   in the protobuf exposition; alone, instead of the classic buckets;
///   with `buckets = [...]`, beside them. `factor` (above 1) picks the
///   schema as client_golang does (1.1: schema 3, buckets 9 % apart).
/// - `labels(key = "value", ...)`: extra constant labels.
/// - `track_in_flight`: also keep the gauge
///   `cortex_function_calls_in_flight{function, module}`.
/// - `crate = path`: where `cortex` is, if it is re-exported.
///
/// ```
/// #[cortex::timed(buckets = [0.001, 0.01, 0.1], track_in_flight)]
/// async fn fetch(key: &str) -> usize {
///     key.len()
/// }
/// ```
///
/// ```compile_fail
/// #[cortex::timed(buckets = [0.5, 0.1])] // error: not increasing
/// fn fetch() {}
/// ```
#[proc_macro_attribute]
pub fn timed(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Timed, args.into(), item.into()).into()
}

/// Registers a function as a health check, found by `/health` with no other
/// code (the linker gathers every check before `main` runs).
///
/// The function takes no parameters and returns
/// [`cortex::health::Health`](../cortex/health/struct.Health.html), `bool`
/// (`true` is UP) or `Result<(), E: Display>` (`Err` is DOWN with the message).
/// Async functions run on the async runtime; sync ones on its blocking pool.
///
/// Options (all optional):
/// - `name = "..."`: the component name (default: the function's name).
///   Two linked checks with one name never replace each other: both are kept,
///   each under its name prefixed with its module (`billing::database`),
///   and an `error` log at startup names both functions.
/// - `group = "liveness" | "readiness" | "both"` (default `"readiness"`:
///   a failing dependency takes the pod out of rotation instead of getting
///   it restarted; use `"liveness"` only for checks whose failure a restart
///   fixes).
/// - `critical = bool` (default `true`): a failing non-critical check makes
///   the service DEGRADED, not DOWN.
/// - `timeout = "1s"`: how long it may run before it counts as DOWN
///   (default `"5s"`; units `ns`, `us`, `ms`, `s`, `m`, `h`).
/// - `crate = path`: where `cortex` is, if it is re-exported.
///
/// ```
/// use cortex::health::Health;
///
/// #[cortex::health_check(group = "readiness", timeout = "500ms")]
/// async fn database() -> Health {
///     Health::up().with_detail("pool", 8)
/// }
///
/// #[cortex::health_check(critical = false)]
/// fn disk_writable() -> Result<(), std::io::Error> {
///     Ok(())
/// }
/// # fn main() {
/// #     let names = cortex::health::global().names();
/// #     assert!(names.contains(&"database".to_string()));
/// #     assert!(names.contains(&"disk_writable".to_string()));
/// # }
/// ```
///
/// ```compile_fail
/// #[cortex::health_check(group = "startup")] // error: unknown group
/// async fn database() -> bool { true }
/// ```
#[proc_macro_attribute]
pub fn health_check(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::health_check::expand(args.into(), item.into()).into()
}

/// Protects a function with a circuit breaker (see
/// `cortex::resilience::CircuitBreaker`), with Resilience4j's semantics.
/// Keys: `failure_rate`, `slow_call_rate` (percentages),
/// `slow_call_threshold`, `minimum_calls`, `window` (calls, or a duration
/// for a time window), `open_for`, `half_open_calls` (at most 4095),
/// `health = "degraded" | "down"`, `automatic_half_open` (half-open when
/// `open_for` is over, without waiting for a call), `max_wait_in_half_open`
/// (open again if the trials take longer), `open_for_multiplier` and
/// `max_open_for` (a longer `open_for` after consecutive openings), `name`
/// (share one breaker), `fallback = path`, `crate`. Bare, it uses
/// Resilience4j's defaults but one: slow calls are not timed until
/// `slow_call_threshold` is given (Resilience4j times every call against
/// 60 s; leaving it off keeps the closed path free of clock reads). The
/// function returns `Result<T, E>` with
/// `E: From<cortex::resilience::Error>`, or names a `fallback`.
///
/// Outcomes: `record_if = path` (a `fn(&E) -> bool`: errors that count as
/// failures; default all), `ignore_if = path` (errors that count as
/// nothing; wins over `record_if`), `record_result = path` (a
/// `fn(&T) -> bool`: `Ok` values that count as failures). An error outside
/// `record_if` counts as a success. Each function is checked against the
/// function's own `T` and `E` by the compiler.
///
/// Without `name`, each function has a breaker of its own, named after it
/// with its impl's type and trait (`module::Pg::load`). Stacked with other
/// attributes, the one written first is the outermost (see the crate docs).
///
/// ```
/// #[cortex::circuit_breaker(failure_rate = 50, minimum_calls = 10, window = 20, open_for = "30s")]
/// async fn charge(cents: u64) -> Result<u64, cortex::resilience::Error> {
///     Ok(cents)
/// }
/// ```
///
/// ```compile_fail
/// #[cortex::circuit_breaker(failure_rate = 150)] // error: outside 1..=100
/// async fn charge() -> Result<(), cortex::resilience::Error> { Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::CircuitBreaker, args.into(), item.into()).into()
}

/// Retries a failing function. Keys: `max` (attempts, including the first),
/// `delay`, `multiplier` and `max_delay` (exponential backoff), `jitter`
/// (a share of each delay, 0..=1, or `"full"` or `"decorrelated"`),
/// `budget` (retries as a share of calls), `max_elapsed` (no attempt starts
/// later), `retry_if = path` (a `fn(&E) -> bool`), `retry_on_result = path`
/// (a `fn(&T) -> bool`: `Ok` values to try again), `name`,
/// `fallback = path`, `crate`. By-value arguments must be `Clone` (each
/// attempt gets its own copy).
///
/// Without `retry_if`, every error is retried except a policy's rejection
/// that retrying cannot help: a full bulkhead, an exhausted rate limiter, a
/// forced-open breaker, or an open one whose `retry_after` is longer than
/// the remaining attempts would wait (a shorter one is waited out). The
/// rejection is found in `cortex::resilience::Error` itself, in an error
/// type implementing `cortex::resilience::AsRejection`, or through the
/// `std::error::Error::source` chain.
///
/// ```
/// #[cortex::retry(max = 3, delay = "100ms", multiplier = 2.0, max_delay = "1s")]
/// async fn fetch(key: String) -> Result<usize, cortex::resilience::Error> {
///     Ok(key.len())
/// }
/// ```
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Retry, args.into(), item.into()).into()
}

/// Limits concurrent calls. Keys: `max_concurrent`, `max_wait` (zero:
/// reject at once), `fair` (waiters served in arrival order; default
/// `true`), `name`, `fallback = path`, `crate`. Works on sync and async
/// functions.
///
/// ```
/// #[cortex::bulkhead(max_concurrent = 4, max_wait = "50ms")]
/// fn render(page: u32) -> Result<String, cortex::resilience::Error> {
///     Ok(format!("page {page}"))
/// }
/// ```
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Bulkhead, args.into(), item.into()).into()
}

/// Bounds an async call's duration; the call's future is dropped when the
/// time is up. `#[timeout("2s")]`, with optional `name`, `fallback`, `crate`;
/// bare `#[timeout]` is 1 s, Resilience4j TimeLimiter's default.
///
/// ```
/// #[cortex::timeout("2s")]
/// async fn lookup() -> Result<u8, cortex::resilience::Error> {
///     Ok(1)
/// }
///
/// #[cortex::timeout] // 1 s
/// async fn quick() -> Result<u8, cortex::resilience::Error> {
///     Ok(2)
/// }
/// ```
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Timeout, args.into(), item.into()).into()
}

/// Limits an async function to `permits` calls per `period`, waiting at most
/// `max_wait`. Keys: `permits`, `period`, `max_wait`, `name`, `fallback`,
/// `crate`. Bare, 50 permits per 500 ms with a 5 s wait: Resilience4j's
/// counts, but its refresh period is 500 ns, which limits nothing, so
/// Cortex's is 500 ms.
///
/// ```
/// #[cortex::rate_limit(permits = 100, period = "1s", max_wait = "0ms")]
/// async fn notify() -> Result<(), cortex::resilience::Error> {
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::RateLimit, args.into(), item.into()).into()
}

/// Makes every call of a function a span of the installed tracer
/// ([`cortex::trace`](../cortex/trace/index.html)), a child of the span
/// current when it is called. For an async fn the span is current whenever
/// the body is polled, so spans started inside it (also after `.await`, on
/// any thread) are its children.
///
/// An `Err` return sets the span's status to error and records an
/// `exception` event (type and message); a panic sets the status to error.
/// Arguments are never recorded unless named in `attributes(...)`.
///
/// Options (all optional):
/// - `name = "..."`: the span name (default `module::path::fn`).
/// - `kind = "..."`: `internal` (default), `server`, `client`,
///   `producer` or `consumer`.
/// - `attributes(key = expr, ...)`: attributes evaluated from the
///   arguments when the call starts (only if the span is sampled); keys may
///   be dotted (`user.id = user`) or string literals.
/// - `crate = path`: where `cortex` is, if it is re-exported.
///
/// ```
/// #[derive(Debug)]
/// struct NotFound;
///
/// #[cortex::traced(kind = "client", attributes(db.table = "orders", order.id = id))]
/// async fn load(id: u64) -> Result<String, NotFound> {
///     if id == 0 { Err(NotFound) } else { Ok(format!("order {id}")) }
/// }
/// ```
///
/// ```compile_fail
/// #[cortex::traced(kind = "backend")] // error: unknown span kind
/// fn f() {}
/// ```
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Traced, args.into(), item.into()).into()
}

/// Carries a function's stack of Cortex attributes (the first Cortex
/// attribute writes it, the later ones add to it) and generates the whole
/// nest when it expands, last. Not for users: written by the other
/// attributes.
#[doc(hidden)]
#[proc_macro_attribute]
pub fn __cortex_stack(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::marker(args.into(), item.into()).into()
}

/// A service-level objective for a `#[counted]` and/or `#[timed]`
/// function: a success rate, a latency promise, or both.
///
/// ```
/// #[cortex::objective(name = "checkout", success_rate = 99.9, latency = "250ms", latency_percentile = 99)]
/// #[cortex::counted]
/// #[cortex::timed(buckets = [0.1, 0.25, 1.0])]
/// async fn charge(cents: u64) -> Result<u64, String> {
///     Ok(cents)
/// }
/// ```
///
/// Options: `name = "..."` (letters, digits, `_`, `.`, `-`),
/// `success_rate = 99.9` (percent of calls that succeed, needs
/// `#[counted]`), `latency = "250ms"` with `latency_percentile = 99`
/// (that percent of calls finish within the threshold, which must be one
/// of `#[timed]`'s bucket bounds); or `objective = CONST` naming a
/// `cortex::slo::Objective` shared by several functions. `crate = path` as
/// for the other attributes.
///
/// The objective's labels (`objective_name`, `objective_percentile`,
/// `objective_latency_threshold`) go on the function's series, and
/// `cortex::slo::prometheus_rules()` writes recording rules and burn-rate
/// alerts for it. It may be written anywhere in the function's stack.
///
/// ```compile_fail
/// #[cortex::objective(name = "checkout", latency = "200ms", latency_percentile = 99)]
/// #[cortex::timed(buckets = [0.1, 0.25, 1.0])] // error: 0.2 s is not a bound
/// fn charge() {}
/// ```
#[proc_macro_attribute]
pub fn objective(args: TokenStream, item: TokenStream) -> TokenStream {
    stack::attribute(Kind::Objective, args.into(), item.into()).into()
}
