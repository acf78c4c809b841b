//! Outgoing requests: a `client` span each, the trace context injected,
//! counted and timed by downstream host.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower_layer::Layer;
use tower_service::Service;

use super::grpc::ObservedBody;
use super::observe::method_label;
use crate::metrics::{Buckets, Counter, Family, Histogram, Registry};
use crate::trace::{Instrumented, Span, SpanKind, Status};

/// A tower [`Layer`] for HTTP clients (hyper-util's `Client`, a
/// `tower::Service<http::Request<B>>` of any kind): each request gets a
/// `client` span, a child of the span current when it is made, and carries
/// `traceparent`/`tracestate` for it, so the server it calls continues the
/// trace. Requests are counted in
/// `cortex_http_client_requests_total{method, host, status}` (`status` is
/// `error` when no answer came) and timed in
/// `cortex_http_client_request_duration_seconds{method, host}`. A 5xx
/// answer or a transport error is an error on the span (OpenTelemetry's
/// HTTP client conventions count 4xx too; a client span here is an error
/// from 5xx up, like a server's, so a 404 lookup is not a failure).
///
/// A gRPC call (`content-type: application/grpc`, as tonic's generated
/// clients send) follows OpenTelemetry's RPC conventions instead: a client
/// span `package.Service/Method` with `rpc.*` attributes, failed on every
/// status but OK, and `cortex_rpc_client_duration_seconds{service, method,
/// code}`, the status read from the answer's headers or trailers (the body
/// is an [`ObservedBody`](super::ObservedBody), passing every frame on).
///
/// ```
/// use cortex::tower::ClientLayer;
/// use tower::{Layer, Service, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = cortex::metrics::Registry::new();
/// // A stand-in for a real client: answers 200 and shows what was sent.
/// let send = tower::service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(http::Response::new(req.headers().contains_key("traceparent")))
/// });
/// let mut client = ClientLayer::with_registry(&registry).unwrap().layer(send);
/// let request = http::Request::get("http://inventory:8080/items/3").body(()).unwrap();
/// let response = client.ready().await.unwrap().call(request).await.unwrap();
/// # let _ = response;
/// let text = registry.encode(cortex::metrics::Format::PrometheusText);
/// assert!(text.contains(r#"cortex_http_client_requests_total{method="GET",host="inventory",status="200"} 1"#));
/// # });
/// ```
#[derive(Clone)]
pub struct ClientLayer {
    /// One shared block, so a clone is one reference count.
    families: std::sync::Arc<Families>,
}

struct Families {
    requests: Family<Counter>,
    durations: Family<Histogram>,
    rpc: super::grpc::RpcFamily,
    /// OpenTelemetry's `http.client.request.duration` instead of the two
    /// Cortex families.
    semconv: Option<Family<Histogram>>,
}

impl std::fmt::Debug for ClientLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientLayer").finish_non_exhaustive()
    }
}

impl Default for ClientLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientLayer {
    /// A layer recording into the global registry.
    ///
    /// # Panics
    /// If the global registry already has the client families' names as
    /// something else.
    pub fn new() -> Self {
        Self::with_registry(crate::metrics::global())
            .expect("the HTTP client families are Cortex's in the global registry")
    }

    /// A layer recording into `registry`.
    ///
    /// # Errors
    /// A [conflict](crate::metrics::Error::Conflict) with families of the
    /// same names already in `registry`.
    pub fn with_registry(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Ok(ClientLayer {
            families: std::sync::Arc::new(Families {
                requests: registry.counter_family(
                    "cortex_http_client_requests_total",
                    "Outgoing HTTP requests by method, host and status (`error`: no answer).",
                    &["method", "host", "status"],
                )?,
                durations: registry.histogram_family(
                    "cortex_http_client_request_duration_seconds",
                    "Outgoing HTTP request latency by method and host, in seconds.",
                    &["method", "host"],
                    Buckets::default(),
                )?,
                rpc: super::grpc::RpcFamily::client(registry)?,
                semconv: None,
            }),
        })
    }
}

