//! The server: accept loop, connection limit, graceful shutdown and
//! draining.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::app::App;
use super::handler::{Handler, SharedHandler};
use super::limits::AtConnectionLimit;
use super::router::{RouteOptions, Router};
use super::shutdown::{begin_drain, wait_for_stop, Plan, Signals};
use super::{Admin, Error, Limits};
use crate::health::HealthRegistry;
use crate::metrics::{Counter, Gauge, Registry};

/// A server with routes, ready to [`bind`](Server::bind).
///
/// Unknown paths get 404; a known path with another method gets 405 and an
/// `Allow` header. Empty segments and a trailing slash are ignored
/// (`/orders//42/` is `/orders/42`, as nginx's `merge_slashes` has it), and a
/// path belongs to the first route it matches, literal segments before
/// `{param}` ones: with `GET /orders/new` and `POST /orders/{id}`,
/// `POST /orders/new` gets 405, not the `{id}` route (as in axum). `HEAD` is answered by the `GET` handler. A handler that
/// panics gets the client a 500; the server carries on. Every request is
/// counted in `cortex_http_requests_total{method, route, status}` and timed in
/// `cortex_http_request_duration_seconds{method, route}`, where `route` is
/// the route template (`/orders/{id}`), or `unmatched`, so the number of
/// series stays bounded whatever paths clients send. Requests refused before
/// any handler sees them are counted too, under `method="OTHER",
/// route="rejected"` (not timed): status 431 for a head past
/// [`Limits::max_header_bytes`], 400 for a malformed head, and 408 for a
/// connection that sent no whole head within
/// [`Limits::header_read_timeout`] (closed without an answer).
pub struct Server {
    router: Router,
    limits: Limits,
    registry: &'static Registry,
    readiness: &'static HealthRegistry,
    drain_delay: Duration,
    shutdown_timeout: Duration,
    on_signals: bool,
    load_config: bool,
    #[cfg(feature = "compression")]
    compression: Option<super::compression::Compression>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("router", &self.router)
            .field("limits", &self.limits)
            .field("drain_delay", &self.drain_delay)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("on_signals", &self.on_signals)
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
            readiness: crate::health::global(),
            drain_delay: Duration::ZERO,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            on_signals: false,
            load_config: false,
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
        self.router
            .add(method, template, Arc::new(handler), RouteOptions::default())?;
        Ok(self)
    }

    /// Adds a route with its own [`RouteOptions`]: a request timeout,
    /// compression off, parameters that may decode to `/`.
    ///
    /// ```
    /// use cortex::http::{Method, RouteOptions, Server};
    /// use std::time::Duration;
    ///
    /// let server = Server::new().route_with(
    ///     Method::GET,
    ///     "/account",
    ///     |_req| async { "balance: 42\n" },
    ///     RouteOptions::default()
    ///         .request_timeout(Duration::from_secs(1))
    ///         .compress(false),
    /// )?;
    /// # let _ = server;
    /// # Ok::<(), cortex::http::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`route`](Server::route).
    pub fn route_with(
        mut self,
        method: Method,
        template: &str,
        handler: impl Handler,
        options: RouteOptions,
    ) -> Result<Self, Error> {
        self.router
            .add(method, template, Arc::new(handler), options)?;
        Ok(self)
    }

    pub(crate) fn route_shared(
        mut self,
        method: Method,
        template: &str,
        handler: SharedHandler,
    ) -> Result<Self, Error> {
        self.router
            .add(method, template, handler, RouteOptions::default())?;
        Ok(self)
    }

    /// The health registry whose readiness turns `OUT_OF_SERVICE` when this
    /// server begins to shut down (default: the global one; mounting
    /// [`Admin`] sets its registry).
    pub fn readiness(mut self, registry: &'static HealthRegistry) -> Self {
        self.readiness = registry;
        self
    }

    /// How long the server keeps accepting (and answering) after shutdown
    /// is asked for, with readiness already `OUT_OF_SERVICE`, before it
    /// stops accepting. Default zero. On Kubernetes set it to a few seconds
    /// (5 s is common), so the pod is taken out of its Service's endpoints
    /// before connections start being refused.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// How long in-flight requests may take to finish once the server
    /// stops accepting, when shutdown comes from a signal
    /// ([`shutdown_on_signals`](Server::shutdown_on_signals)). Default 25 s:
    /// with the drain delay it should stay below Kubernetes'
    /// `terminationGracePeriodSeconds` (30 s by default).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Shuts the server down gracefully on SIGTERM or SIGINT (Ctrl-C):
    /// readiness turns `OUT_OF_SERVICE`, the server drains for
    /// [`drain_delay`](Server::drain_delay), stops accepting, and lets
    /// in-flight requests finish for up to
    /// [`shutdown_timeout`](Server::shutdown_timeout).
    /// [`RunningServer::stopped`] then returns the report, so `main` can
    /// return and the process exits 0.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), cortex::http::Error> {
    /// let server = cortex::http::Server::new()
    ///     .with_admin()?
    ///     .drain_delay(std::time::Duration::from_secs(5))
    ///     .shutdown_on_signals()
    ///     .bind("0.0.0.0:8080")
    ///     .await?;
    /// let report = server.stopped().await;
    /// println!("stopped: {report:?}");
    /// # Ok(()) }
    /// ```
    pub fn shutdown_on_signals(mut self) -> Self {
        self.on_signals = true;
        self
    }

    /// Mounts the admin endpoints (`/metrics`, `/health`, `/health/live`,
    /// `/health/ready`, `/cortex/slo`, `/cortex/slo/rules` and the
    /// operations endpoints under `/cortex/`; see [`Admin`]) with the global
    /// registries, and makes `bind` [load the configuration](Self::load_config).
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

    /// Whether `bind` loads the process's configuration
    /// ([`cortex::config::load`](crate::config::load), unless something
    /// loaded it already), listens for `SIGHUP` to reload it, and applies
    /// its `[server]` settings over these limits. [`with_admin`](Self::with_admin)
    /// turns it on; `load_config(false)` after it turns it off.
    pub fn load_config(mut self, load: bool) -> Self {
        self.load_config = load;
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
    /// the HTTP metrics conflict with metrics registered differently;
    /// [`Error::Config`] if the server [loads the configuration](Self::load_config)
    /// and it is refused in strict mode.
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
        let limits = if self.load_config {
            crate::config::load_once()?;
            crate::config::reload_on_sighup();
            crate::config::server_limits(self.limits)
        } else {
            self.limits
        };
        let app = Arc::new(App {
            observer: crate::tower::Observer::new(self.registry)?,
            router: self.router,
            limits,
            #[cfg(feature = "compression")]
            compression: self.compression,
            body_budget: Arc::new(Semaphore::new(
                limits.max_buffered_body_bytes.min(Semaphore::MAX_PERMITS),
            )),
        });
        let gauges = ConnectionMetrics {
            open: self
                .registry
                .gauge("cortex_http_open_connections", "HTTP connections open now.")?,
            rejected: self.registry.counter(
                "cortex_http_connections_rejected_total",
                "HTTP connections closed at once because max_connections were open.",
            )?,
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        tracing::info!(target: "cortex::http", address = %local_addr, "HTTP server listening");
        // Listening from here on: a signal that arrives once `bind` returns
        // is never missed (nor kills the process).
        let signals = self.on_signals.then(Signals::listen);
        let stop = wait_for_stop(stop_rx, signals, self.shutdown_timeout);
        let plan = Plan {
            readiness: self.readiness,
            drain_delay: self.drain_delay,
        };
        let task = tokio::spawn(accept_loop(listener, app, gauges, plan, stop));
        Ok(RunningServer {
            local_addr,
            stop: Some(stop_tx),
            task,
        })
    }
}

