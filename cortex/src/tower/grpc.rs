//! gRPC requests through [`ObserveLayer`](super::ObserveLayer): labelled by
//! `rpc.service`/`rpc.method`, their outcome the `grpc-status` of the
//! answer (in its headers, or in the trailers after the body), as
//! OpenTelemetry's RPC conventions have it.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};

use crate::metrics::{Buckets, Family, Histogram, Registry};
use crate::trace::{Span, SpanKind, Status};

/// Where gRPC calls are timed: Cortex's family, or OpenTelemetry's
/// semantic-convention one.
#[derive(Clone)]
pub(crate) struct RpcFamily {
    family: Family<Histogram>,
    semconv: bool,
}

impl RpcFamily {
    fn cortex(registry: &Registry, side: &str) -> Result<Self, crate::metrics::Error> {
        let (name, help) = match side {
            "server" => (
                "cortex_rpc_server_duration_seconds",
                "gRPC calls served, by service, method and status code, in seconds.",
            ),
            _ => (
                "cortex_rpc_client_duration_seconds",
                "gRPC calls made, by service, method and status code, in seconds.",
            ),
        };
        Ok(RpcFamily {
            family: registry.histogram_family(
                name,
                help,
                &["service", "method", "code"],
                Buckets::default(),
            )?,
            semconv: false,
        })
    }

    /// `cortex_rpc_server_duration_seconds{service, method, code}`.
    pub(crate) fn server(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Self::cortex(registry, "server")
    }

    /// `cortex_rpc_client_duration_seconds{service, method, code}`.
    pub(crate) fn client(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Self::cortex(registry, "client")
    }

    /// OpenTelemetry's `rpc.{server,client}.call.duration`:
    /// `rpc_server_call_duration_seconds{rpc_system, rpc_service,
    /// rpc_method, rpc_grpc_status_code}` (or `rpc_client_...`).
    pub(crate) fn semconv(
        registry: &Registry,
        server: bool,
    ) -> Result<Self, crate::metrics::Error> {
        let (name, help) = if server {
            (
                "rpc_server_call_duration_seconds",
                "Duration of RPCs served (OpenTelemetry rpc.server.call.duration).",
            )
        } else {
            (
                "rpc_client_call_duration_seconds",
                "Duration of RPCs made (OpenTelemetry rpc.client.call.duration).",
            )
        };
        Ok(RpcFamily {
            family: registry.histogram_family(
                name,
                help,
                &[
                    "rpc_system",
                    "rpc_service",
                    "rpc_method",
                    "rpc_grpc_status_code",
                ],
                Buckets::new(super::observe::SEMCONV_BUCKETS)?,
            )?,
            semconv: true,
        })
    }

    fn record(&self, service: &str, method: &str, code: u32, elapsed: std::time::Duration) {
        let observe = |h: &Histogram| h.observe_duration(elapsed);
        if self.semconv {
            let mut digits = itoa::Buffer::new();
            let code = digits.format(code);
            let _ = self.family.with(&["grpc", service, method, code], observe);
        } else {
            let _ = self
                .family
                .with(&[service, method, code_name(code)], observe);
        }
    }
}

/// Whether the request is a gRPC call.
pub(crate) fn is_grpc<B>(req: &http::Request<B>) -> bool {
    is_grpc_headers(req.headers())
}

/// Whether these request headers are a gRPC call's.
pub(crate) fn is_grpc_headers(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The code's name, as the label and the span show it.
fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("UNKNOWN")
}

