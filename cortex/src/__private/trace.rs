//! What `#[traced]` expands to.

use std::borrow::Cow;
use std::fmt::{Debug, Display};
use std::future::Future;

use crate::trace::{self, Active, Instrumented, Span, SpanKind, Status, Value};

/// One `#[traced]` function: its span name and kind.
#[derive(Debug)]
pub struct TracedSite {
    /// `module::fn`, or the `name = "..."` given.
    pub name: &'static str,
    /// The span kind.
    pub kind: SpanKind,
}

/// The span of one call of a `#[traced]` function. A sync call makes it
/// current for the call; an async call hands its context to the body's
/// future instead.
#[derive(Debug)]
pub struct TracedCall {
    span: Span,
    /// What was current before (sync calls only).
    previous: Option<Option<Active>>,
}

impl TracedCall {
    /// Starts the span and makes it current on this thread (sync fns).
    #[inline(always)]
    pub fn enter(site: &'static TracedSite) -> Self {
        match trace::global() {
            None => TracedCall {
                span: Span::none(),
                previous: None,
            },
            Some(tracer) => {
                let span = tracer.start_current(site.name, site.kind);
                let previous = Some(trace::swap_current(Some(span.active())));
                TracedCall { span, previous }
            }
        }
    }

    /// Starts the span without making it current (async fns: the body's
    /// future carries it; see [`instrument`](Self::instrument)).
    #[inline(always)]
    pub fn start(site: &'static TracedSite) -> Self {
        TracedCall {
            span: match trace::global() {
                None => Span::none(),
                Some(tracer) => tracer.start_current(site.name, site.kind),
            },
            previous: None,
        }
    }

    /// Runs `body` with this span current whenever it is polled.
    #[inline(always)]
    pub fn instrument<F: Future>(&self, body: F) -> Instrumented<F> {
        let active = self.span.context().is_valid().then(|| self.span.active());
        Instrumented::new(body, active)
    }

    /// Whether attributes would be kept (so only then are they evaluated).
    #[inline(always)]
    pub fn is_recording(&self) -> bool {
        self.span.is_recording()
    }

    /// Sets an attribute from `attributes(...)`.
    #[inline]
    pub fn attribute(&mut self, key: &'static str, value: Value) {
        self.span.set_attribute(key, value);
    }

    /// The call returned; `error` is the `Err`'s type and message.
    #[inline(always)]
    pub fn finish(mut self, error: Option<(&'static str, String)>) {
        if let Some((ty, message)) = error {
            self.record_error(ty, message);
        }
        self.close();
    }

    #[cold]
    fn record_error(&mut self, ty: &'static str, message: String) {
        self.span.add_event(
            "exception",
            vec![
                trace::KeyValue::new("exception.type", ty),
                trace::KeyValue::new("exception.message", message.clone()),
            ],
        );
        self.span.set_status(Status::Error(Cow::Owned(message)));
    }

    #[inline(always)]
    fn close(&mut self) {
        if let Some(previous) = self.previous.take() {
            trace::swap_current(previous);
        }
        self.span.end();
    }

    /// Whether the call's error would be recorded (skips formatting it).
    #[inline(always)]
    pub fn wants_error(&self) -> bool {
        self.span.is_recording()
    }
}

impl Drop for TracedCall {
    #[inline]
    fn drop(&mut self) {
        if self.span.is_recording() {
            if std::thread::panicking() {
                self.span
                    .set_status(Status::Error(Cow::Borrowed("the function panicked")));
            } else {
                // An async call whose future was dropped before it finished.
                self.span.set_attribute("cortex.cancelled", true);
            }
        }
        self.close();
    }
}

/// An attribute value from an argument, borrowed: `attributes(k = expr)`
/// expands to `IntoAttribute::into_attribute(&(expr))`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a span attribute",
    label = "not a string, number, bool or char",
    note = "give a value of one of those types, for example `key = value.to_string()` or `key = value.id`"
)]
pub trait IntoAttribute {
    /// The value.
    fn into_attribute(&self) -> Value;
}

impl<T: IntoAttribute + ?Sized> IntoAttribute for &T {
    fn into_attribute(&self) -> Value {
        (**self).into_attribute()
    }
}

impl IntoAttribute for str {
    fn into_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.to_owned()))
    }
}

impl IntoAttribute for String {
    fn into_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.clone()))
    }
}

impl IntoAttribute for Cow<'_, str> {
    fn into_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

impl IntoAttribute for char {
    fn into_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

impl IntoAttribute for bool {
    fn into_attribute(&self) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! int_attribute {
    ($($t:ty),*) => {$(
        impl IntoAttribute for $t {
            fn into_attribute(&self) -> Value {
                Value::I64(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}

int_attribute!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, i128, u128);

impl IntoAttribute for f64 {
    fn into_attribute(&self) -> Value {
        Value::F64(*self)
    }
}

impl IntoAttribute for f32 {
    fn into_attribute(&self) -> Value {
        Value::F64(f64::from(*self))
    }
}

// What an `Err` becomes, by what its type offers: autoref specialisation on
// `(&&&&&ErrorOf(&out)).__cortex_error()`. The more references an impl
// needs, the earlier method lookup finds it.

/// Wraps a return value for the error lookup.
#[derive(Debug)]
pub struct ErrorOf<'a, R>(pub &'a R);

/// An `Err` implementing `std::error::Error`.
pub trait ErrorIsError {
    /// Its type and message, for `Err`.
    fn __cortex_error(&self) -> Option<(&'static str, String)>;
}
impl<T, E: std::error::Error> ErrorIsError for &&&&ErrorOf<'_, Result<T, E>> {
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        self.0.as_ref().err().map(|e| (std::any::type_name::<E>(), e.to_string()))
    }
}

/// An `Err` that is `Display`.
pub trait ErrorIsDisplay {
    /// Its type and message, for `Err`.
    fn __cortex_error(&self) -> Option<(&'static str, String)>;
}
impl<T, E: Display> ErrorIsDisplay for &&&ErrorOf<'_, Result<T, E>> {
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        self.0.as_ref().err().map(|e| (std::any::type_name::<E>(), e.to_string()))
    }
}

/// An `Err` that is `Debug`.
pub trait ErrorIsDebug {
    /// Its type and message, for `Err`.
    fn __cortex_error(&self) -> Option<(&'static str, String)>;
}
impl<T, E: Debug> ErrorIsDebug for &&ErrorOf<'_, Result<T, E>> {
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        self.0.as_ref().err().map(|e| (std::any::type_name::<E>(), format!("{e:?}")))
    }
}

/// Any other `Err`.
pub trait ErrorIsOpaque {
    /// Its type, for `Err`.
    fn __cortex_error(&self) -> Option<(&'static str, String)>;
}
impl<T, E> ErrorIsOpaque for &ErrorOf<'_, Result<T, E>> {
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        self.0
            .as_ref()
            .err()
            .map(|_| (std::any::type_name::<E>(), "error".to_owned()))
    }
}

/// Not a `Result`: never an error.
pub trait NotAnError {
    /// Always `None`.
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        None
    }
}
impl<R> NotAnError for ErrorOf<'_, R> {}
