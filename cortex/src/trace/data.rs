//! What a span records (kind, status, attributes, events), as it travels
//! from an ended span to the exporters.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use super::id::{SpanId, TraceId};

/// What a span stands for, as OpenTelemetry names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// Work inside the service.
    #[default]
    Internal,
    /// The handling of a request from a client.
    Server,
    /// A request to another service.
    Client,
    /// A message sent for later handling.
    Producer,
    /// The handling of a message.
    Consumer,
}

impl SpanKind {
    /// The OTLP enum value (`SPAN_KIND_INTERNAL` = 1 ...).
    pub const fn otlp(self) -> u8 {
        match self {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }

    /// The lowercase name, as `#[traced(kind = "...")]` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// How a span's work ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Not said (the default).
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed, with a message.
    Error(Cow<'static, str>),
}

impl Status {
    /// The OTLP status code (0 unset, 1 ok, 2 error).
    pub const fn otlp(&self) -> u8 {
        match self {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error(_) => 2,
        }
    }
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text.
    Str(Cow<'static, str>),
    /// A boolean.
    Bool(bool),
    /// An integer.
    I64(i64),
    /// A float.
    F64(f64),
}

macro_rules! value_from {
    ($($t:ty => $v:ident via $conv:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$v($conv(v))
            }
        })*
    };
}

value_from! {
    &'static str => Str via Cow::Borrowed,
    String => Str via Cow::Owned,
    Cow<'static, str> => Str via std::convert::identity,
    bool => Bool via std::convert::identity,
    i64 => I64 via std::convert::identity,
    i32 => I64 via i64::from,
    u32 => I64 via i64::from,
    u16 => I64 via i64::from,
    u8 => I64 via i64::from,
    // Values above i64::MAX are clamped (OTLP integers are signed).
    u64 => I64 via |v: u64| i64::try_from(v).unwrap_or(i64::MAX),
    usize => I64 via |v: usize| i64::try_from(v).unwrap_or(i64::MAX),
    f64 => F64 via std::convert::identity,
    f32 => F64 via f64::from,
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Str(Cow::Owned(v.clone()))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            Value::Bool(b) => write!(f, "{b}"),
            Value::I64(i) => write!(f, "{i}"),
            Value::F64(x) => write!(f, "{x}"),
        }
    }
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The key (OpenTelemetry semantic convention names where they exist).
    pub key: Cow<'static, str>,
    /// The value.
    pub value: Value,
}

impl KeyValue {
    /// An attribute.
    pub fn new(key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Something that happened at a moment during a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What happened.
    pub name: Cow<'static, str>,
    /// When, in nanoseconds since the Unix epoch.
    pub time_unix_nanos: u64,
    /// Details.
    pub attributes: Vec<KeyValue>,
    /// Attributes given past the [limit](super::SpanLimits::max_event_attributes).
    pub dropped_attributes_count: u32,
}

/// A finished span, as exporters receive it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SpanData {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// Whether the parent came from another process (a `traceparent`).
    pub parent_is_remote: bool,
    /// The W3C `tracestate` passed through from the caller.
    pub trace_state: Option<Arc<str>>,
    /// The operation.
    pub name: Cow<'static, str>,
    /// What the span stands for.
    pub kind: SpanKind,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
    /// Attributes.
    pub attributes: Vec<KeyValue>,
    /// Events, in the order they were added.
    pub events: Vec<Event>,
    /// How it ended.
    pub status: Status,
    /// Attributes set past the [limit](super::SpanLimits).
    pub dropped_attributes_count: u32,
    /// Events added past the [limit](super::SpanLimits).
    pub dropped_events_count: u32,
}

impl SpanData {
    /// How long it lasted.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }

    /// The attribute with this key.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .rev()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }
}

/// What a recording span carries until it ends, kept small: times are raw
/// clock ticks (turned into Unix time on the export thread), and
/// attributes, events and status live in `extras`, made only when used.
#[derive(Debug)]
pub(crate) struct RawSpan {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    /// 0 for a root span.
    pub(crate) parent_span_id: u64,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) parent_is_remote: bool,
    pub(crate) failed: bool,
    pub(crate) extras: Option<Box<Extras>>,
}

#[derive(Debug, Default)]
pub(crate) struct Extras {
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) events: Vec<Event>,
    pub(crate) status: Status,
    pub(crate) trace_state: Option<Arc<str>>,
    /// A start given as Unix time (`SpanBuilder::start_time`).
    pub(crate) start_unix_nanos: Option<u64>,
    pub(crate) dropped_attributes: u32,
    pub(crate) dropped_events: u32,
}

impl RawSpan {
    /// The empty value a pooled box holds between two spans.
    pub(crate) const EMPTY: RawSpan = RawSpan {
        trace_id: 0,
        span_id: 0,
        parent_span_id: 0,
        start: 0,
        end: 0,
        name: Cow::Borrowed(""),
        kind: SpanKind::Internal,
        parent_is_remote: false,
        failed: false,
        extras: None,
    };

    pub(crate) fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }

    /// How long it lasted, in nanoseconds.
    pub(crate) fn duration_nanos(&self) -> u64 {
        let (start, end) = self.unix_times();
        end.saturating_sub(start)
    }

    fn unix_times(&self) -> (u64, u64) {
        let end = super::clock::raw_to_unix_nanos(self.end);
        let start = match self.extras.as_ref().and_then(|e| e.start_unix_nanos) {
            Some(at) => at,
            None => super::clock::raw_to_unix_nanos(self.start),
        };
        (start, end.max(start))
    }

    /// The exporters' form.
    pub(crate) fn into_data(self) -> SpanData {
        let (start_unix_nanos, end_unix_nanos) = self.unix_times();
        let extras = self.extras.map(|b| *b).unwrap_or_default();
        SpanData {
            trace_id: TraceId::from_u128(self.trace_id).unwrap_or_else(TraceId::random),
            span_id: SpanId::from_u64(self.span_id).unwrap_or_else(SpanId::random),
            parent_span_id: SpanId::from_u64(self.parent_span_id),
            parent_is_remote: self.parent_is_remote,
            trace_state: extras.trace_state,
            name: self.name,
            kind: self.kind,
            start_unix_nanos,
            end_unix_nanos,
            attributes: extras.attributes,
            events: extras.events,
            status: extras.status,
            dropped_attributes_count: extras.dropped_attributes,
            dropped_events_count: extras.dropped_events,
        }
    }
}
