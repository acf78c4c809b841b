//! How a call ended, decided from its return type without specialisation.

use std::future::Future;

/// How an annotated call ended; the index of its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Outcome {
    /// Returned normally (for a `Result`, `Ok`).
    Ok = 0,
    /// Returned `Err`.
    Error = 1,
    /// Unwound with a panic.
    Panic = 2,
    /// An async call whose future was dropped before it finished.
    Cancelled = 3,
}

impl Outcome {
    /// The value of the `result` label.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Cancelled => "cancelled",
        }
    }

    /// All outcomes, in index order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Panic,
        Outcome::Cancelled,
    ];
}

// Autoref specialisation: the expansion calls `(&value).__cortex_outcome()`.
// For a `Result`, `IsResult` matches without an extra reference and wins;
// any other type only matches `NotResult` through one more autoref. This
// works for aliases such as `io::Result<T>` that no macro could recognise by
// name.

/// Outcome of a `Result`.
pub trait IsResult {
    /// `Error` for `Err`, else `Ok`.
    fn __cortex_outcome(&self) -> Outcome;
}

impl<T, E> IsResult for Result<T, E> {
    #[inline(always)]
    fn __cortex_outcome(&self) -> Outcome {
        if self.is_err() {
            Outcome::Error
        } else {
            Outcome::Ok
        }
    }
}

/// Outcome of anything that is not a `Result`: always `Ok`.
pub trait NotResult {
    /// Always `Ok`.
    #[inline(always)]
    fn __cortex_outcome(&self) -> Outcome {
        Outcome::Ok
    }
}

impl<T: ?Sized> NotResult for &T {}

/// Gives an async block the function's declared output type, so `?` inside
/// it infers its error conversion the way it would in the function itself.
#[inline(always)]
pub fn typed_future<T, F: Future<Output = T>>(f: F) -> F {
    f
}

/// Calls a closure once. Passing the body through an `FnOnce` bound makes
/// the closure `FnOnce`, so a body may return a reborrow of a captured
/// `&mut self` (`&mut self.field`), as the function itself could; naming `R`
/// gives the body the function's declared return type for inference.
#[inline(always)]
pub fn call_once<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}
