//! Distributed tracing: spans that nest across `.await`, sampling (head and
//! tail), W3C Trace Context propagation, and export over OTLP/HTTP JSON to
//! any OpenTelemetry backend (the Collector, Jaeger, Tempo).
//!
//! Put [`#[traced]`](crate::traced) on a function, install a tracer once,
//! and every call is a span, a child of whatever span is current:
//!
//! ```
//! use cortex::trace::{InMemoryExporter, Tracer};
//!
//! #[cortex::traced]
//! fn load_cart(user: u64) -> Vec<u64> { vec![user] }
//!
//! #[cortex::traced(name = "checkout", attributes(user.id = user))]
//! fn checkout(user: u64) -> usize { load_cart(user).len() }
//!
//! let exporter = InMemoryExporter::default();
//! let tracer = Tracer::builder().service_name("shop").exporter(exporter.clone()).install().unwrap();
//! checkout(7);
//! tracer.force_flush();
//!
//! let spans = exporter.spans();
//! let parent = spans.iter().find(|s| s.name == "checkout").unwrap();
//! let child = spans.iter().find(|s| s.name == "rust_out::load_cart").unwrap();
//! assert_eq!(child.parent_span_id, Some(parent.span_id));
//! assert_eq!(parent.attribute("user.id"), Some(&7i64.into()));
//! ```
//!
//! In production, [`TracerBuilder::from_env`] reads the standard
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER(_ARG)` and
//! `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` variables, so a deployment points
//! the service at a collector with no code change. The HTTP server opens a
//! `server` span for every request, continuing the caller's trace from its
//! `traceparent`.
//!
//! ## Differences from the `tracing` crate
//! `tracing` is a logging-and-spans facade whose spans reach OpenTelemetry
//! through layers; here spans are OpenTelemetry spans from the start (ids,
//! kinds, status, events), arguments are never captured unless named in
//! `attributes(...)`, and a span costs about a third of a `tracing` span
//! with a registry subscriber (see BENCHMARKS.md).

#[cfg(feature = "tracing-bridge")]
mod bridge;
mod clock;
mod context;
mod data;
mod env;
mod export;
mod id;
mod limits;
#[cfg(feature = "tracing-bridge")]
mod logs;
mod pipeline;
mod sampler;
mod span;
mod span_builder;
mod tail;
mod tracer;

#[cfg(feature = "tracing-bridge")]
pub use bridge::TracingLayer;
pub use context::{
    current, in_current_span, outgoing_headers, spawn, valid_trace_state, Instrumented, SpanContext,
};
#[cfg(feature = "http")]
pub use context::{extract, inject};
pub use data::{Event, KeyValue, SpanData, SpanKind, Status, Value};
pub use export::{
    encode_otlp_json, encode_otlp_protobuf, ExportError, InMemoryExporter, OtlpExporter,
    OtlpOptions, Protocol, SpanExporter,
};
pub use id::{SpanId, TraceId};
pub use limits::SpanLimits;
#[cfg(feature = "tracing-bridge")]
pub use logs::{log_ids, JsonLines, WithTraceIds};
pub(crate) use sampler::{sampler_ratio_override, set_sampler_ratio_override};
pub use sampler::{Sampler, TailSampling};
pub use span::{Entered, Span};
pub use span_builder::{Parent, SpanBuilder};
pub use tracer::{global, ConfigError, Tracer, TracerBuilder};

pub(crate) use clock::now_unix_nanos;
pub(crate) use context::{
    current_raw, enter as enter_current, restore as restore_current, sampled_current, tracing_on,
    Active,
};
