//! The tracer: starts spans, samples them and hands ended ones on.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::context::{self, Current};
use super::data::{Extras, SpanKind, Value};
use super::export::{OtlpExporter, OtlpOptions, SpanExporter};
use super::id::{SpanId, TraceId};
use super::limits::SpanLimits;
use super::pipeline::{BatchConfig, Pipeline};
use super::sampler::{Sampler, TailSampling};
use super::span::{Recording, Span};
use super::span_builder::SpanBuilder;
use super::tail::TailBuffer;

/// Starts spans. A `Tracer` is a cheap `Copy` handle to state that lives for
/// the rest of the program (like a global OpenTelemetry provider);
/// [`install`](TracerBuilder::install) makes one the tracer `#[traced]` and
/// the HTTP server use.
///
/// ```
/// use cortex::trace::{InMemoryExporter, Sampler, Tracer};
///
/// let exporter = InMemoryExporter::default();
/// let tracer = Tracer::builder()
///     .service_name("checkout")
///     .sampler(Sampler::AlwaysOn)
///     .exporter(exporter.clone())
///     .build();
/// {
///     let parent = tracer.start("handle order");
///     let _current = parent.enter();
///     let _child = tracer.start("load cart"); // a child of "handle order"
/// }
/// tracer.force_flush();
/// let spans = exporter.spans();
/// assert_eq!(spans.len(), 2);
/// assert_eq!(spans[0].name, "load cart");
/// assert_eq!(spans[0].parent_span_id, Some(spans[1].span_id));
/// ```
#[derive(Clone, Copy)]
pub struct Tracer {
    inner: &'static Inner,
}

struct Inner {
    service_name: String,
    sampler: Sampler,
    limits: SpanLimits,
    pipeline: Option<Arc<Pipeline>>,
    tail: Option<Arc<TailBuffer>>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("service_name", &self.inner.service_name)
            .field("sampler", &self.inner.sampler)
            .field("exporting", &self.inner.pipeline.is_some())
            .field("tail_sampling", &self.inner.tail.as_ref().map(|_| ()))
            .finish()
    }
}

static GLOBAL: OnceLock<Tracer> = OnceLock::new();

/// The installed tracer, if any.
#[inline]
pub fn global() -> Option<Tracer> {
    GLOBAL.get().copied()
}

/// A bad tracing setting (from code or from an `OTEL_*` variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value that cannot be used.
    #[error("{variable}={value:?}: {reason}")]
    BadVariable {
        /// The variable.
        variable: &'static str,
        /// What it holds.
        value: String,
        /// What is wrong, and what would be right.
        reason: String,
    },
    /// A setting given in code cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// A tracer was installed already.
    #[error("a global tracer is installed already")]
    AlreadyInstalled,
}

/// Builds a [`Tracer`].
pub struct TracerBuilder {
    pub(super) service_name: String,
    pub(super) sampler: Sampler,
    tail: Option<TailSampling>,
    /// Given in code; else read from the environment at `build`.
    pub(super) limits: Option<SpanLimits>,
    pub(super) exporter: Option<Box<dyn SpanExporter>>,
    /// An OTLP exporter to make at `build`, with the service name known
    /// then (so `otlp(..)` and `service_name(..)` work in any order).
    pub(super) otlp: Option<OtlpOptions>,
    pub(super) batch: BatchConfig,
    /// Resource attributes for the OTLP exporter, and what the
    /// `OTEL_EXPORTER_OTLP_*` variables said, applied to it at `build`.
    pub(super) resource: Vec<(String, Value)>,
    pub(super) otlp_env: crate::otlp::env::OtlpEnv,
}

impl fmt::Debug for TracerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracerBuilder")
            .field("service_name", &self.service_name)
            .field("sampler", &self.sampler)
            .field("tail", &self.tail)
            .field(
                "exporter",
                &(self.exporter.is_some() || self.otlp.is_some()),
            )
            .field("batch", &self.batch)
            .finish()
    }
}

impl Default for TracerBuilder {
    fn default() -> Self {
        TracerBuilder {
            service_name: "unknown_service".into(),
            sampler: Sampler::default(),
            tail: None,
            limits: None,
            exporter: None,
            otlp: None,
            batch: BatchConfig::default(),
            resource: Vec::new(),
            otlp_env: crate::otlp::env::OtlpEnv::default(),
        }
    }
}

impl TracerBuilder {
    /// The `service.name` resource attribute (default `unknown_service`,
    /// as OpenTelemetry says).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// The head sampler (default `ParentBased(AlwaysOn)`).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Decide at the end of each trace's local root span instead; see
    /// [`TailSampling`]. Only what the head sampler samples is held.
    pub fn tail_sampling(mut self, tail: TailSampling) -> Self {
        self.tail = Some(tail);
        self
    }

