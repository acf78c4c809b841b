//! The checks an expansion makes on the function's return type, each one
//! error on the user's tokens when it fails.

use std::marker::PhantomData;

use crate::resilience::Error;

/// Error types that can carry a policy's rejection.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a policy's rejection: implement `From<cortex::resilience::Error>` for `{Self}`",
    label = "this error type needs `From<cortex::resilience::Error>`",
    note = "a circuit breaker, bulkhead, timeout or rate limiter returns its rejection as the function's `Err`; or name a `fallback` to answer rejections instead"
)]
pub trait PolicyError: Sized {
    /// The rejection as this error.
    fn from_rejection(e: Error) -> Self;
}

impl<E: From<Error>> PolicyError for E {
    #[inline(always)]
    fn from_rejection(e: Error) -> Self {
        E::from(e)
    }
}

/// Return types a policy can work with: `Result`s.
#[diagnostic::on_unimplemented(
    message = "a function under a resilience policy returns `Result<T, E>`, not `{Self}`",
    label = "not a `Result`",
    note = "with `E: From<cortex::resilience::Error>` a rejection is returned as `Err`; for a function that returns a plain value, name a `fallback` to answer rejections instead"
)]
pub trait PolicyReturn {
    /// `T`.
    type Ok;
    /// `E`.
    type Err;
}

impl<T, E> PolicyReturn for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// The converter from a rejection to the function's `Result`, for a
/// function returning `Result<T, E>` with `E: From<resilience::Error>`.
#[inline(always)]
pub fn rejection<R>(_: PhantomData<R>) -> fn(Error) -> Result<R::Ok, R::Err>
where
    R: PolicyReturn,
    R::Err: PolicyError,
{
    |e| Err(<R::Err as PolicyError>::from_rejection(e))
}

/// For `#[retry]` alone: the function returns a `Result` (its error needs
/// no conversion: a retry never rejects).
#[inline(always)]
pub fn returns_result<R: PolicyReturn>(_: PhantomData<R>) {}

/// The converter inside the stack of a function that returns a plain value
/// and has a fallback: the rejection travels as `Err` to the fallback.
#[inline(always)]
pub fn wrapped_rejection<R>() -> fn(Error) -> Result<R, Error> {
    Err
}

/// What a return type is, found by autoref specialisation:
/// `(&PhantomData::<R>).__cortex_value_kind()`. For a `Result` (also under
/// an alias) [`IsResultValue`] matches without the extra reference and
/// wins.
#[derive(Debug)]
pub struct ResultValue;

/// See [`ResultValue`].
#[derive(Debug)]
pub struct PlainValue;

/// See [`ResultValue`].
pub trait IsResultValue {
    /// The kind.
    fn __cortex_value_kind(&self) -> ResultValue {
        ResultValue
    }
}

impl<T, E> IsResultValue for PhantomData<Result<T, E>> {}

/// See [`ResultValue`].
pub trait IsPlainValue {
    /// The kind.
    fn __cortex_value_kind(&self) -> PlainValue {
        PlainValue
    }
}

impl<R> IsPlainValue for &PhantomData<R> {}

/// A return type that is not a `Result` after all.
#[diagnostic::on_unimplemented(
    message = "this function returns a `Result` under another name: write the return type as `Result<T, E>`",
    label = "a `Result` alias",
    note = "with a `fallback`, a function that returns a `Result` gives its errors to the policies (a circuit breaker counts them, a retry retries them); the macro sees the type as written, so it must be written `Result<..>` for that"
)]
pub trait NotAResult {}

impl NotAResult for PlainValue {}

/// Checks that a return type taken for a plain value is one.
#[inline(always)]
pub fn assert_plain_value<K: NotAResult>(_: K) {}

/// Names an argument's type in `#[retry]`'s expansion, so a by-value
/// argument that is not `Clone` is reported there.
#[inline(always)]
pub fn clone_for_retry<T: Clone>(value: &T) -> T {
    value.clone()
}