/// The codes a server's span marks as errors (OpenTelemetry's gRPC
/// conventions): the server's own faults, not the caller's.
fn server_error(code: u32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// One gRPC call being observed, finished when its status is known.
pub(crate) struct Call {
    started: Instant,
    service: String,
    method: String,
    span: Option<Span>,
    family: RpcFamily,
    /// A call this process made (the codes that fail its span differ).
    client: bool,
}

impl Call {
    /// Starts observing a call served, to `/package.Service/Method`,
    /// continuing the caller's trace.
    pub(crate) fn begin<B>(req: &http::Request<B>, family: &RpcFamily) -> Call {
        let parent = match crate::trace::extract(req.headers()) {
            Some(caller) => crate::trace::Parent::Context(caller),
            None => crate::trace::Parent::Root,
        };
        Self::start(req.uri().path(), parent, SpanKind::Server, family)
    }

    /// Starts observing a call made, a child of the current span, and puts
    /// its context in `headers`.
    pub(crate) fn begin_client(
        path: &str,
        headers: &mut http::HeaderMap,
        family: &RpcFamily,
    ) -> Call {
        let call = Self::start(
            path,
            crate::trace::Parent::Current,
            SpanKind::Client,
            family,
        );
        match call.span.as_ref().filter(|s| s.is_valid()) {
            Some(span) => super::client::inject_context(headers, &span.context()),
            None => crate::trace::inject(headers),
        }
        call
    }

    fn start(path: &str, parent: crate::trace::Parent, kind: SpanKind, family: &RpcFamily) -> Call {
        let path = path.trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let span = crate::trace::global().map(|tracer| {
            let mut span = tracer
                .span(format!("{service}/{method}"))
                .kind(kind)
                .parent(parent)
                .start();
            if span.is_recording() {
                span.set_attribute("rpc.system", "grpc");
                span.set_attribute("rpc.service", service.to_owned());
                span.set_attribute("rpc.method", method.to_owned());
            }
            span
        });
        Call {
            started: Instant::now(),
            service: service.to_owned(),
            method: method.to_owned(),
            span,
            family: family.clone(),
            client: kind == SpanKind::Client,
        }
    }

    /// What the service's future runs inside.
    pub(crate) fn active(&self) -> Option<crate::trace::Active> {
        self.span
            .as_ref()
            .filter(|s| s.is_valid())
            .map(Span::active)
    }

    /// The call ended with `code` (`None`: no status came, which counts as
    /// UNKNOWN; a dropped body as CANCELLED is the caller's doing).
    pub(crate) fn finish(mut self, code: u32, failure: Option<Cow<'static, str>>) {
        if let Some(span) = &mut self.span {
            if span.is_recording() {
                span.set_attribute("rpc.grpc.status_code", i64::from(code));
                match failure {
                    Some(why) => span.set_status(Status::Error(why)),
                    // A client's span fails on every code but OK; a
                    // server's only on its own faults.
                    None if (self.client && code != 0) || (!self.client && server_error(code)) => {
                        span.set_status(Status::Error(Cow::Borrowed(code_name(code))))
                    }
                    None => {}
                }
            }
            span.end();
        }
        // A method the service does not have would make a series per path
        // a client sends.
        let (service, method) = if code == 12 && !self.client {
            ("unknown", "unknown")
        } else {
            (self.service.as_str(), self.method.as_str())
        };
        self.family
            .record(service, method, code, self.started.elapsed());
    }
}

/// The status in a header map, if there is one.
pub(crate) fn status_in(headers: &http::HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A response body that finishes its gRPC call when the trailers (or the
/// end, or a drop) come; for other requests it only passes frames on.
pub struct ObservedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B> std::fmt::Debug for ObservedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedBody")
            .field("grpc", &self.call.is_some())
            .finish_non_exhaustive()
    }
}

impl<B> ObservedBody<B> {
    pub(crate) fn new(inner: B, call: Option<Call>) -> Self {
        ObservedBody { inner, call }
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            // The body went before its trailers: the client went away.
            call.finish(1, None);
        }
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        // SAFETY: `inner` is structurally pinned (never moved out of
        // `self`, and `Drop` does not move it); `call` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let polled = unsafe { Pin::new_unchecked(&mut this.inner) }.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    if let Some(call) = this.call.take() {
                        call.finish(code, None);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(13, Some(Cow::Borrowed("the response body failed")));
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(2, Some(Cow::Borrowed("the answer carried no grpc-status")));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
