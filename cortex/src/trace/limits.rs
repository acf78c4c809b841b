//! Span limits, as the OpenTelemetry SDK has them: how many attributes and
//! events a span keeps, and how long an attribute's text may be.

use std::borrow::Cow;

use super::data::{Event, Extras, KeyValue, Value};
use super::tracer::ConfigError;

/// How much one span may carry. What goes past a limit is dropped and
/// counted: the counts are exported (`droppedAttributesCount`,
/// `droppedEventsCount`, and an event's own `droppedAttributesCount`), so
/// a backend can show that something is missing.
///
/// The defaults are OpenTelemetry's: 128 attributes, 128 events, 128
/// attributes per event, text values of any length. Setting an attribute
/// whose key a span has already replaces the value and drops nothing.
///
/// ```
/// use cortex::trace::{InMemoryExporter, SpanLimits, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder()
///     .span_limits(SpanLimits::default().max_attributes(2).max_attribute_value_length(4))
///     .exporter(exporter.clone())
///     .build();
/// let mut span = tracer.start("work");
/// span.set_attribute("a", "abcdefgh");
/// span.set_attribute("b", 1);
/// span.set_attribute("c", 2); // one too many
/// span.end();
/// tracer.force_flush();
/// let span = &exporter.spans()[0];
/// assert_eq!(span.attribute("a").unwrap().to_string(), "abcd");
/// assert!(span.attribute("c").is_none());
/// assert_eq!(span.dropped_attributes_count, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanLimits {
    max_attributes: u32,
    max_events: u32,
    max_event_attributes: u32,
    max_value_length: Option<u32>,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_event_attributes: 128,
            max_value_length: None,
        }
    }
}

impl SpanLimits {
    /// Attributes a span keeps at most (default 128).
    pub fn max_attributes(mut self, n: u32) -> Self {
        self.max_attributes = n;
        self
    }

    /// Events a span keeps at most (default 128).
    pub fn max_events(mut self, n: u32) -> Self {
        self.max_events = n;
        self
    }

    /// Attributes an event keeps at most (default 128).
    pub fn max_event_attributes(mut self, n: u32) -> Self {
        self.max_event_attributes = n;
        self
    }

    /// Text attribute values are cut to this many bytes (at a character
    /// boundary; default: no limit).
    pub fn max_attribute_value_length(mut self, bytes: u32) -> Self {
        self.max_value_length = Some(bytes);
        self
    }

    /// The defaults, with OpenTelemetry's variables applied where set:
    /// `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` (else `OTEL_ATTRIBUTE_COUNT_LIMIT`),
    /// `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`,
    /// `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (else
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`).
    ///
    /// # Errors
    /// [`ConfigError::BadVariable`] for a value that is not a whole number.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |names: &[&'static str]| -> Result<Option<u32>, ConfigError> {
            for &name in names {
                if let Some(value) = get(name) {
                    return value.trim().parse::<u32>().map(Some).map_err(|_| {
                        ConfigError::BadVariable {
                            variable: name,
                            value,
                            reason: "expected a whole number, such as 128".into(),
                        }
                    });
                }
            }
            Ok(None)
        };
        let d = SpanLimits::default();
        Ok(SpanLimits {
            max_attributes: number(&[
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])?
            .unwrap_or(d.max_attributes),
            max_events: number(&["OTEL_SPAN_EVENT_COUNT_LIMIT"])?.unwrap_or(d.max_events),
            max_event_attributes: number(&["OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT"])?
                .unwrap_or(d.max_event_attributes),
            max_value_length: number(&[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ])?
            .or(d.max_value_length),
        })
    }

    /// Cuts a text value to the length limit.
    fn cut(&self, value: Value) -> Value {
        let (Some(max), Value::Str(text)) = (self.max_value_length, &value) else {
            return value;
        };
        let max = max as usize;
        if text.len() <= max {
            return value;
        }
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Value::Str(match text {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
            Cow::Owned(s) => Cow::Owned(s[..end].to_owned()),
        })
    }

    /// Sets an attribute on `extras` under these limits.
    pub(crate) fn set_attribute(&self, extras: &mut Extras, attribute: KeyValue) {
        let value = self.cut(attribute.value);
        if let Some(kv) = extras
            .attributes
            .iter_mut()
            .find(|kv| kv.key == attribute.key)
        {
            kv.value = value;
        } else if extras.attributes.len() < self.max_attributes as usize {
            extras.attributes.push(KeyValue {
                key: attribute.key,
                value,
            });
        } else {
            extras.dropped_attributes += 1;
        }
    }

    /// Adds an event to `extras` under these limits.
    pub(crate) fn add_event(&self, extras: &mut Extras, mut event: Event) {
        if extras.events.len() >= self.max_events as usize {
            extras.dropped_events += 1;
            return;
        }
        let max = self.max_event_attributes as usize;
        if event.attributes.len() > max {
            event.dropped_attributes_count += (event.attributes.len() - max) as u32;
            event.attributes.truncate(max);
        }
        for kv in &mut event.attributes {
            kv.value = self.cut(std::mem::replace(&mut kv.value, Value::Bool(false)));
        }
        extras.events.push(event);
    }
}
