//! The bridge from the `tracing` crate (feature `tracing-bridge`): spans
//! opened with `tracing` become Cortex spans in the current trace.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::context::{self, Active};
use super::data::{KeyValue, Status, Value};
use super::span::Span;
use super::tracer::Tracer;
use super::Parent;

/// A `tracing_subscriber` [`Layer`](tracing_subscriber::Layer) that makes
/// every span opened with the `tracing` crate (`#[tracing::instrument]`,
/// `info_span!`, and those inside hyper, tonic, sqlx, reqwest...) a Cortex
/// span of the trace current where it opens: a child of the current Cortex
/// span (or of its explicit `tracing` parent), and the parent of Cortex
/// spans started while it is entered, on whatever thread, across `.await`
/// (each poll of an instrumented future enters it). Its fields become
/// attributes (also those recorded later), and `tracing` events inside it
/// become span events (at `INFO` and above by default; an `ERROR` event
/// also marks the span as failed).
///
/// ```
/// use cortex::trace::{InMemoryExporter, Tracer, TracingLayer};
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder().exporter(exporter.clone()).build();
/// let subscriber = tracing_subscriber::registry().with(TracingLayer::new(tracer));
/// tracing::subscriber::with_default(subscriber, || {
///     let root = tracer.start("handle order");
///     let _in = root.enter();
///     let load = tracing::info_span!("load cart", cart.id = 7);
///     let _entered = load.enter();
///     tracing::info!(items = 3, "cart loaded");
/// });
/// tracer.force_flush();
/// let spans = exporter.spans();
/// let load = spans.iter().find(|s| s.name == "load cart").unwrap();
/// let root = spans.iter().find(|s| s.name == "handle order").unwrap();
/// assert_eq!(load.parent_span_id, Some(root.span_id));
/// assert_eq!(load.attribute("cart.id").unwrap().to_string(), "7");
/// assert_eq!(load.events[0].name, "cart loaded");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TracingLayer {
    tracer: Option<Tracer>,
    events: Level,
}

impl Default for TracingLayer {
    /// A layer for the installed (global) tracer, events at `INFO` and
    /// above.
    fn default() -> Self {
        TracingLayer {
            tracer: None,
            events: Level::INFO,
        }
    }
}

impl TracingLayer {
    /// A layer making spans with `tracer`.
    pub fn new(tracer: Tracer) -> Self {
        TracingLayer {
            tracer: Some(tracer),
            events: Level::INFO,
        }
    }

    /// A layer for whatever tracer is installed when each span opens
    /// ([`TracerBuilder::install`](super::TracerBuilder::install)); none:
    /// `tracing` spans stay `tracing`'s alone.
    pub fn global() -> Self {
        Self::default()
    }

    /// `tracing` events at this level and more severe become span events
    /// (default `INFO`; `Level::TRACE` keeps all).
    pub fn events(mut self, level: Level) -> Self {
        self.events = level;
        self
    }

    fn tracer(&self) -> Option<Tracer> {
        self.tracer.or_else(super::global)
    }
}

/// The Cortex span of a `tracing` span, kept in its extensions.
struct Bridged(Span);

thread_local! {
    /// What each `on_enter` on this thread replaced, restored by its
    /// `on_exit` (entries and exits nest per thread).
    static ENTERED: RefCell<Vec<Active>> = const { RefCell::new(Vec::new()) };
}

/// Fields as attributes.
struct Fields<'a>(&'a mut Span);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .set_attribute(field.name(), Value::Str(Cow::Owned(format!("{value:?}"))));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.set_attribute(field.name(), value.to_owned());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set_attribute(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set_attribute(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set_attribute(field.name(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set_attribute(field.name(), value);
    }
}

/// An event's message and fields.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    attributes: Vec<KeyValue>,
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.attributes
                .push(KeyValue::new(field.name(), format!("{value:?}")));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.attributes
                .push(KeyValue::new(field.name(), value.to_owned()));
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push(KeyValue::new(field.name(), value));
    }
}

impl<S> tracing_subscriber::Layer<S> for TracingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(tracer) = self.tracer() else {
            return;
        };
        let Some(span) = ctx.span(id) else {
            return;
        };
        // An explicit `parent:` is that span's Cortex span; otherwise the
        // current Cortex span, which an entered `tracing` span also is.
        let explicit = attrs.parent().and_then(|p| {
            ctx.span(p)?
                .extensions()
                .get::<Bridged>()
                .map(|b| b.0.context())
        });
        let parent = match explicit {
            Some(cx) => Parent::Context(cx),
            None if attrs.is_root() => Parent::Root,
            None => Parent::Current,
        };
        let mut bridged = tracer.span(attrs.metadata().name()).parent(parent).start();
        if bridged.is_recording() {
            let meta = attrs.metadata();
            if let Some(module) = meta.module_path() {
                bridged.set_attribute("code.namespace", module);
            }
            attrs.record(&mut Fields(&mut bridged));
        }
        span.extensions_mut().insert(Bridged(bridged));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(b) = span.extensions_mut().get_mut::<Bridged>() {
                if b.0.is_recording() {
                    values.record(&mut Fields(&mut b.0));
                }
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        if level > self.events {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(b) = ext.get_mut::<Bridged>() else {
            return;
        };
        if !b.0.is_recording() {
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let name = fields
            .message
            .take()
            .unwrap_or_else(|| event.metadata().name().to_owned());
        fields
            .attributes
            .push(KeyValue::new("level", level.as_str()));
        if level == Level::ERROR {
            b.0.set_status(Status::Error(Cow::Owned(name.clone())));
        }
        b.0.add_event(name, fields.attributes);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let ext = span.extensions();
        let Some(b) = ext.get::<Bridged>() else {
            return;
        };
        if !b.0.is_valid() {
            return;
        }
        let active = b.0.active();
        let saved = context::enter(active.current, active.state);
        let _ = ENTERED.try_with(|e| e.borrow_mut().push(saved));
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let valid = span
            .extensions()
            .get::<Bridged>()
            .is_some_and(|b| b.0.is_valid());
        if !valid {
            return;
        }
        if let Ok(Some(saved)) = ENTERED.try_with(|e| e.borrow_mut().pop()) {
            context::restore(saved);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(Bridged(mut bridged)) = span.extensions_mut().remove::<Bridged>() {
                bridged.end();
            }
        }
    }
}
