//! Per-request observation, as Cortex's own server does it and as
//! [`ObserveLayer`] does it for any tower HTTP service: a `server` span
//! continuing the caller's trace, `cortex_http_requests_total` and
//! `cortex_http_request_duration_seconds`.

use std::borrow::Cow;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Method, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::grpc::ObservedBody;

use crate::metrics::{Buckets, Counter, Family, Histogram, Registry};
use crate::trace::{Instrumented, Span, SpanKind, Status};

/// The route label of requests no route matched (and of services that name
/// no routes).
pub(crate) const UNMATCHED: &str = "unmatched";

/// The method as a label value: the standard methods, else `OTHER` (a
/// client may send any token as a method).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// The families every request is counted and timed in.
#[derive(Clone)]
pub(crate) enum Observer {
    /// Cortex's names: a counter and a histogram by route template.
    Cortex {
        requests: Family<Counter>,
        durations: Family<Histogram>,
    },
    /// OpenTelemetry's semantic conventions: one histogram,
    /// `http_server_request_duration_seconds`, by method, route and status.
    Semconv { durations: Family<Histogram> },
}

/// The buckets OpenTelemetry advises for HTTP durations, in seconds.
pub(crate) const SEMCONV_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// One request being observed.
pub(crate) struct Observation {
    started: Instant,
    method: &'static str,
    span: Option<Span>,
}

impl Observer {
    /// The request families in `registry` (the same ones whoever asks).
    pub(crate) fn new(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Ok(Observer::Cortex {
            requests: registry.counter_family(
                "cortex_http_requests_total",
                "HTTP requests by method, route template and status.",
                &["method", "route", "status"],
            )?,
            durations: registry.histogram_family(
                "cortex_http_request_duration_seconds",
                "HTTP request latency by method and route template, in seconds.",
                &["method", "route"],
                Buckets::default(),
            )?,
        })
    }

    /// The semantic-convention family in `registry`.
    pub(crate) fn semconv(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Ok(Observer::Semconv {
            durations: registry.histogram_family(
                "http_server_request_duration_seconds",
                "Duration of HTTP server requests (OpenTelemetry http.server.request.duration).",
                &[
                    "http_request_method",
                    "http_route",
                    "http_response_status_code",
                ],
                Buckets::new(SEMCONV_BUCKETS)?,
            )?,
        })
    }

    /// Starts observing: the clock, and a `server` span when a tracer is
    /// installed, continuing the caller's `traceparent` (an invalid one is
    /// ignored and a new trace starts).
    pub(crate) fn begin<B>(&self, req: &http::Request<B>) -> Observation {
        let method = method_label(req.method());
        let span = crate::trace::global().map(|tracer| {
            let parent = match crate::trace::extract(req.headers()) {
                Some(caller) => crate::trace::Parent::Context(caller),
                None => crate::trace::Parent::Root,
            };
            let mut span = tracer
                .span(method)
                .kind(SpanKind::Server)
                .parent(parent)
                .start();
            if span.is_recording() {
                span.set_attribute("http.request.method", method);
                span.set_attribute("url.path", req.uri().path().to_owned());
            }
            span
        });
        Observation {
            started: Instant::now(),
            method,
            span,
        }
    }

    /// Ends it: names the span after the route (`GET /orders/{id}`),
    /// records the status (5xx is an error, as OpenTelemetry's HTTP
    /// conventions say for servers; `failure` is one too), counts and times
    /// the request.
    pub(crate) fn end(
        &self,
        obs: Observation,
        route: Option<&str>,
        status: StatusCode,
        failure: Option<Cow<'static, str>>,
    ) {
        if let Some(mut span) = obs.span {
            if span.is_recording() {
                if let Some(route) = route {
                    span.update_name(format!("{} {route}", obs.method));
                    span.set_attribute("http.route", route.to_owned());
                }
                span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
                match failure {
                    Some(why) => span.set_status(Status::Error(why)),
                    None if status.is_server_error() => {
                        span.set_status(Status::Error(Cow::Owned(format!(
                            "HTTP {}",
                            status.as_u16()
                        ))));
                    }
                    None => {}
                }
            }
            span.end();
        }
        let elapsed = obs.started.elapsed();
        match self {
            Observer::Cortex {
                requests,
                durations,
            } => {
                let route = route.unwrap_or(UNMATCHED);
                let _ = requests.with(&[obs.method, route, status.as_str()], Counter::inc);
                let _ = durations.with(&[obs.method, route], |h| h.observe_duration(elapsed));
            }
            Observer::Semconv { durations } => {
                // An empty value is an absent label to Prometheus, as the
                // conventions leave `http.route` out when nothing matched.
                let route = route.unwrap_or("");
                let _ = durations.with(&[obs.method, route, status.as_str()], |h| {
                    h.observe_duration(elapsed)
                });
            }
        }
    }
}

