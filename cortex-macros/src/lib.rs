//! Attribute macros for Cortex. Use them through the `cortex` crate
//! (`#[cortex::counted]`, `#[cortex::timed]`), which re-exports them; the
//! expansions call into `::cortex::__private`.
#![deny(missing_docs)]

mod args;
mod expand;
mod item;

use proc_macro::TokenStream;

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
    expand::counted::expand(args.into(), item.into()).into()
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
    expand::timed::expand(args.into(), item.into()).into()
}
