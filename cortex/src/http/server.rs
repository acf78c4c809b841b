//! The server: accept loop, limits, request metrics, graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::handler::{call_guarded, text, Handler, Request, Response, SharedHandler};
use super::router::{Match, Router};
use super::{Admin, Error};
use crate::metrics::{Buckets, Counter, Family, Histogram, Registry};

/// Limits that protect the server from slow or oversized requests. The
/// defaults are safe for an API or admin port.
///
/// ```
/// use cortex::http::Limits;
/// use std::time::Duration;
///
/// let limits = Limits {
///     max_body_bytes: 64 * 1024,
///     ..Limits::default()
/// };
/// assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A client must send the whole request head within this time, or the
    /// connection is closed (a "slowloris" client trickling headers is cut
    /// off). Default 10 s.
    pub header_read_timeout: Duration,
    /// The largest request head accepted, in bytes (at least 8 KiB).
    /// Default 64 KiB; larger heads get 431 (HTTP/1.1) or a stream error
    /// (HTTP/2).
    pub max_header_bytes: usize,
    /// The largest request body accepted, in bytes; larger bodies get 413.
    /// Default 2 MiB.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_body_bytes: 2 * 1024 * 1024,
        }
    }
}

/// A server with routes, ready to [`bind`](Server::bind).
///
/// Unknown paths get 404; a known path with another method gets 405 and an
/// `Allow` header. `HEAD` is answered by the `GET` handler. A handler that
/// panics gets the client a 500; the server carries on. Every request is
/// counted in `cortex_http_requests_total{method, route, status}` and timed in
/// `cortex_http_request_duration_seconds{method, route}`, where `route` is
/// the route template (`/orders/{id}`), or `unmatched`, so the number of
/// series stays bounded whatever paths clients send.
pub struct Server {
    router: Router,
    limits: Limits,
    registry: &'static Registry,
    #[cfg(feature = "compression")]
    compression: Option<super::compression::Compression>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("router", &self.router)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server with no routes, default [`Limits`], recording its metrics
    /// in the [global registry](crate::metrics::global).
    pub fn new() -> Self {
        Server {
            router: Router::default(),
            limits: Limits::default(),
            registry: crate::metrics::global(),
            #[cfg(feature = "compression")]
            compression: Some(super::compression::Compression::default()),
        }
    }

    /// Adds a route. The template is a path whose segments may be
    /// parameters: `/orders/{id}`.
    ///
    /// # Errors
    /// A malformed template, one that matches the same paths as another
    /// (`/a/{x}` and `/a/{y}`), or the same method and template twice.
    pub fn route(
        mut self,
        method: Method,
        template: &str,
        handler: impl Handler,
    ) -> Result<Self, Error> {
        self.router.add(method, template, Arc::new(handler))?;
        Ok(self)
    }

    pub(crate) fn route_shared(
        mut self,
        method: Method,
        template: &str,
        handler: SharedHandler,
    ) -> Result<Self, Error> {
        self.router.add(method, template, handler)?;
        Ok(self)
    }

    /// Mounts the admin endpoints (`/metrics`, `/health`, `/health/live`,
    /// `/health/ready`) with the global registries.
    ///
    /// # Errors
    /// If one of those paths is already routed.
    pub fn with_admin(self) -> Result<Self, Error> {
        Admin::new().mount(self)
    }

