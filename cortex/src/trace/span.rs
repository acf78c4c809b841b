//! The span handle, and the recording it fills while it is open.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::sync::Arc;

use super::context::{self, Active, Current, SpanContext};
use super::data::{Event, Extras, KeyValue, RawSpan, SpanKind, Status, Value};

use super::tracer::Tracer;

pub(crate) struct Recording {
    pub(crate) raw: RawSpan,
    pub(crate) tracer: Tracer,
}

thread_local! {
    // Boxes, not values: a box is handed to the next span as it is.
    #[allow(clippy::vec_box)]
    /// Boxes of ended spans, reused by the next spans of this thread so a
    /// sampled span allocates nothing in the steady state.
    static POOL: std::cell::RefCell<Vec<Box<Recording>>> = const { std::cell::RefCell::new(Vec::new()) };
}

const POOL_MAX: usize = 64;

impl Recording {
    /// A recording for a span starting now. Fields are written straight
    /// into the (pooled) box: building the span on the stack and moving it
    /// in would read back freshly written bytes with wide loads, which the
    /// CPU cannot forward from the narrow stores (a stall on every span).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        tracer: Tracer,
        trace_id: u128,
        span_id: u64,
        parent_span_id: u64,
        name: Cow<'static, str>,
        kind: SpanKind,
        parent_is_remote: bool,
        extras: Option<Box<Extras>>,
    ) -> Box<Recording> {
        let reused = POOL
            .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .ok()
            .flatten();
        let mut b = match reused {
            Some(b) => b,
            None => Box::new(Recording {
                raw: RawSpan::EMPTY,
                tracer,
            }),
        };
        b.tracer = tracer;
        let r = &mut b.raw;
        r.trace_id = trace_id;
        r.span_id = span_id;
        r.parent_span_id = parent_span_id;
        r.name = name;
        r.kind = kind;
        r.parent_is_remote = parent_is_remote;
        r.failed = false;
        r.extras = extras;
        r.end = 0;
        r.start = super::clock::raw_now();
        b
    }

    /// Takes the span out and keeps the box for the next one.
    #[inline]
    pub(crate) fn take(mut self: Box<Self>) -> RawSpan {
        let raw = std::mem::replace(&mut self.raw, RawSpan::EMPTY);
        // `try_with`: not while this thread's locals are destroyed.
        let mut boxed = Some(self);
        let _ = POOL.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                if p.len() < POOL_MAX {
                    if let Some(b) = boxed.take() {
                        p.push(b);
                    }
                }
            }
        });
        raw
    }
}

/// A span in progress. Ends when [`end`](Span::end) is called or when it is
/// dropped; after that every change is ignored.
///
/// A span that is not sampled still has a context (its children and the
/// `traceparent` of outgoing requests carry it) but records nothing, and
/// costs almost nothing.
///
/// ```
/// use cortex::trace::{InMemoryExporter, SpanKind, Status, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder().exporter(exporter.clone()).build();
/// let mut span = tracer.span("charge").kind(SpanKind::Client).start();
/// span.set_attribute("payment.amount_cents", 1299);
/// span.add_event("card authorised", vec![]);
/// span.set_status(Status::Ok);
/// span.end();
/// span.set_attribute("ignored", true); // ended: no effect
///
/// tracer.force_flush();
/// let spans = exporter.spans();
/// assert_eq!(spans[0].name, "charge");
/// assert_eq!(spans[0].attributes.len(), 1);
/// ```
pub struct Span {
    pub(crate) current: Current,
    pub(crate) state: Option<Arc<str>>,
    pub(crate) recording: Option<Box<Recording>>,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.context())
            .field("recording", &self.recording.is_some())
            .finish()
    }
}

impl Span {
    /// A span that records nothing, with no valid context (what spans are
    /// when no tracer is installed).
    pub const fn none() -> Self {
        Span {
            current: Current::NONE,
            state: None,
            recording: None,
        }
    }

    /// Its context: ids, sampled flag, `tracestate`.
    pub fn context(&self) -> SpanContext {
        self.current.to_context(self.state.clone())
    }

    /// Whether it has ids (a span made with no tracer has none).
    #[inline]
    pub fn is_valid(&self) -> bool {
        self.current.is_some()
    }

    /// Whether it records (sampled and not ended).
    #[inline]
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Sets an attribute; a key set again gets the new value. Past the
    /// tracer's [`SpanLimits`](super::SpanLimits) (128 attributes by
    /// default) new keys are dropped and counted.
    pub fn set_attribute(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        if let Some(r) = &mut self.recording {
            let limits = r.tracer.span_limits();
            limits.set_attribute(r.raw.extras(), KeyValue::new(key, value));
        }
    }

    /// Adds a timestamped event (past the tracer's
    /// [`SpanLimits`](super::SpanLimits), 128 by default, dropped and
    /// counted).
    pub fn add_event(&mut self, name: impl Into<Cow<'static, str>>, attributes: Vec<KeyValue>) {
        if let Some(r) = &mut self.recording {
            let limits = r.tracer.span_limits();
            let event = Event {
                name: name.into(),
                time_unix_nanos: super::clock::now_unix_nanos(),
                attributes,
                dropped_attributes_count: 0,
            };
            limits.add_event(r.raw.extras(), event);
        }
    }

    /// Renames the span (for a name known only once work has begun, like an
    /// HTTP route).
    pub fn update_name(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(r) = &mut self.recording {
            r.raw.name = name.into();
        }
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: Status) {
        if let Some(r) = &mut self.recording {
            r.raw.failed = matches!(status, Status::Error(_));
            r.raw.extras().status = status;
        }
    }

    /// Records an error as an `exception` event (`exception.type`,
    /// `exception.message`, per OpenTelemetry's conventions) and sets the
    /// status to error with its message.
    pub fn record_exception<E: Error + ?Sized>(&mut self, error: &E) {
        self.record_error(std::any::type_name::<E>(), error.to_string());
    }

    pub(crate) fn record_error(&mut self, type_name: &'static str, message: String) {
        if self.is_recording() {
            self.add_event(
                "exception",
                vec![
                    KeyValue::new("exception.type", type_name),
                    KeyValue::new("exception.message", message.clone()),
                ],
            );
            self.set_status(Status::Error(Cow::Owned(message)));
        }
    }

    /// Ends the span now; later changes are ignored.
    #[inline]
    pub fn end(&mut self) {
        if let Some(r) = self.recording.take() {
            let tracer = r.tracer;
            tracer.finish(r, self.current.local_root);
        }
    }

    /// Makes this span the current one on this thread until the guard is
    /// dropped: spans started meanwhile are its children.
    #[inline]
    pub fn enter(&self) -> Entered {
        Entered {
            // A span without ids (no tracer) leaves the current one alone.
            previous: self
                .is_valid()
                .then(|| context::enter(self.current, self.state.clone())),
            _not_send: std::marker::PhantomData,
        }
    }

    /// What a future carrying this span needs.
    #[inline]
    pub(crate) fn active(&self) -> Active {
        Active {
            current: self.current,
            state: self.state.clone(),
        }
    }
}

impl Drop for Span {
    #[inline]
    fn drop(&mut self) {
        self.end();
    }
}

/// Restores the previous current span when dropped; see [`Span::enter`].
#[derive(Debug)]
pub struct Entered {
    previous: Option<Active>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        if let Some(p) = self.previous.take() {
            context::restore(p);
        }
    }
}
