//! What a `#[retry]` without `retry_if` decides: rejections are told apart
//! from the call's own failures wherever the error type lets them be seen,
//! by autoref specialisation on `(&&Probe(error)).__cortex_rejection()`:
//! a type implementing [`AsRejection`] says itself; any other
//! `std::error::Error + 'static` is searched through its sources; anything
//! else is never a rejection (and is retried).

use crate::resilience::{AsRejection, Error, RetryDecision};

/// Wraps the error being looked at.
#[derive(Debug)]
pub struct Probe<'a, E>(pub &'a E);

/// Tier one: the type says.
pub trait RejectionBySelf {
    /// The rejection in the error, if any.
    fn __cortex_rejection(&self) -> Option<&Error>;
}

impl<E: AsRejection> RejectionBySelf for Probe<'_, E> {
    fn __cortex_rejection(&self) -> Option<&Error> {
        self.0.as_rejection()
    }
}

/// Tier two: through `std::error::Error::source`.
pub trait RejectionBySource {
    /// The rejection in the error's chain, if any.
    fn __cortex_rejection(&self) -> Option<&Error>;
}

impl<E: std::error::Error + 'static> RejectionBySource for &Probe<'_, E> {
    fn __cortex_rejection(&self) -> Option<&Error> {
        crate::resilience::rejection_in(self.0)
    }
}

/// Tier three: never a rejection.
pub trait NoRejection {
    /// Always `None`.
    fn __cortex_rejection(&self) -> Option<&Error> {
        None
    }
}

impl<E> NoRejection for &&Probe<'_, E> {}

/// The retry decision for an error that is (or is not) a rejection.
#[inline]
pub fn decide_error(rejection: Option<&Error>) -> RetryDecision {
    match rejection {
        Some(e) => RetryDecision::for_rejection(e),
        None => RetryDecision::Retry,
    }
}
