//! The admin endpoints: `/metrics`, `/health`, `/health/live`,
//! `/health/ready`, `/cortex/slo`, `/cortex/slo/rules`, and the operations
//! endpoints under `/cortex/` (see [`Admin`]).

mod ops;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use super::handler::{json, text, Request, Response, SharedHandler};
use super::{Error, Server};
use crate::health::{Group, HealthRegistry, ShowDetails};
use crate::metrics::{negotiate_exposition, Registry};
use ops::{OpsRequest, OPS_ROUTES};

/// The admin endpoints, to mount on a [`Server`] or to use as a hyper or
/// tower service in another server (axum, plain hyper).
///
/// - `GET /metrics`: every metric, as Prometheus text 0.0.4, OpenMetrics
///   1.0 or the Prometheus protobuf format (the one with native
///   histograms), chosen from the `Accept` header as
///   [`negotiate_exposition`] does, with the matching `Content-Type`.
/// - `GET /health`: every check; `/health/live` and `/health/ready`: the
///   liveness and readiness groups. 200 when UP or DEGRADED, 503 when DOWN;
///   Actuator-style JSON.
/// - `GET /cortex/slo`: the program's [objectives](crate::slo) as JSON
///   ([`slo::to_json`](crate::slo::to_json)); `GET /cortex/slo/rules`:
///   their Prometheus rules file
///   ([`slo::prometheus_rules`](crate::slo::prometheus_rules)), as
///   `application/yaml`. Both answer 500 with the reason when two functions
///   define one objective differently.
/// - The operations endpoints, in the JSON shapes the README's
///   "Operations" section shows. Reads are open like `/metrics`; writes
///   (`POST`) need `Authorization: Bearer <token>` with the
///   [admin token](Admin::token) (`CORTEX_ADMIN_TOKEN` by default), compared
///   in constant time: 403 when no token is set (writes are off), 401 with
///   a wrong or missing one.
///   - `GET /cortex/circuitbreakers` (every breaker: state, rates, calls in
///     the window, rejected calls, each setting with its source),
///     `GET /cortex/circuitbreakers/{name}`, and
///     `POST /cortex/circuitbreakers/{name}` with `{"state": "CLOSED"}`
///     (reset), `"FORCED_OPEN"` or `"DISABLED"`;
///   - the same reads for `/cortex/retries`, `/cortex/bulkheads`,
///     `/cortex/ratelimiters` and `/cortex/timeouts`;
///   - `GET /cortex/events?policy=&name=&kind=&limit=`: the recent events
///     of every policy instance, newest first
///     ([`recent_events`](crate::resilience::recent_events));
///   - `GET /cortex/config` ([`config::to_json`](crate::config::to_json))
///     and `POST /cortex/config/reload` ([`config::reload`](crate::config::reload):
///     200 when applied, 422 with the problems when refused);
///   - `GET /cortex/info`: build info ([`build_info!`](crate::build_info)),
///     uptime, enabled features.
///
///   An unknown name answers 404 and a bad body 400, each with
///   `{"error": "<what is wrong>"}`.
///
/// ```
/// use cortex::health::ShowDetails;
/// use cortex::http::Admin;
///
/// // Details only for callers presenting the token.
/// let admin = Admin::new().show_details(ShowDetails::WhenAuthorized("s3cret".into()));
/// # let _ = admin;
/// ```
///
/// As a tower service in axum (`Router::route_service`), see
/// `examples/examples/observability.rs`.
#[derive(Clone, Debug)]
pub struct Admin {
    metrics: &'static Registry,
    health: &'static HealthRegistry,
    show_details: ShowDetails,
    token: Token,
}

/// The admin token; never printed.
#[derive(Clone, Default)]
struct Token(Option<Arc<str>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Token(set)"
        } else {
            "Token(none)"
        })
    }
}

impl Token {
    fn from_env() -> Token {
        Token(
            std::env::var("CORTEX_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty())
                .map(|t| Arc::from(t.trim())),
        )
    }
}

/// The paths the admin endpoints answer.
pub(crate) const PATHS: [(&str, Option<Group>); 3] = [
    ("/health", None),
    ("/health/live", Some(Group::Liveness)),
    ("/health/ready", Some(Group::Readiness)),
];

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl Admin {
    /// The endpoints over the global metrics and health registries, with
    /// check details hidden ([`ShowDetails::Never`]: what a port clients
    /// reach should show; [`serve`](super::serve)'s separate admin port
    /// shows them).
    pub fn new() -> Self {
        Admin {
            metrics: crate::metrics::global(),
            health: crate::health::global(),
            show_details: ShowDetails::Never,
            token: Token::from_env(),
        }
    }

    /// The endpoints over other registries (tests use their own), details
    /// hidden as with [`new`](Admin::new).
    pub fn with_registries(metrics: &'static Registry, health: &'static HealthRegistry) -> Self {
        Admin {
            metrics,
            health,
            show_details: ShowDetails::Never,
            token: Token::from_env(),
        }
    }

    /// Who sees check details in `/health` responses.
    pub fn show_details(mut self, policy: ShowDetails) -> Self {
        self.show_details = policy;
        self
    }

    /// The token writes must present (`Authorization: Bearer <token>`),
    /// instead of `CORTEX_ADMIN_TOKEN`'s; `None` turns writes off.
    ///
    /// ```
    /// let admin = cortex::http::Admin::new().token(Some("s3cret"));
    /// # let _ = admin;
    /// ```
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = Token(token.map(Arc::from));
        self
    }

