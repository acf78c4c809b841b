//! Log lines that name their trace (feature `tracing-bridge`): formatters
//! for `tracing_subscriber::fmt` that add the current span's `trace_id`
//! and `span_id`, so logs and traces join in Grafana, Loki or Elastic.

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value as Json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::id::{SpanId, TraceId};

/// The trace and span ids of the sampled span current on this thread (or
/// in this task), as a log line should carry them; `None` outside a
/// sampled span.
pub fn log_ids() -> Option<(TraceId, SpanId)> {
    let (trace, span) = super::context::sampled_current()?;
    Some((TraceId::from_u128(trace)?, SpanId::from_u64(span)?))
}

/// Wraps a `tracing_subscriber::fmt` event format and starts each line
/// written in a sampled span with `trace_id=… span_id=… `.
///
/// ```
/// use cortex::trace::{InMemoryExporter, Tracer, TracingLayer, WithTraceIds};
/// use std::sync::{Arc, Mutex};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let lines = Arc::new(Mutex::new(Vec::<u8>::new()));
/// let sink = lines.clone();
/// let tracer = Tracer::builder().exporter(InMemoryExporter::default()).build();
/// let subscriber = tracing_subscriber::registry()
///     .with(TracingLayer::new(tracer))
///     .with(
///         tracing_subscriber::fmt::layer()
///             .event_format(WithTraceIds::new(tracing_subscriber::fmt::format().without_time()))
///             .with_ansi(false)
///             .with_writer(move || Sink(sink.clone())),
///     );
/// # struct Sink(Arc<Mutex<Vec<u8>>>);
/// # impl std::io::Write for Sink {
/// #     fn write(&mut self, b: &[u8]) -> std::io::Result<usize> { self.0.lock().unwrap().extend_from_slice(b); Ok(b.len()) }
/// #     fn flush(&mut self) -> std::io::Result<()> { Ok(()) }
/// # }
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracer.start("checkout");
///     let _in = span.enter();
///     tracing::info!("paid");
/// });
/// let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
/// assert!(text.starts_with("trace_id="), "{text}");
/// assert!(text.contains(" span_id=") && text.contains("paid"));
/// ```
#[derive(Debug, Clone)]
pub struct WithTraceIds<F> {
    inner: F,
}

impl<F> WithTraceIds<F> {
    /// Adds the ids in front of what `inner` writes.
    pub fn new(inner: F) -> Self {
        WithTraceIds { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some((trace, span)) = log_ids() {
            write!(
                writer,
                "trace_id={} span_id={} ",
                trace.to_hex(),
                span.to_hex()
            )?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// Writes each event as one JSON object per line: `timestamp` (RFC 3339,
/// UTC), `level`, `target`, `message`, the event's other fields under
/// `fields`, and `trace_id`/`span_id` in a sampled span — the shape Loki's
/// and Elastic's JSON parsers take as it is.
///
/// ```
/// use cortex::trace::JsonLines;
///
/// let subscriber = tracing_subscriber::fmt().event_format(JsonLines).finish();
/// # let _ = subscriber;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    fields: Map<String, Json>,
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.fields.insert(field.name().into(), text.into());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.fields.insert(field.name().into(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.insert(field.name().into(), value.into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            crate::util::rfc3339(SystemTime::now()).into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(message) = fields.message {
            line.insert("message".into(), message.into());
        }
        if !fields.fields.is_empty() {
            line.insert("fields".into(), Json::Object(fields.fields));
        }
        if let Some((trace, span)) = log_ids() {
            line.insert("trace_id".into(), trace.to_hex().into());
            line.insert("span_id".into(), span.to_hex().into());
        }
        writeln!(writer, "{}", Json::Object(line))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_835_438_400_123);
        assert_eq!(crate::util::rfc3339(at), "2028-02-29T12:00:00.123Z");
        assert_eq!(
            crate::util::rfc3339(std::time::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
    }
}
