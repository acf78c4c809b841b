//! Resilience policies: circuit breaker, retry, bulkhead, timeout and rate
//! limiter, usable by hand or through their attributes, each registered by
//! name with its metrics (and, for breakers, a health component).
//!
//! ```
//! use cortex::resilience::{CircuitBreaker, CircuitBreakerConfig, Error, State};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let breaker = CircuitBreaker::new("doc-payments", CircuitBreakerConfig {
//!     minimum_calls: 2,
//!     window: cortex::resilience::Window::Count(2),
//!     ..Default::default()
//! })?;
//! for _ in 0..2 {
//!     let r: Result<(), Error> = breaker.call(|| async { Err(Error::timeout("backend", std::time::Duration::from_secs(1))) }).await;
//!     assert!(r.is_err());
//! }
//! assert_eq!(breaker.state(), State::Open);
//! let rejected: Result<(), Error> = breaker.call(|| async { Ok(()) }).await;
//! assert!(matches!(rejected, Err(Error::CircuitOpen { .. })));
//! # Ok::<(), cortex::resilience::ConfigError>(()) }).unwrap();
//! ```
//!
//! Stacked attributes nest in the order they are written: the attribute
//! written first is the outermost layer, whatever its spelling. The
//! recommended order is `#[traced]`, `#[counted]`/`#[timed]`, `#[retry]`,
//! `#[circuit_breaker]`, `#[rate_limit]`, `#[timeout]`, `#[bulkhead]`
//! (Resilience4j's for the policies): a retry then re-runs the whole stack
//! below it, the breaker sees each attempt, the timeout bounds one attempt,
//! and the span and metrics cover the whole call.

pub mod bulkhead;
pub mod circuit_breaker;
mod events;
mod pipeline;
pub mod rate_limiter;
pub(crate) mod registry;
pub mod retry;
mod ring;
pub(crate) mod sync;
pub mod timeout;
mod timer;
#[cfg(feature = "http")]
pub mod tower;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use bulkhead::{Bulkhead, BulkheadEvent, BulkheadPermit, OwnedBulkheadPermit};
pub use circuit_breaker::{
    classify, CallOutcome, CircuitBreaker, CircuitBreakerEvent, OwnedPermit, Permit, State,
    StateChange, Stats,
};
pub use cortex_rules::resilience::{
    Backoff, BulkheadConfig, CircuitBreakerConfig, ConfigError, JitterMode, OpenForBackoff,
    OpenHealth, RateLimiterConfig, RetryConfig, Window, DEFAULT_TIMEOUT,
};
pub use pipeline::Pipeline;
pub use rate_limiter::{RateLimiter, RateLimiterEvent};
pub use registry::{bulkhead, circuit_breaker, rate_limiter, retry, timeout};
pub use retry::{Retry, RetryDecision, RetryEvent};
pub use ring::{
    dropped_events, keep_events, recent_events, EventFilter, PolicyEvent, DEFAULT_EVENTS_KEPT,
    REJECTIONS_EVERY,
};
pub use timeout::{Timeout, TimeoutEvent};

/// Why a policy refused or stopped a call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The circuit breaker is open (or forced open).
    CircuitOpen {
        /// The breaker's name.
        name: Arc<str>,
        /// When it will let a trial call through (zero: as soon as a trial
        /// place is free; `None`-like `Duration::MAX` when forced open).
        retry_after: Duration,
    },
    /// The bulkhead had no free place within its wait.
    BulkheadFull {
        /// The bulkhead's name.
        name: Arc<str>,
    },
    /// The call took longer than its timeout and was dropped.
    Timeout {
        /// The timeout's name.
        name: Arc<str>,
        /// The limit.
        after: Duration,
    },
    /// The rate limiter had no permit within its wait.
    RateLimited {
        /// The rate limiter's name.
        name: Arc<str>,
    },
}

/// Errors that may carry a policy's rejection, so a retry can tell a
/// rejection (not worth retrying) from a failure of the call itself. The
/// default `#[retry]` uses it: implement it for an error type that wraps
/// [`Error`], or give the type a `std::error::Error::source` that leads to
/// one.
///
/// ```
/// use cortex::resilience::{AsRejection, Error};
///
/// enum AppError {
///     Backend(String),
///     Policy(Error),
/// }
///
/// impl AsRejection for AppError {
///     fn as_rejection(&self) -> Option<&Error> {
///         match self {
///             AppError::Policy(e) => Some(e),
///             AppError::Backend(_) => None,
///         }
///     }
/// }
/// ```
pub trait AsRejection {
    /// The rejection inside, if this error is one.
    fn as_rejection(&self) -> Option<&Error>;
}

impl AsRejection for Error {
    fn as_rejection(&self) -> Option<&Error> {
        Some(self)
    }
}

impl AsRejection for Box<dyn std::error::Error + Send + Sync> {
    fn as_rejection(&self) -> Option<&Error> {
        rejection_in(&**self)
    }
}

/// The first [`Error`] in `error`'s chain of sources (itself included).
pub fn rejection_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<Error>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The error a policy gives when its metrics clash with metrics registered
/// differently (a user metric with the same name, say).
pub(crate) fn metrics_conflict<'a>(
    kind: &'a str,
    name: &'a str,
) -> impl Fn(crate::metrics::Error) -> ConfigError + Copy + 'a {
    move |e| ConfigError {
        key: "name",
        message: format!("metrics for {kind} `{name}` cannot be registered: {e}"),
    }
}

impl Error {
    /// A timeout error (for tests and hand-written policies).
    pub fn timeout(name: &str, after: Duration) -> Self {
        Error::Timeout {
            name: name.into(),
            after,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CircuitOpen { name, retry_after } if *retry_after == Duration::MAX => {
                write!(f, "circuit breaker `{name}` is forced open")
            }
            Error::CircuitOpen { name, retry_after } => write!(
                f,
                "circuit breaker `{name}` is open; it lets a trial call through in {retry_after:?}"
            ),
            Error::BulkheadFull { name } => write!(f, "bulkhead `{name}` is full"),
            Error::Timeout { name, after } => write!(f, "`{name}` timed out after {after:?}"),
            Error::RateLimited { name } => write!(f, "rate limiter `{name}` has no permit left"),
        }
    }
}

impl std::error::Error for Error {}