/// The default [`Server::shutdown_timeout`].
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);

/// A server that is running. Dropping it leaves the server running until
/// the runtime stops (so `let _ = cortex::http::serve(..)` keeps the admin
/// endpoints up); call [`shutdown`](RunningServer::shutdown) to stop it, or
/// [`stopped`](RunningServer::stopped) to wait until a signal stops it.
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<Duration>>,
    task: tokio::task::JoinHandle<ShutdownReport>,
}

/// What a graceful shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when the server stopped accepting.
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

    /// Shuts the server down: readiness turns `OUT_OF_SERVICE`, the server
    /// drains for its [`drain_delay`](Server::drain_delay), stops
    /// accepting, lets in-flight requests finish for up to `deadline`, then
    /// closes whatever is left.
    pub async fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        if let Some(stop) = self.stop.take() {
            // If the loop already ended, the send fails and the join below
            // still reports.
            let _ = stop.send(deadline);
        }
        self.stopped().await
    }

    /// Waits until the server has stopped (after a signal, with
    /// [`Server::shutdown_on_signals`]), and reports how.
    pub async fn stopped(mut self) -> ShutdownReport {
        let report = (&mut self.task).await;
        report.unwrap_or(ShutdownReport {
            open_connections: 0,
            aborted_connections: 0,
        })
    }
}