    /// Adds the routes above to `server`, makes its shutdown take this
    /// health registry's readiness out of service first, and makes it
    /// [load the configuration](Server::load_config) when it binds.
    ///
    /// # Errors
    /// If the server already routes one of these paths.
    pub fn mount(self, server: Server) -> Result<Server, Error> {
        let server = server.readiness(self.health).load_config(true);
        let admin = Arc::new(self);
        let metrics_admin = Arc::clone(&admin);
        let metrics: SharedHandler = Arc::new(move |req: Request| {
            let admin = Arc::clone(&metrics_admin);
            async move { admin.metrics_response(req.headers()) }
        });
        let mut server = server.route_shared(Method::GET, "/metrics", metrics)?;
        for (path, probe) in PATHS {
            let admin = Arc::clone(&admin);
            let handler: SharedHandler = Arc::new(move |req: Request| {
                let admin = Arc::clone(&admin);
                async move { admin.health_response(probe, req.headers()).await }
            });
            server = server.route_shared(Method::GET, path, handler)?;
        }
        for (path, respond) in SLO_PATHS {
            let handler: SharedHandler = Arc::new(move |_req: Request| async move { respond() });
            server = server.route_shared(Method::GET, path, handler)?;
        }
        for (template, methods) in OPS_ROUTES {
            for method in *methods {
                let admin = Arc::clone(&admin);
                let handler: SharedHandler = Arc::new(move |req: Request| {
                    let admin = Arc::clone(&admin);
                    async move { admin.ops_response(&req) }
                });
                server = server.route_shared(method.clone(), template, handler)?;
            }
        }
        Ok(server)
    }

    fn ops_response(&self, req: &Request) -> Response {
        let ops = OpsRequest {
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
            body: req.body(),
        };
        ops::respond(&ops, self.token.0.as_deref())
            .unwrap_or_else(|| text(StatusCode::NOT_FOUND, "not found\n"))
    }

    /// The `GET /cortex/slo` response: the objectives as JSON.
    pub fn slo_response(&self) -> Response {
        slo_json()
    }

    /// The `GET /cortex/slo/rules` response: the Prometheus rules file.
    pub fn slo_rules_response(&self) -> Response {
        slo_rules()
    }

    /// The `/metrics` response for a request with these headers.
    pub fn metrics_response(&self, headers: &HeaderMap) -> Response {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let negotiated = negotiate_exposition(accept);
        let mut r = text(StatusCode::OK, self.metrics.encode_negotiated(&negotiated));
        if let Ok(v) = HeaderValue::from_str(&negotiated.content_type()) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    }

    /// The response of a health endpoint (`probe` `None` is `/health`).
    pub async fn health_response(&self, probe: Option<Group>, headers: &HeaderMap) -> Response {
        let report = self.health.check(probe).await;
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let details = self.show_details.allows(authorization);
        let status = StatusCode::from_u16(report.http_status()).unwrap_or(StatusCode::OK);
        let mut r = json(status, report.to_json(details));
        // Probes must see the current state, never a cached one.
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r
    }

    async fn respond(self, method: Method, path: String, headers: HeaderMap) -> Response {
        let slo = SLO_PATHS.iter().find(|(p, _)| *p == path).map(|(_, r)| *r);
        let known = path == "/metrics" || slo.is_some() || PATHS.iter().any(|(p, _)| *p == path);
        if !known {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        if method != Method::GET && method != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        if path == "/metrics" {
            return self.metrics_response(&headers);
        }
        if let Some(respond) = slo {
            return respond();
        }
        let probe = PATHS.iter().find(|(p, _)| *p == path).and_then(|(_, g)| *g);
        self.health_response(probe, &headers).await
    }
}

/// The objective endpoints and what answers them.
type Respond = fn() -> Response;

const SLO_PATHS: [(&str, Respond); 2] =
    [("/cortex/slo", slo_json), ("/cortex/slo/rules", slo_rules)];

fn slo_json() -> Response {
    match crate::slo::to_json() {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn slo_rules() -> Response {
    match crate::slo::prometheus_rules() {
        Ok(body) => {
            let mut r = text(StatusCode::OK, body);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml; charset=utf-8"),
            );
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The future of the admin service.
pub type AdminFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The most a write to an operations endpoint may send.
const MAX_OPS_BODY: usize = 64 * 1024;

impl<B> tower_service::Service<http::Request<B>> for Admin
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<super::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AdminFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> AdminFuture {
        use http_body_util::BodyExt;
        let admin = self.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = if parts.method == Method::POST {
                match http_body_util::Limited::new(body, MAX_OPS_BODY).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(_) => {
                        return Ok(json(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("{{\"error\":\"the body is larger than {MAX_OPS_BODY} bytes, or could not be read\"}}"),
                        ))
                    }
                }
            } else {
                bytes::Bytes::new()
            };
            let ops = OpsRequest {
                method: &parts.method,
                path: parts.uri.path(),
                query: parts.uri.query(),
                headers: &parts.headers,
                body: &body,
            };
            if let Some(r) = ops::respond(&ops, admin.token.0.as_deref()) {
                return Ok(r);
            }
            let path = parts.uri.path().to_owned();
            Ok(admin.respond(parts.method, path, parts.headers).await)
        })
    }
}

impl<B> hyper::service::Service<http::Request<B>> for Admin
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<super::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AdminFuture;

    fn call(&self, req: http::Request<B>) -> AdminFuture {
        let mut admin = self.clone();
        tower_service::Service::call(&mut admin, req)
    }
}