impl Observer {
    /// A request hyper refused before any handler saw it (a head too large,
    /// a malformed one, one not sent in time): counted under
    /// `route="rejected"`, `method="OTHER"` (the method was never read).
    /// The semantic-convention names have no such series.
    pub(crate) fn rejected(&self, status: StatusCode) {
        if let Observer::Cortex { requests, .. } = self {
            let _ = requests.with(&["OTHER", REJECTED, status.as_str()], Counter::inc);
        }
    }
}

/// The route label of requests refused before routing.
pub(crate) const REJECTED: &str = "rejected";

impl Observation {
    /// What the handler's future runs inside, so its spans are children of
    /// the server span.
    pub(crate) fn active(&self) -> Option<crate::trace::Active> {
        self.span
            .as_ref()
            .filter(|s| s.is_valid())
            .map(Span::active)
    }
}

/// How a request's route label is found.
type RouteFn = dyn Fn(&http::Method, &http::Uri, &http::Extensions) -> Option<String> + Send + Sync;

/// A tower [`Layer`] that observes every request of the service it wraps
/// (an axum `Router`, a tonic server, any `Service<http::Request<B>>`) as
/// Cortex's own server does: a `server` span continuing the caller's
/// `traceparent`/`tracestate`, with the service's future running inside it
/// (so `#[traced]` functions and outgoing calls nest under it), counted in
/// `cortex_http_requests_total{method, route, status}` and timed in
/// `cortex_http_request_duration_seconds{method, route}`. A 5xx answer, an
/// error from the service and a panic are errors on the span; an error is
/// counted as status 500, a panic too (and then goes on unwinding).
///
/// The route label is the route template, never the raw path (which would
/// make a series per id): axum's `MatchedPath` with the `axum` feature
/// (add the layer with `Router::layer`, so it sees the matched route), or
/// what [`route_with`](Self::route_with) says; otherwise `unmatched`.
///
/// A gRPC call (`content-type: application/grpc`, as tonic serves them) is
/// observed the way OpenTelemetry's RPC conventions say instead: a server
/// span named `package.Service/Method` with `rpc.system`, `rpc.service`,
/// `rpc.method` and `rpc.grpc.status_code`, and
/// `cortex_rpc_server_duration_seconds{service, method, code}`, the code
/// taken from `grpc-status` in the answer's headers or, after the body, its
/// trailers (the response body is wrapped in an [`ObservedBody`] that
/// passes every frame on). UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
/// INTERNAL, UNAVAILABLE and DATA_LOSS are errors on the span; calls to
/// methods the service does not have (UNIMPLEMENTED) share the labels
/// `service="unknown", method="unknown"`; a body dropped before its
/// trailers is CANCELLED.
///
/// ```
/// use cortex::tower::ObserveLayer;
/// use tower::{Layer, Service, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = cortex::metrics::Registry::new();
/// let layer = ObserveLayer::with_registry(&registry)
///     .unwrap()
///     .route_with(|_method, uri, _ext| uri.path().starts_with("/orders/").then(|| "/orders/{id}".into()));
/// let service = tower::service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(()))
/// });
/// let mut service = layer.layer(service);
/// let request = http::Request::get("/orders/7").body(()).unwrap();
/// service.ready().await.unwrap().call(request).await.unwrap();
/// let text = registry.encode(cortex::metrics::Format::PrometheusText);
/// assert!(text.contains(r#"cortex_http_requests_total{method="GET",route="/orders/{id}",status="200"} 1"#));
/// # });
/// ```
#[derive(Clone)]
pub struct ObserveLayer {
    /// One shared block: axum clones a route's service for every request,
    /// so a clone is one reference count, not one per family.
    shared: Arc<Shared>,
}

#[derive(Clone)]
struct Shared {
    observer: Observer,
    route: Option<Arc<RouteFn>>,
    rpc: super::grpc::RpcFamily,
}

impl std::fmt::Debug for ObserveLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveLayer")
            .field("route_extractor", &self.shared.route.is_some())
            .finish()
    }
}

impl Default for ObserveLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ObserveLayer {
    /// A layer recording into the global registry (the one `/metrics`
    /// serves).
    ///
    /// # Panics
    /// If the global registry already has `cortex_http_requests_total` or
    /// `cortex_http_request_duration_seconds` as something else (only a
    /// program that registered those names itself can get there).
    pub fn new() -> Self {
        Self::with_registry(crate::metrics::global())
            .expect("the HTTP request families are Cortex's in the global registry")
    }

    /// A layer recording into `registry`.
    ///
    /// # Errors
    /// A [conflict](crate::metrics::Error::Conflict) with families of the
    /// same names already in `registry`.
    pub fn with_registry(registry: &Registry) -> Result<Self, crate::metrics::Error> {
        Ok(ObserveLayer {
            shared: Arc::new(Shared {
                observer: Observer::new(registry)?,
                route: None,
                rpc: super::grpc::RpcFamily::server(registry)?,
            }),
        })
    }