/// Starts a server with only the admin endpoints, using the global
/// registries, on a port of its own: check details are shown
/// ([`ShowDetails::Always`](crate::health::ShowDetails::Always)), as befits
/// an internal port; keep it off the internet.
///
/// # Errors
/// As [`Server::bind`].
pub async fn serve(addr: impl ToSocketAddrs + std::fmt::Debug) -> Result<RunningServer, Error> {
    Admin::new()
        .show_details(crate::health::ShowDetails::Always)
        .mount(Server::new())?
        .bind(addr)
        .await
}

struct ConnectionMetrics {
    open: Gauge,
    rejected: Counter,
}

fn connection_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The connection's own watchdog times heads (from accept, for both
    // protocols) and idleness; hyper's HTTP/1 head timer would also cut
    // kept-alive connections waiting for their next request.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .keep_alive_interval(limits.http2_keep_alive_interval)
        .keep_alive_timeout(limits.http2_keep_alive_timeout);
    builder
}

/// The connections open now: those holding a slot.
fn open_now(slots: &Semaphore, max: usize) -> usize {
    max - slots.available_permits().min(max)
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    metrics: ConnectionMetrics,
    plan: Plan,
    stop: impl Future<Output = Duration>,
) -> ShutdownReport {
    let limits = app.limits;
    let builder = Arc::new(connection_builder(&limits));
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let metrics = Arc::new(metrics);
    let (stopping_tx, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    let mut deadline = None::<Duration>;
    let drain_end = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(drain_end);
    let mut warned_full = false;
    loop {
        let slot = if limits.at_connection_limit == AtConnectionLimit::Wait {
            let acquire = Arc::clone(&slots).acquire_owned();
            tokio::pin!(acquire);
            if !warned_full && slots.available_permits() == 0 {
                warned_full = true;
                tracing::warn!(target: "cortex::http", max_connections = max, "connection limit reached; new connections wait in the backlog");
            }
            tokio::select! {
                permit = &mut acquire => permit.ok(),
                asked = &mut stop, if deadline.is_none() => {
                    deadline = Some(begin_drain(&plan, asked, &mut drain_end));
                    continue;
                }
                () = &mut drain_end, if deadline.is_some() => break,
            }
        } else {
            None
        };
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
                let slot = match slot {
                    Some(slot) => slot,
                    None => match Arc::clone(&slots).try_acquire_owned() {
                        Ok(slot) => slot,
                        Err(_) => {
                            metrics.rejected.inc();
                            tracing::debug!(target: "cortex::http", %peer, max_connections = max, "connection limit reached; connection closed");
                            continue;
                        }
                    },
                };
                warned_full = false;
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let builder = Arc::clone(&builder);
                let stopping = stopping.clone();
                let open = Open::new(slot, Arc::clone(&metrics));
                connections.spawn(async move {
                    let _open = open;
                    super::connection::serve(stream, peer, &builder, app, stopping).await;
                });
                // Reap finished connection tasks so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
            asked = &mut stop, if deadline.is_none() => {
                deadline = Some(begin_drain(&plan, asked, &mut drain_end));
            }
            () = &mut drain_end, if deadline.is_some() => break,
        }
    }
    drop(listener);
    let deadline = deadline.unwrap_or(Duration::ZERO);
    while connections.try_join_next().is_some() {}
    let open_connections = open_now(&slots, max);
    tracing::info!(target: "cortex::http", open_connections, ?deadline, "HTTP server stopped accepting; finishing in-flight requests");
    let _ = stopping_tx.send(true);
    let all_closed = async { while connections.join_next().await.is_some() {} };
    let aborted_connections = match tokio::time::timeout(deadline, all_closed).await {
        Ok(()) => 0,
        Err(_) => {
            let left = open_now(&slots, max);
            connections.abort_all();
            tracing::warn!(target: "cortex::http", left, "connections still busy at the shutdown deadline were closed");
            left
        }
    };
    while connections.join_next().await.is_some() {}
    tracing::info!(target: "cortex::http", open_connections, aborted_connections, "HTTP server stopped");
    ShutdownReport {
        open_connections,
        aborted_connections,
    }
}

/// A connection holding one of the `max_connections` slots.
struct Open {
    _slot: OwnedSemaphorePermit,
    metrics: Arc<ConnectionMetrics>,
}

impl Open {
    fn new(slot: OwnedSemaphorePermit, metrics: Arc<ConnectionMetrics>) -> Self {
        metrics.open.inc();
        Open {
            _slot: slot,
            metrics,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.open.dec();
    }
}