    /// Replaces the response compression settings (`None` turns it off).
    /// By default responses are compressed as
    /// [`Compression::default`](super::compression::Compression) describes.
    #[cfg(feature = "compression")]
    pub fn compression(mut self, compression: Option<super::compression::Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Records the server's request metrics in `registry` instead of the
    /// global one.
    pub fn metrics_registry(mut self, registry: &'static Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Binds the address (port 0 picks a free port) and starts serving in
    /// the background on the current Tokio runtime.
    ///
    /// # Errors
    /// [`Error::Bind`] if the address cannot be bound; [`Error::Metrics`] if
    /// the HTTP metrics conflict with metrics registered differently.
    pub async fn bind(
        self,
        addr: impl ToSocketAddrs + std::fmt::Debug,
    ) -> Result<RunningServer, Error> {
        let shown = format!("{addr:?}");
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: shown.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: shown,
            source,
        })?;
        let app = Arc::new(App {
            requests: self.registry.counter_family(
                "cortex_http_requests_total",
                "HTTP requests by method, route template and status.",
                &["method", "route", "status"],
            )?,
            durations: self.registry.histogram_family(
                "cortex_http_request_duration_seconds",
                "HTTP request latency by method and route template, in seconds.",
                &["method", "route"],
                Buckets::default(),
            )?,
            router: self.router,
            limits: self.limits,
            #[cfg(feature = "compression")]
            compression: self.compression,
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        tracing::info!(target: "cortex::http", address = %local_addr, "HTTP server listening");
        let task = tokio::spawn(accept_loop(listener, app, stop_rx));
        Ok(RunningServer {
            local_addr,
            stop: stop_tx,
            task,
        })
    }
}

/// A server that is running; dropping it leaves the server running until
/// the runtime stops. Call [`shutdown`](RunningServer::shutdown) to stop it.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: oneshot::Sender<Duration>,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

/// What a graceful shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when shutdown began.
    pub open_connections: usize,
    /// Connections that were still busy at the deadline and were closed.
    pub aborted_connections: usize,
}

impl RunningServer {
    /// The address the server listens on (with the real port when bound to
    /// port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets in-flight requests finish for up to
    /// `deadline`, then closes whatever is left.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        // If the loop already ended, the send fails and the join below
        // still reports.
        let _ = self.stop.send(deadline);
        self.task.await.unwrap_or(ShutdownReport {
            open_connections: 0,
            aborted_connections: 0,
        })
    }
}

/// Starts a server with only the admin endpoints, using the global
/// registries.
///
/// # Errors
/// As [`Server::bind`].
pub async fn serve(addr: impl ToSocketAddrs + std::fmt::Debug) -> Result<RunningServer, Error> {
    Server::new().with_admin()?.bind(addr).await
}

struct App {
    router: Router,
    limits: Limits,
    #[cfg(feature = "compression")]
    compression: Option<super::compression::Compression>,
    requests: Family<Counter>,
    durations: Family<Histogram>,
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    mut stop: oneshot::Receiver<Duration>,
) -> ShutdownReport {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.limits.header_read_timeout)
        .max_buf_size(app.limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(app.limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let deadline = loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off
                        // briefly instead of spinning.
                        tracing::warn!(target: "cortex::http", %error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let builder = Arc::clone(&builder);
                let watcher = graceful.watcher();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = Arc::clone(&app);
                        async move { Ok::<_, Infallible>(app.handle(req).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    if let Err(error) = watcher.watch(conn).await {
                        tracing::debug!(target: "cortex::http", %peer, %error, "connection ended with an error");
                    }
                });
                // Reap finished connection tasks so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
            deadline = &mut stop => break deadline.unwrap_or(Duration::ZERO),
        }
    };
    drop(listener);
    let open_connections = connections.len();
    tracing::info!(target: "cortex::http", open_connections, ?deadline, "HTTP server shutting down");
    let aborted_connections = match tokio::time::timeout(deadline, graceful.shutdown()).await {
        Ok(()) => 0,
        Err(_) => {
            let left = connections.len();
            connections.abort_all();
            tracing::warn!(target: "cortex::http", left, "connections still busy at the shutdown deadline were closed");
            left
        }
    };
    while connections.join_next().await.is_some() {}
    ShutdownReport {
        open_connections,
        aborted_connections,
    }
}

/// The method as a label value: the standard methods, else `OTHER` (a
/// client may send any token as a method).
fn method_label(method: &Method) -> &'static str {
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

const UNMATCHED: &str = "unmatched";

/// A `server` span for the request when a tracer is installed, continuing
/// the caller's trace from its `traceparent` (an invalid one is ignored and
/// a new trace starts).
fn server_span(req: &http::Request<Incoming>) -> Option<crate::trace::Span> {
    let tracer = crate::trace::global()?;
    let parent = match crate::trace::extract(req.headers()) {
        Some(caller) => crate::trace::Parent::Context(caller),
        None => crate::trace::Parent::Root,
    };
    let mut span = tracer
        .span(method_label(req.method()))
        .kind(crate::trace::SpanKind::Server)
        .parent(parent)
        .start();
    if span.is_recording() {
        span.set_attribute("http.request.method", method_label(req.method()));
        span.set_attribute("url.path", req.uri().path().to_owned());
    }
    Some(span)
}