    /// Records OpenTelemetry's semantic-convention metrics instead of
    /// Cortex's: `http_server_request_duration_seconds{http_request_method,
    /// http_route, http_response_status_code}` (its count is the request
    /// count) and, for gRPC, `rpc_server_call_duration_seconds{rpc_system,
    /// rpc_service, rpc_method, rpc_grpc_status_code}`, with the buckets
    /// the conventions advise, for dashboards built on them. An unmatched
    /// request has an empty `http_route`, which Prometheus treats as no
    /// label.
    ///
    /// # Errors
    /// A [conflict](crate::metrics::Error::Conflict) with a family of that
    /// name already in `registry`.
    pub fn semconv(mut self, registry: &Registry) -> Result<Self, crate::metrics::Error> {
        let shared = Arc::make_mut(&mut self.shared);
        shared.observer = Observer::semconv(registry)?;
        shared.rpc = super::grpc::RpcFamily::semconv(registry, true)?;
        Ok(self)
    }

    /// Finds the route label with `route` (checked first; `None` falls back
    /// to axum's `MatchedPath`, then to `unmatched`). It must return a
    /// bounded set of values: templates, never ids.
    pub fn route_with(
        mut self,
        route: impl Fn(&http::Method, &http::Uri, &http::Extensions) -> Option<String>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Arc::make_mut(&mut self.shared).route = Some(Arc::new(route));
        self
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ObserveService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`ObserveLayer`] makes.
#[derive(Clone)]
pub struct ObserveService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for ObserveService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveService").finish_non_exhaustive()
    }
}

/// A request's route label, kept from before the call to after it.
enum Route {
    None,
    Named(String),
    #[cfg(feature = "axum")]
    Matched(axum::extract::MatchedPath),
}

impl Route {
    fn as_str(&self) -> Option<&str> {
        match self {
            Route::None => None,
            Route::Named(r) => Some(r),
            #[cfg(feature = "axum")]
            Route::Matched(m) => Some(m.as_str()),
        }
    }
}

impl Shared {
    fn route_of<B>(&self, req: &http::Request<B>) -> Route {
        if let Some(f) = &self.route {
            if let Some(r) = f(req.method(), req.uri(), req.extensions()) {
                return Route::Named(r);
            }
        }
        #[cfg(feature = "axum")]
        if let Some(m) = req.extensions().get::<axum::extract::MatchedPath>() {
            return Route::Matched(m.clone());
        }
        Route::None
    }
}

impl<S, B, RB> Service<http::Request<B>> for ObserveService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = http::Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if super::grpc::is_grpc(&req) {
            let call = super::grpc::Call::begin(&req, &self.shared.rpc);
            let active = call.active();
            return ObserveFuture {
                inner: Instrumented::new(self.inner.call(req), active),
                done: Some(Pending::Grpc(call)),
            };
        }
        let route = self.shared.route_of(&req);
        let obs = self.shared.observer.begin(&req);
        let active = obs.active();
        ObserveFuture {
            inner: Instrumented::new(self.inner.call(req), active),
            done: Some(Pending::Http(obs, route, Arc::clone(&self.shared))),
        }
    }
}

/// What a call still has to record when its answer comes.
enum Pending {
    Http(Observation, Route, Arc<Shared>),
    Grpc(super::grpc::Call),
}

/// The future of an [`ObserveService`] call.
pub struct ObserveFuture<F> {
    inner: Instrumented<F>,
    done: Option<Pending>,
}

impl<F> std::fmt::Debug for ObserveFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserveFuture").finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = Result<http::Response<ObservedBody<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned (never moved out of
        // `self`); `done` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let inner = unsafe { Pin::new_unchecked(&mut this.inner) };
        let polled = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        let (status, failure) = match &polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(response))) => (response.status(), None),
            Ok(Poll::Ready(Err(_))) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(Cow::Borrowed("the service failed")),
            ),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(Cow::Borrowed("the service panicked")),
            ),
        };
        let mut grpc = None;
        match this.done.take() {
            Some(Pending::Http(obs, route, shared)) => {
                shared.observer.end(obs, route.as_str(), status, failure);
            }
            Some(Pending::Grpc(call)) => match &polled {
                // A trailers-only answer (an error, usually) has its status
                // in the headers; otherwise the trailers bring it.
                Ok(Poll::Ready(Ok(response))) => match super::grpc::status_in(response.headers()) {
                    Some(code) => call.finish(code, None),
                    None => grpc = Some(call),
                },
                _ => call.finish(13, failure),
            },
            None => {}
        }
        match polled {
            Ok(Poll::Ready(result)) => Poll::Ready(
                result.map(|response| response.map(|body| ObservedBody::new(body, grpc))),
            ),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => resume_unwind(panic),
        }
    }
}