    /// A resource attribute the OTLP exporter sends besides `service.name`
    /// and `telemetry.sdk.*` (`service.version`,
    /// `deployment.environment.name`...).
    pub fn resource_attribute(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.resource.retain(|(k, _)| k != key);
        self.resource.push((key.to_owned(), value.into()));
        self
    }

    /// What one span may carry (default: [`SpanLimits::default`] with the
    /// `OTEL_SPAN_*_LIMIT` variables applied; a bad variable is logged and
    /// ignored, [`from_env`](Self::from_env) reports it as an error).
    pub fn span_limits(mut self, limits: SpanLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Where ended spans go. Without one, spans still carry context (and
    /// `traceparent` goes out) but nothing is exported.
    pub fn exporter(mut self, exporter: impl SpanExporter) -> Self {
        self.exporter = Some(Box::new(exporter));
        self.otlp = None;
        self
    }

    /// Export over OTLP/HTTP JSON to `endpoint` (a base URL such as
    /// `http://localhost:4318`; `/v1/traces` is added).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an endpoint that is not an `http://` URL.
    pub fn otlp(self, endpoint: &str) -> Result<Self, ConfigError> {
        let mut this = self;
        this.otlp = Some(OtlpOptions::new(endpoint)?);
        this.exporter = None;
        Ok(this)
    }

    /// Spans per export batch at most (default 512).
    pub fn max_batch(mut self, n: usize) -> Self {
        self.batch.max_batch = n.max(1);
        self
    }

    /// How long ended spans wait for a batch to fill (default 1 s).
    pub fn batch_delay(mut self, delay: Duration) -> Self {
        self.batch.delay = delay;
        self
    }

    /// Ended spans each thread may have waiting for export (default 2048,
    /// about 200 KiB per thread that ends spans); more are dropped and
    /// counted in `cortex_trace_spans_dropped_total{reason="queue_full"}`.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.batch.queue = n.max(1);
        self
    }

    /// The most [`Tracer::force_flush`] waits for the export (default
    /// 5 s).
    pub fn force_flush_timeout(mut self, timeout: Duration) -> Self {
        self.batch.flush_timeout = timeout;
        self
    }

    /// The most [`Tracer::shutdown`] waits for the last export (default
    /// 30 s); past it the spans still waiting are given up.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.batch.shutdown_timeout = timeout;
        self
    }

    /// The tracer. Its state lives for the rest of the program.
    pub fn build(self) -> Tracer {
        super::context::TRACING.store(true, std::sync::atomic::Ordering::Relaxed);
        let exporter = match self.otlp {
            Some(options) => {
                let mut options = self
                    .otlp_env
                    .apply(options.service_name(&self.service_name));
                for (key, value) in self.resource {
                    options = options.resource_attribute(&key, value);
                }
                Some(Box::new(OtlpExporter::new(options)) as Box<dyn SpanExporter>)
            }
            None => self.exporter,
        };
        let tail = self.tail.map(|t| Arc::new(TailBuffer::new(t)));
        let pipeline =
            exporter.map(|exporter| Pipeline::start(exporter, &self.batch, tail.clone()));
        let limits = self.limits.unwrap_or_else(|| {
            SpanLimits::from_vars(|name| std::env::var(name).ok()).unwrap_or_else(|error| {
                tracing::warn!(target: "cortex::trace", %error, "ignoring a span limit variable");
                SpanLimits::default()
            })
        });
        let inner: &'static Inner = Box::leak(Box::new(Inner {
            service_name: self.service_name,
            sampler: self.sampler,
            limits,
            pipeline,
            tail,
        }));
        Tracer { inner }
    }

    /// Builds the tracer and makes it the global one, used by `#[traced]`
    /// and the HTTP server.
    ///
    /// # Errors
    /// [`ConfigError::AlreadyInstalled`] if one was installed before.
    pub fn install(self) -> Result<Tracer, ConfigError> {
        if GLOBAL.get().is_some() {
            return Err(ConfigError::AlreadyInstalled);
        }
        let tracer = self.build();
        GLOBAL
            .set(tracer)
            .map_err(|_| ConfigError::AlreadyInstalled)?;
        Ok(tracer)
    }
}

impl Tracer {
    /// A builder for a tracer.
    pub fn builder() -> TracerBuilder {
        TracerBuilder::default()
    }

    /// The `service.name` it reports.
    pub fn service_name(&self) -> &str {
        &self.inner.service_name
    }

    /// What one of its spans may carry.
    pub fn span_limits(&self) -> SpanLimits {
        self.inner.limits
    }

    /// Starts an internal span, a child of the current span.
    pub fn start(&self, name: impl Into<Cow<'static, str>>) -> Span {
        self.span(name).start()
    }

    /// A span with more options (kind, parent, attributes).
    pub fn span(&self, name: impl Into<Cow<'static, str>>) -> SpanBuilder {
        SpanBuilder::new(*self, name.into())
    }