impl ClientLayer {
    /// Records OpenTelemetry's semantic-convention metrics instead of
    /// Cortex's: `http_client_request_duration_seconds{http_request_method,
    /// server_address, http_response_status_code, error_type}` (an answer
    /// has an empty `error_type`; no answer an empty status and
    /// `error_type="transport"`) and, for gRPC,
    /// `rpc_client_call_duration_seconds{rpc_system, rpc_service,
    /// rpc_method, rpc_grpc_status_code}`.
    ///
    /// # Errors
    /// A [conflict](crate::metrics::Error::Conflict) with families of those
    /// names already in `registry`.
    pub fn semconv(self, registry: &Registry) -> Result<Self, crate::metrics::Error> {
        let http = registry.histogram_family(
            "http_client_request_duration_seconds",
            "Duration of HTTP client requests (OpenTelemetry http.client.request.duration).",
            &[
                "http_request_method",
                "server_address",
                "http_response_status_code",
                "error_type",
            ],
            Buckets::new(super::observe::SEMCONV_BUCKETS)?,
        )?;
        Ok(ClientLayer {
            families: std::sync::Arc::new(Families {
                requests: self.families.requests.clone(),
                durations: self.families.durations.clone(),
                rpc: super::grpc::RpcFamily::semconv(registry, false)?,
                semconv: Some(http),
            }),
        })
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ClientLayer`] makes.
#[derive(Clone)]
pub struct ClientService<S> {
    inner: S,
    layer: ClientLayer,
}

impl<S> std::fmt::Debug for ClientService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientService").finish_non_exhaustive()
    }
}

impl<S, B, RB> Service<http::Request<B>> for ClientService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Error: std::fmt::Display,
{
    type Response = http::Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (parts, body) = req.into_parts();
        let mut parts = parts;
        if super::grpc::is_grpc_headers(&parts.headers) {
            let call = super::grpc::Call::begin_client(
                parts.uri.path(),
                &mut parts.headers,
                &self.layer.families.rpc,
            );
            let active = call.active();
            let req = http::Request::from_parts(parts, body);
            return ClientFuture {
                inner: Instrumented::new(self.inner.call(req), active),
                done: Some(Pending::Grpc(call)),
            };
        }
        let call = self.layer.begin(
            &parts.method,
            parts.uri.host(),
            parts.uri.port_u16(),
            &parts.uri,
            &mut parts.headers,
        );
        let req = http::Request::from_parts(parts, body);
        let active = call.active();
        ClientFuture {
            inner: Instrumented::new(self.inner.call(req), active),
            done: Some(Pending::Http(call)),
        }
    }
}

impl ClientLayer {
    /// Starts observing an outgoing request: its client span (a child of
    /// the current span), the trace context put in `headers`, the clock.
    pub(crate) fn begin(
        &self,
        method: &http::Method,
        host: Option<&str>,
        port: Option<u16>,
        url: &dyn std::fmt::Display,
        headers: &mut http::HeaderMap,
    ) -> Call {
        let method = method_label(method);
        let host: Cow<'static, str> = match host {
            Some(h) => Cow::Owned(h.to_owned()),
            None => Cow::Borrowed("unknown"),
        };
        let span = crate::trace::global().map(|tracer| {
            let mut span = tracer.span(method).kind(SpanKind::Client).start();
            if span.is_recording() {
                span.set_attribute("http.request.method", method);
                span.set_attribute("server.address", host.clone());
                if let Some(port) = port {
                    span.set_attribute("server.port", i64::from(port));
                }
                span.set_attribute("url.full", url.to_string());
            }
            span
        });
        // The headers carry the client span's context (or, with no tracer,
        // whatever span is current).
        match span.as_ref().filter(|s| s.is_valid()) {
            Some(span) => inject_context(headers, &span.context()),
            None => crate::trace::inject(headers),
        }
        Call {
            started: Instant::now(),
            method,
            host,
            span,
            layer: self.clone(),
        }
    }
}

/// Puts `cx` in `headers` as `traceparent` (and `tracestate`).
pub(crate) fn inject_context(headers: &mut http::HeaderMap, cx: &crate::trace::SpanContext) {
    if let Ok(v) = http::HeaderValue::from_str(&cx.to_traceparent()) {
        headers.insert("traceparent", v);
    }
    match cx.trace_state.as_deref().map(http::HeaderValue::from_str) {
        Some(Ok(v)) => {
            headers.insert("tracestate", v);
        }
        _ => {
            headers.remove("tracestate");
        }
    }
}

/// One outgoing request being observed.
pub(crate) struct Call {
    started: Instant,
    method: &'static str,
    host: Cow<'static, str>,
    span: Option<Span>,
    layer: ClientLayer,
}

impl Call {
    /// What the request's future runs inside.
    pub(crate) fn active(&self) -> Option<crate::trace::Active> {
        self.span
            .as_ref()
            .filter(|s| s.is_valid())
            .map(Span::active)
    }

    /// The answer came with `status`, or no answer came (`error` says why).
    pub(crate) fn end(self, status: Option<http::StatusCode>, error: Option<String>) {
        if let Some(mut span) = self.span {
            if span.is_recording() {
                match (status, error) {
                    (Some(s), _) => {
                        span.set_attribute("http.response.status_code", i64::from(s.as_u16()));
                        if s.is_server_error() {
                            span.set_status(Status::Error(Cow::Owned(format!(
                                "HTTP {}",
                                s.as_u16()
                            ))));
                        }
                    }
                    (None, why) => {
                        span.set_attribute("error.type", "transport");
                        span.set_status(Status::Error(Cow::Owned(
                            why.unwrap_or_else(|| "no answer".into()),
                        )));
                    }
                }
            }
            span.end();
        }
        let host = self.host.as_ref();
        let families = &self.layer.families;
        let elapsed = self.started.elapsed();
        if let Some(semconv) = &families.semconv {
            let (status, error) = match &status {
                Some(s) => (s.as_str(), ""),
                None => ("", "transport"),
            };
            let _ = semconv.with(&[self.method, host, status, error], |h| {
                h.observe_duration(elapsed)
            });
            return;
        }
        let status_label = status.as_ref().map_or("error", http::StatusCode::as_str);
        let _ = families
            .requests
            .with(&[self.method, host, status_label], Counter::inc);
        let _ = families
            .durations
            .with(&[self.method, host], |h| h.observe_duration(elapsed));
    }
}

/// The future of a [`ClientService`] call.
pub struct ClientFuture<F> {
    inner: Instrumented<F>,
    done: Option<Pending>,
}

/// What a call still has to record when its answer comes.
enum Pending {
    Http(Call),
    Grpc(super::grpc::Call),
}

impl<F> std::fmt::Debug for ClientFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientFuture").finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
    E: std::fmt::Display,
{
    type Output = Result<http::Response<ObservedBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned (never moved out of
        // `self`); `done` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let result = match unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r,
        };
        let mut grpc = None;
        match this.done.take() {
            Some(Pending::Http(call)) => match &result {
                Ok(response) => call.end(Some(response.status()), None),
                Err(e) => call.end(None, Some(e.to_string())),
            },
            Some(Pending::Grpc(call)) => match &result {
                // Trailers-only (an error, usually): the status is here;
                // otherwise it comes in the trailers.
                Ok(response) => match super::grpc::status_in(response.headers()) {
                    Some(code) => call.finish(code, None),
                    None => grpc = Some(call),
                },
                // No answer: UNAVAILABLE, as gRPC clients report it.
                Err(e) => call.finish(14, Some(Cow::Owned(e.to_string()))),
            },
            None => {}
        }
        Poll::Ready(result.map(|response| response.map(|body| ObservedBody::new(body, grpc))))
    }
}
