//! Spans with options: kind, parent, attributes, a start time.

use std::borrow::Cow;

use super::context::{self, Current, SpanContext};
use super::data::{KeyValue, SpanKind, Value};
use super::span::Span;
use super::tracer::Tracer;

/// Where a new span's parent comes from.
#[derive(Debug, Clone)]
pub enum Parent {
    /// The current span of this thread or task (the default).
    Current,
    /// No parent: a new trace.
    Root,
    /// This context, usually a caller's from `traceparent`.
    Context(SpanContext),
}

/// Options of a span about to start; see [`Tracer::span`].
#[derive(Debug)]
pub struct SpanBuilder {
    tracer: Tracer,
    name: Cow<'static, str>,
    kind: SpanKind,
    parent: Parent,
    attributes: Vec<KeyValue>,
    start_time: Option<std::time::SystemTime>,
}

impl SpanBuilder {
    pub(crate) fn new(tracer: Tracer, name: Cow<'static, str>) -> Self {
        SpanBuilder {
            tracer,
            name,
            kind: SpanKind::Internal,
            parent: Parent::Current,
            attributes: Vec::new(),
            start_time: None,
        }
    }

    /// When it started, if not now (for work measured elsewhere).
    pub fn start_time(mut self, at: std::time::SystemTime) -> Self {
        self.start_time = Some(at);
        self
    }

    /// Its kind (default internal).
    pub fn kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Its parent (default: the current span).
    pub fn parent(mut self, parent: Parent) -> Self {
        self.parent = parent;
        self
    }

    /// An attribute set from the start.
    pub fn attribute(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.attributes.push(KeyValue::new(key, value));
        self
    }

    /// Starts it.
    pub fn start(self) -> Span {
        let (parent, state) = match self.parent {
            Parent::Current => (context::current_raw(), None),
            Parent::Root => (Current::NONE, Some(None)),
            Parent::Context(cx) if cx.is_valid() => {
                (Current::from_context(&cx, 0), Some(cx.trace_state))
            }
            Parent::Context(_) => (Current::NONE, Some(None)),
        };
        let mut span = self.tracer.start_with(self.name, self.kind, parent, state);
        for kv in self.attributes {
            span.set_attribute(kv.key, kv.value);
        }
        if let (Some(at), Some(r)) = (self.start_time, span.recording.as_mut()) {
            r.raw
                .extras
                .get_or_insert_with(Box::default)
                .start_unix_nanos = Some(
                at.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            );
        }
        span
    }
}
