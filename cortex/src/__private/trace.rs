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
/// future instead. `None` when nothing is recorded or switched: no tracer,
/// or an unsampled child that shares its parent's context.
#[derive(Debug)]
pub struct TracedCall {
    span: Option<Span>,
    /// What was current before (sync calls only).
    previous: Option<Active>,
}

impl TracedCall {
    const NOTHING: TracedCall = TracedCall {
        span: None,
        previous: None,
    };

    /// Starts the span and makes it current on this thread (sync fns).
    #[inline(always)]
    pub fn enter(site: &'static TracedSite) -> Self {
        let Some(tracer) = trace::global() else {
            return Self::NOTHING;
        };
        let parent = trace::current_raw();
        if tracer.shares_parent(&parent) {
            return Self::NOTHING;
        }
        let span = tracer.start_current(site.name, site.kind, parent);
        let previous = Some(trace::enter_current(span.current, span.state.clone()));
        TracedCall {
            span: Some(span),
            previous,
        }
    }

    /// Starts the span without making it current (async fns: the body's
    /// future carries it; see [`instrument`](Self::instrument)).
    #[inline(always)]
    pub fn start(site: &'static TracedSite) -> Self {
        let Some(tracer) = trace::global() else {
            return Self::NOTHING;
        };
        let parent = trace::current_raw();
        if tracer.shares_parent(&parent) {
            return Self::NOTHING;
        }
        TracedCall {
            span: Some(tracer.start_current(site.name, site.kind, parent)),
            previous: None,
        }
    }

    /// Runs `body` with this span current whenever it is polled.
    #[inline(always)]
    pub fn instrument<F: Future>(&self, body: F) -> Instrumented<F> {
        // Without a span of its own, the body is polled as it is: whatever
        // is current where it runs stays current.
        let active = self
            .span
            .as_ref()
            .filter(|s| s.is_valid())
            .map(Span::active);
        Instrumented::new(body, active)
    }

    /// Whether attributes and the error would be kept (so only then are they
    /// evaluated).
    #[inline(always)]
    pub fn is_recording(&self) -> bool {
        self.span.as_ref().is_some_and(Span::is_recording)
    }

    /// Sets an attribute from `attributes(...)`.
    #[inline]
    pub fn attribute(&mut self, key: &'static str, value: Value) {
        if let Some(span) = &mut self.span {
            span.set_attribute(key, value);
        }
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
        if let Some(span) = &mut self.span {
            span.record_error(ty, message);
        }
    }

    #[inline(always)]
    fn close(&mut self) {
        if let Some(previous) = self.previous.take() {
            trace::restore_current(previous);
        }
        if let Some(span) = &mut self.span {
            span.end();
        }
    }
}

impl Drop for TracedCall {
    #[inline]
    fn drop(&mut self) {
        if let Some(span) = self.span.as_mut().filter(|s| s.is_recording()) {
            if std::thread::panicking() {
                span.set_status(Status::Error(Cow::Borrowed("the function panicked")));
            } else {
                // An async call whose future was dropped before it finished.
                span.set_attribute("cortex.cancelled", true);
            }
        }
        self.close();
    }
}

/// An attribute value from an argument, borrowed: `attributes(k = expr)`
/// expands to `ToAttribute::to_attribute(&(expr))`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a span attribute",
    label = "not a string, number, bool or char",
    note = "give a value of one of those types, for example `key = value.to_string()` or `key = value.id`"
)]
pub trait ToAttribute {
    /// The value.
    fn to_attribute(&self) -> Value;
}

impl<T: ToAttribute + ?Sized> ToAttribute for &T {
    fn to_attribute(&self) -> Value {
        (**self).to_attribute()
    }
}

impl ToAttribute for str {
    fn to_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.to_owned()))
    }
}

impl ToAttribute for String {
    fn to_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.clone()))
    }
}

impl ToAttribute for Cow<'_, str> {
    fn to_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

impl ToAttribute for char {
    fn to_attribute(&self) -> Value {
        Value::Str(Cow::Owned(self.to_string()))
    }
}

impl ToAttribute for bool {
    fn to_attribute(&self) -> Value {
        Value::Bool(*self)
    }
}

macro_rules! int_attribute {
    ($($t:ty),*) => {$(
        impl ToAttribute for $t {
            fn to_attribute(&self) -> Value {
                Value::I64(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}

int_attribute!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, i128, u128);

impl ToAttribute for f64 {
    fn to_attribute(&self) -> Value {
        Value::F64(*self)
    }
}

impl ToAttribute for f32 {
    fn to_attribute(&self) -> Value {
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
        self.0
            .as_ref()
            .err()
            .map(|e| (std::any::type_name::<E>(), e.to_string()))
    }
}

/// An `Err` that is `Display`.
pub trait ErrorIsDisplay {
    /// Its type and message, for `Err`.
    fn __cortex_error(&self) -> Option<(&'static str, String)>;
}
impl<T, E: Display> ErrorIsDisplay for &&&ErrorOf<'_, Result<T, E>> {
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        self.0
            .as_ref()
            .err()
            .map(|e| (std::any::type_name::<E>(), e.to_string()))
    }
}

/// An `Err` that is `Debug`.
pub trait ErrorIsDebug {
    /// Its type and message, for `Err`.
    fn __cortex_error(&self) -> Option<(&'static str, String)>;
}
impl<T, E: Debug> ErrorIsDebug for &&ErrorOf<'_, Result<T, E>> {
    fn __cortex_error(&self) -> Option<(&'static str, String)> {
        self.0
            .as_ref()
            .err()
            .map(|e| (std::any::type_name::<E>(), format!("{e:?}")))
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
