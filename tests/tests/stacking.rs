//! Stacked attributes nest in source order: the attribute written first is
//! the outermost layer, for every Cortex attribute, however it is spelled
//! (`cortex::retry`, an imported `retry`, a re-export through `crate =`).
//! The order is observed through what each layer sees: attempts, counts
//! and spans.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cortex::resilience::Error;
use cortex_tests::sample;
use cortex_tests::spans::in_trace;
// Imported, the attributes are spelled bare.
use cortex::{circuit_breaker, counted, retry, timeout, traced};

/// Cortex re-exported under another path, as a platform crate would.
mod platform {
    pub(crate) use ::cortex as observe;
}

const MODULE: &str = "stacking";

fn calls(function: &str, result: &str) -> f64 {
    sample(&format!(
        "cortex_function_calls_total{{function=\"{function}\",module=\"{MODULE}\",result=\"{result}\"}}"
    ))
    .unwrap_or_else(|| panic!("no series for {function} {result}"))
}

// ---- retry and timeout, spelled bare ----

static PER_ATTEMPT: AtomicUsize = AtomicUsize::new(0);
static WHOLE_CALL: AtomicUsize = AtomicUsize::new(0);

#[retry(max = 3, delay = "1ms")]
#[timeout("50ms")]
async fn each_attempt_bounded() -> Result<(), Error> {
    PER_ATTEMPT.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[timeout("50ms")]
#[retry(max = 3, delay = "1ms")]
async fn whole_call_bounded() -> Result<(), Error> {
    WHOLE_CALL.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn retry_written_above_timeout_gives_each_attempt_its_own_timeout() {
    let err = each_attempt_bounded().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(PER_ATTEMPT.load(Ordering::SeqCst), 3);

    // The other way round the timeout bounds the whole call: the first
    // attempt uses it up.
    let err = whole_call_bounded().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(WHOLE_CALL.load(Ordering::SeqCst), 1);
}

// ---- counted and retry: which layer sees which attempt ----

#[derive(Debug)]
struct Down;

#[derive(Debug)]
enum AppError {
    Down,
    Policy(Error),
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        AppError::Policy(e)
    }
}

impl From<Down> for AppError {
    fn from(_: Down) -> Self {
        AppError::Down
    }
}

#[counted]
#[retry(max = 3, delay = "1ms")]
fn counted_per_call() -> Result<(), AppError> {
    Err(Down.into())
}

#[retry(max = 3, delay = "1ms")]
#[counted]
fn counted_per_attempt() -> Result<(), AppError> {
    Err(Down.into())
}

#[counted]
#[retry(max = 3, delay = "1ms")]
async fn counted_per_call_async() -> Result<(), AppError> {
    Err(Down.into())
}

#[retry(max = 3, delay = "1ms")]
#[counted]
async fn counted_per_attempt_async() -> Result<(), AppError> {
    Err(Down.into())
}

#[tokio::test(start_paused = true)]
async fn counted_written_above_retry_counts_calls_below_it_counts_attempts() {
    counted_per_call().unwrap_err();
    counted_per_attempt().unwrap_err();
    assert_eq!(calls("counted_per_call", "error"), 1.0);
    assert_eq!(calls("counted_per_attempt", "error"), 3.0);

    counted_per_call_async().await.unwrap_err();
    counted_per_attempt_async().await.unwrap_err();
    assert_eq!(calls("counted_per_call_async", "error"), 1.0);
    assert_eq!(calls("counted_per_attempt_async", "error"), 3.0);
}

// ---- counted and circuit breaker: rejected calls ----

#[counted]
#[circuit_breaker(minimum_calls = 1, window = 1, failure_rate = 100, open_for = "1h")]
async fn sees_rejections() -> Result<(), AppError> {
    Err(Down.into())
}

#[circuit_breaker(minimum_calls = 1, window = 1, failure_rate = 100, open_for = "1h")]
#[counted]
async fn behind_the_breaker() -> Result<(), AppError> {
    Err(Down.into())
}

#[tokio::test]
async fn counted_written_above_a_breaker_counts_the_calls_it_rejects() {
    // The first call fails and opens the breaker; the second is rejected.
    assert!(matches!(sees_rejections().await, Err(AppError::Down)));
    assert!(matches!(
        sees_rejections().await,
        Err(AppError::Policy(Error::CircuitOpen { .. }))
    ));
    assert_eq!(calls("sees_rejections", "error"), 2.0);

    assert!(matches!(behind_the_breaker().await, Err(AppError::Down)));
    assert!(matches!(
        behind_the_breaker().await,
        Err(AppError::Policy(Error::CircuitOpen { .. }))
    ));
    // The rejected call never reached the counter.
    assert_eq!(calls("behind_the_breaker", "error"), 1.0);
}

// ---- a re-export through `crate = path` ----

static REEXPORTED: AtomicUsize = AtomicUsize::new(0);

#[platform::observe::counted(crate = crate::platform::observe)]
#[platform::observe::retry(crate = crate::platform::observe, max = 2, delay = "1ms")]
#[platform::observe::timeout("50ms", crate = crate::platform::observe)]
async fn reexported() -> Result<(), Error> {
    REEXPORTED.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn attributes_through_a_reexport_nest_the_same_way() {
    reexported().await.unwrap_err();
    // Two attempts, each timed out on its own; one call counted.
    assert_eq!(REEXPORTED.load(Ordering::SeqCst), 2);
    assert_eq!(calls("reexported", "error"), 1.0);
    assert_eq!(calls("reexported", "ok"), 0.0);
}

// ---- traced and retry: spans ----

#[traced]
#[retry(max = 3, delay = "1ms")]
fn one_span_for_the_call() -> Result<(), AppError> {
    Err(Down.into())
}

#[retry(max = 3, delay = "1ms")]
#[traced]
fn one_span_per_attempt() -> Result<(), AppError> {
    Err(Down.into())
}

#[test]
fn traced_written_above_retry_is_one_span_for_the_call() {
    let (root, spans) = in_trace(|| {
        one_span_for_the_call().unwrap_err();
    });
    let call: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "stacking::one_span_for_the_call")
        .collect();
    assert_eq!(call.len(), 1, "{spans:#?}");
    assert_eq!(call[0].parent_span_id, Some(root.span_id));

    let (root, spans) = in_trace(|| {
        one_span_per_attempt().unwrap_err();
    });
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "stacking::one_span_per_attempt")
        .collect();
    assert_eq!(attempts.len(), 3, "{spans:#?}");
    // Each attempt is a child of the caller's span, not a root of its own.
    assert!(attempts
        .iter()
        .all(|s| s.parent_span_id == Some(root.span_id)));
}