/// Names the span after the route (`GET /orders/{id}`) and records the
/// status; 5xx answers are errors, as OpenTelemetry's HTTP conventions say
/// for servers.
fn end_server_span(
    span: &mut crate::trace::Span,
    method: &'static str,
    route: Option<&str>,
    status: StatusCode,
) {
    if !span.is_recording() {
        return;
    }
    if let Some(route) = route {
        span.update_name(format!("{method} {route}"));
        span.set_attribute("http.route", route.to_owned());
    }
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(crate::trace::Status::Error(std::borrow::Cow::Owned(
            format!("HTTP {}", status.as_u16()),
        )));
    }
    span.end();
}

impl App {
    async fn handle(&self, req: http::Request<Incoming>) -> Response {
        let started = Instant::now();
        let method = req.method().clone();
        #[cfg(feature = "compression")]
        let accept_encoding = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut span = server_span(&req);
        let active = span
            .as_ref()
            .filter(|s| s.is_valid())
            .map(crate::trace::Span::active);
        let routed = async {
            match self.router.find(&method, req.uri().path()) {
                Match::NotFound => (text(StatusCode::NOT_FOUND, "not found\n"), None),
                Match::MethodNotAllowed { route, allow } => {
                    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                    if let Ok(v) = HeaderValue::from_str(&allow) {
                        r.headers_mut().insert(header::ALLOW, v);
                    }
                    (r, Some(route.template.as_str()))
                }
                Match::Found {
                    route,
                    handler,
                    params,
                } => {
                    let template = route.template.as_str();
                    let response = match self.read_body(req).await {
                        Ok((parts, body)) => {
                            let request = Request {
                                method: parts.method,
                                uri: parts.uri,
                                headers: parts.headers,
                                params,
                                body,
                            };
                            call_guarded(handler, request, template).await
                        }
                        Err(response) => response,
                    };
                    (response, Some(template))
                }
            }
        };
        let (response, route) = crate::trace::Instrumented::new(routed, active).await;
        #[cfg(feature = "compression")]
        let response = match &self.compression {
            Some(c) => c.apply(&method, accept_encoding.as_deref(), response),
            None => response,
        };
        let method = method_label(&method);
        let status = response.status();
        if let Some(span) = &mut span {
            end_server_span(span, method, route, status);
        }
        let route = route.unwrap_or(UNMATCHED);
        let _ = self
            .requests
            .with(&[method, route, status.as_str()], Counter::inc);
        let _ = self
            .durations
            .with(&[method, route], |h| h.observe_duration(started.elapsed()));
        response
    }

    /// Reads the body within the size limit: 413 past it (without reading
    /// a body whose declared length is already too large), 400 if the client
    /// breaks off.
    async fn read_body(
        &self,
        req: http::Request<Incoming>,
    ) -> Result<(http::request::Parts, Bytes), Response> {
        let limit = self.limits.max_body_bytes;
        let too_large = || {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body larger than {limit} bytes\n"),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let (parts, body) = req.into_parts();
        // Most GETs have no body: skip the collecting machinery.
        if http_body::Body::is_end_stream(&body) {
            return Ok((parts, Bytes::new()));
        }
        match Limited::new(body, limit).collect().await {
            #[cfg(feature = "compression")]
            Ok(collected) => match &self.compression {
                Some(c) => c
                    .decode_request(&parts.headers, collected.to_bytes())
                    .map(|body| (parts, body))
                    .map_err(|e| e.to_response()),
                None => Ok((parts, collected.to_bytes())),
            },
            #[cfg(not(feature = "compression"))]
            Ok(collected) => Ok((parts, collected.to_bytes())),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(error) => {
                tracing::debug!(target: "cortex::http", %error, "request body could not be read");
                Err(text(
                    StatusCode::BAD_REQUEST,
                    "request body could not be read\n",
                ))
            }
        }
    }
}