    /// Whether a span started under `parent` would be an unsampled child of
    /// an unsampled local span, and so would just share its context.
    #[inline(always)]
    pub(crate) fn shares_parent(&self, parent: &Current) -> bool {
        parent.is_some()
            && !parent.sampled
            && !parent.remote
            && parent.local_root != 0
            && !super::sampler::decide(&self.inner.sampler, Some(false), parent.trace_id())
    }

    /// Starts a span of the current span: the path `#[traced]` takes.
    #[inline]
    pub(crate) fn start_current(
        &self,
        name: &'static str,
        kind: SpanKind,
        parent: Current,
    ) -> Span {
        self.start_with(Cow::Borrowed(name), kind, parent, None)
    }

    /// The one place spans start. `parent` is `Current::NONE` for a root;
    /// a parent with `local_root == 0` (from another process, or given
    /// explicitly) makes this span a local root. `state` is the parent's
    /// `tracestate` when known (else it is looked up when the parent has
    /// one).
    #[inline]
    pub(crate) fn start_with(
        &self,
        name: Cow<'static, str>,
        kind: SpanKind,
        parent: Current,
        state: Option<Option<Arc<str>>>,
    ) -> Span {
        let has_parent = parent.is_some();
        let trace_id = if has_parent {
            parent.trace_id()
        } else {
            TraceId::random().to_u128()
        };
        let sampled = super::sampler::decide(
            &self.inner.sampler,
            has_parent.then_some(parent.sampled),
            trace_id,
        );
        let local_parent = has_parent && !parent.remote && parent.local_root != 0;
        let state = match state {
            Some(s) => s,
            None if parent.has_state => context::current_state(&parent),
            None => None,
        };
        if !sampled {
            // Nothing is recorded. A local child of an unsampled span shares
            // its context (no new id: nobody will see it); otherwise new ids
            // go out.
            if local_parent && !parent.sampled {
                return Span {
                    current: parent,
                    state,
                    recording: None,
                };
            }
            let span_id = SpanId::random().to_u64();
            return Span {
                current: Current {
                    span_id,
                    local_root: span_id,
                    sampled: false,
                    remote: false,
                    has_state: state.is_some(),
                    ..Current::NONE
                }
                .with_trace_id(trace_id),
                state,
                recording: None,
            };
        }
        let span_id = SpanId::random().to_u64();
        let local_root = if local_parent {
            parent.local_root
        } else {
            span_id
        };
        let extras = state.as_ref().map(|s| {
            Box::new(Extras {
                trace_state: Some(Arc::clone(s)),
                ..Extras::default()
            })
        });
        let recording = Recording::start(
            *self,
            trace_id,
            span_id,
            if has_parent { parent.span_id } else { 0 },
            name,
            kind,
            has_parent && parent.remote,
            extras,
        );
        Span {
            current: Current {
                span_id,
                local_root,
                sampled: true,
                remote: false,
                has_state: state.is_some(),
                ..Current::NONE
            }
            .with_trace_id(trace_id),
            state,
            recording: Some(recording),
        }
    }

    /// A span ended.
    #[inline]
    pub(crate) fn finish(&self, mut recording: Box<Recording>, local_root: u64) {
        // Written in place before the span is moved out, so the move reads
        // whole, settled cache lines.
        recording.raw.end = super::clock::raw_now();
        let raw = recording.take();
        let Some(pipeline) = &self.inner.pipeline else {
            return;
        };
        match &self.inner.tail {
            None => pipeline.push(raw),
            Some(tail) => tail.on_end(raw, local_root, pipeline),
        }
    }

    /// Exports every span ended so far; returns when the exporter has them
    /// (`true`), or `false` at the [flush
    /// timeout](TracerBuilder::force_flush_timeout) (default 5 s) or when
    /// nothing can be exported (no export thread). Never blocks longer.
    pub fn force_flush(&self) -> bool {
        match &self.inner.pipeline {
            Some(p) => p.flush(),
            None => true,
        }
    }

    /// Flushes, then stops exporting (spans ended later are dropped and
    /// counted). Blocks for at most the [shutdown
    /// timeout](TracerBuilder::shutdown_timeout) (default 30 s); `false` if
    /// it had to give up on spans. See [`shutdown`](Self::shutdown) for
    /// async code.
    pub fn shutdown_blocking(&self) -> bool {
        match &self.inner.pipeline {
            Some(p) => p.shutdown(),
            None => true,
        }
    }

    /// [`shutdown_blocking`](Self::shutdown_blocking) without blocking the
    /// async runtime.
    pub async fn shutdown(&self) -> bool {
        let tracer = *self;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("cortex-trace-shutdown".into())
            .spawn(move || {
                let _ = tx.send(tracer.shutdown_blocking());
            });
        match spawned {
            Ok(_) => rx.await.unwrap_or(false),
            Err(_) => tracer.shutdown_blocking(),
        }
    }
}
