//! The operations endpoints under `/cortex/`: policy views and breaker
//! steering, recent events, the effective configuration and its reload,
//! build info. Reads are open; writes need the admin token.

use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value as Json};

use super::super::handler::{json as json_response, Response};
use super::super::router::percent_decode;
use crate::config;
use crate::resilience::{self, CircuitBreaker, EventFilter, PolicyEvent};

/// The paths the operations endpoints answer: the templates a server
/// routes, and the methods each takes.
pub(crate) const OPS_ROUTES: &[(&str, &[Method])] = &[
    ("/cortex/circuitbreakers", &[Method::GET]),
    (
        "/cortex/circuitbreakers/{name}",
        &[Method::GET, Method::POST],
    ),
    ("/cortex/retries", &[Method::GET]),
    ("/cortex/retries/{name}", &[Method::GET]),
    ("/cortex/bulkheads", &[Method::GET]),
    ("/cortex/bulkheads/{name}", &[Method::GET]),
    ("/cortex/ratelimiters", &[Method::GET]),
    ("/cortex/ratelimiters/{name}", &[Method::GET]),
    ("/cortex/timeouts", &[Method::GET]),
    ("/cortex/timeouts/{name}", &[Method::GET]),
    ("/cortex/events", &[Method::GET]),
    ("/cortex/config", &[Method::GET]),
    ("/cortex/config/reload", &[Method::POST]),
    ("/cortex/info", &[Method::GET]),
];

/// A request to an operations endpoint.
pub(crate) struct OpsRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a [u8],
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(status, json!({"error": message.into()}).to_string())
}

fn ok(body: Json) -> Response {
    let mut r = json_response(StatusCode::OK, body.to_string());
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The answer to an operations request, or `None` for a path that is not
/// one of [`OPS_ROUTES`]. `token` is the admin token (`None`: writes are
/// off).
pub(crate) fn respond(req: &OpsRequest<'_>, token: Option<&str>) -> Option<Response> {
    let rest = req.path.strip_prefix("/cortex/")?;
    let (collection, name) = match rest.split_once('/') {
        Some((c, n)) if !n.is_empty() && !n.contains('/') => (c, Some(n)),
        Some(_) => return None,
        None => (rest, None),
    };
    let name = match name.map(percent_decode).transpose() {
        Ok(name) => name,
        Err(why) => return Some(error(StatusCode::BAD_REQUEST, why)),
    };
    let template = OPS_ROUTES.iter().find(|(t, _)| {
        let t = &t["/cortex/".len()..];
        match &name {
            None => t == rest,
            Some(_) => t.strip_suffix("/{name}") == Some(collection) || t == rest,
        }
    })?;
    let allowed = template.1.contains(req.method)
        || (req.method == Method::HEAD && template.1.contains(&Method::GET));
    if !allowed {
        let allow: Vec<&str> = template.1.iter().map(Method::as_str).collect();
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} takes {}", req.path, allow.join(", ")),
        );
        if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return Some(r);
    }
    if req.method == Method::POST {
        if let Some(refused) = refuse_write(req.headers, token) {
            return Some(refused);
        }
    }
    Some(match (collection, name.as_deref()) {
        ("circuitbreakers", None) => {
            ok(json!({"circuit_breakers": all(resilience::registry::breakers(), breaker)}))
        }
        ("circuitbreakers", Some(n)) if req.method == Method::POST => steer(n, req.body),
        ("circuitbreakers", Some(n)) => one(
            resilience::circuit_breaker(n),
            "circuit breaker",
            n,
            breaker,
        ),
        ("retries", None) => ok(json!({"retries": all(resilience::registry::retries(), retry)})),
        ("retries", Some(n)) => one(resilience::retry(n), "retry", n, retry),
        ("bulkheads", None) => {
            ok(json!({"bulkheads": all(resilience::registry::bulkheads(), bulkhead)}))
        }
        ("bulkheads", Some(n)) => one(resilience::bulkhead(n), "bulkhead", n, bulkhead),
        ("ratelimiters", None) => {
            ok(json!({"rate_limiters": all(resilience::registry::rate_limiters(), rate_limiter)}))
        }
        ("ratelimiters", Some(n)) => {
            one(resilience::rate_limiter(n), "rate limiter", n, rate_limiter)
        }
        ("timeouts", None) => {
            ok(json!({"timeouts": all(resilience::registry::timeouts(), timeout)}))
        }
        ("timeouts", Some(n)) => one(resilience::timeout(n), "timeout", n, timeout),
        ("events", None) => events(req.query),
        ("config", None) => match serde_json::from_str(&config::to_json()) {
            Ok(v) => ok(v),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
        ("config", Some("reload")) => reload(),
        ("info", None) => ok(info()),
        _ => return None,
    })
}

/// `None` when the request may write; else the refusal.
fn refuse_write(headers: &HeaderMap, token: Option<&str>) -> Option<Response> {
    let Some(token) = token else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "writes are off: set CORTEX_ADMIN_TOKEN (or Admin::token) to allow them",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if crate::health::bearer_matches(given, token) {
        return None;
    }
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "a write needs `Authorization: Bearer <token>` with the admin token",
    );
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(r)
}

fn all<P>(instances: Vec<(String, P)>, view: fn(&P) -> Json) -> Json {
    Json::Array(instances.iter().map(|(_, p)| view(p)).collect())
}

fn one<P>(found: Option<P>, what: &str, name: &str, view: fn(&P) -> Json) -> Response {
    match found {
        Some(p) => ok(view(&p)),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no {what} is named `{name}`"),
        ),
    }
}

fn rate(r: Option<f64>) -> Json {
    r.map_or(Json::Null, |v| json!(v))
}

fn breaker(b: &CircuitBreaker) -> Json {
    let s = b.stats();
    json!({
        "name": b.name(),
        "state": s.state.name(),
        "failure_rate": rate(s.failure_rate),
        "slow_call_rate": rate(s.slow_call_rate),
        "buffered_calls": s.calls_in_window,
        "failed_calls": s.failed_in_window,
        "slow_calls": s.slow_in_window,
        "not_permitted_calls": s.not_permitted,
        "config": config::settings::<config::Breakers>(b.name(), &b.config()),
    })
}

fn retry(r: &resilience::Retry) -> Json {
    let [ok_first, ok_retried, failed_first, failed_retried, retries] = r.counts();
    json!({
        "name": r.name(),
        "successful_calls_without_retry": ok_first,
        "successful_calls_with_retry": ok_retried,
        "failed_calls_without_retry": failed_first,
        "failed_calls_with_retry": failed_retried,
        "retries": retries,
        "config": config::settings::<config::Retries>(r.name(), &r.config()),
    })
}

fn bulkhead(b: &resilience::Bulkhead) -> Json {
    json!({
        "name": b.name(),
        "in_use": b.in_use(),
        "waiting": b.waiting(),
        "config": config::settings::<config::Bulkheads>(b.name(), &b.config()),
    })
}

fn rate_limiter(l: &resilience::RateLimiter) -> Json {
    json!({
        "name": l.name(),
        "available_permits": l.available_permits(),
        "waiting": l.waiting(),
        "config": config::settings::<config::RateLimiters>(l.name(), &l.config()),
    })
}

fn timeout(t: &resilience::Timeout) -> Json {
    json!({
        "name": t.name(),
        "config": config::settings::<config::Timeouts>(t.name(), &t.duration()),
    })
}

/// `POST /cortex/circuitbreakers/{name}` with `{"state": ..}`.
fn steer(name: &str, body: &[u8]) -> Response {
    let Some(b) = resilience::circuit_breaker(name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no circuit breaker is named `{name}`"),
        );
    };
    const EXPECTED: &str = "the body must be {\"state\": \"CLOSED\"}, {\"state\": \"FORCED_OPEN\"} or {\"state\": \"DISABLED\"}";
    let parsed: Json = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON ({e}); {EXPECTED}"),
            )
        }
    };
    match parsed.get("state").and_then(Json::as_str) {
        Some("CLOSED") => b.reset(),
        Some("FORCED_OPEN") => b.force_open(),
        Some("DISABLED") => b.disable(),
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("unknown state `{other}`; {EXPECTED}"),
            )
        }
        None => return error(StatusCode::BAD_REQUEST, EXPECTED),
    }
    tracing::warn!(target: "cortex::http", circuit_breaker = name, state = b.state().name(), "circuit breaker steered through the admin API");
    ok(breaker(&b))
}

/// `GET /cortex/events?policy=&name=&kind=&limit=`.
fn events(query: Option<&str>) -> Response {
    let mut filter = EventFilter::default();
    for (key, value) in query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        let value = match percent_decode(&value.replace('+', " ")) {
            Ok(v) => v,
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        };
        match key {
            "policy" => filter.policy = Some(value),
            "name" => filter.name = Some(value),
            "kind" => filter.kind = Some(value),
            "limit" => match value.parse::<usize>() {
                Ok(n) => filter.limit = Some(n),
                Err(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("`limit` is a whole number, not `{value}`"),
                    )
                }
            },
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                    "unknown parameter `{other}`; the parameters are policy, name, kind and limit"
                ),
                )
            }
        }
    }
    let list: Vec<Json> = resilience::recent_events(&filter)
        .iter()
        .map(event)
        .collect();
    ok(json!({"events": list}))
}

/// One event as JSON.
pub(crate) fn event(e: &PolicyEvent) -> Json {
    json!({
        "policy": e.policy,
        "name": &*e.name,
        "kind": e.kind,
        "at": crate::util::rfc3339(e.at),
        "message": e.message,
    })
}

fn reload() -> Response {
    let changes = |list: &[config::Change]| -> Vec<Json> {
        list.iter()
            .map(|c| json!({"setting": c.setting, "value": c.value, "source": c.source}))
            .collect()
    };
    match config::reload() {
        Ok(report) => ok(json!({
            "status": "applied",
            "changes": changes(&report.changes),
            "restart_needed": changes(&report.restart_needed),
        })),
        Err(refused) => {
            let problems: Vec<Json> = refused
                .problems
                .iter()
                .map(|p| json!({"place": p.place.to_string(), "setting": p.setting, "message": p.message}))
                .collect();
            json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"status": "refused", "problems": problems}).to_string(),
            )
        }
    }
}

fn info() -> Json {
    let build = crate::metrics::BuildInfo::registered().map_or(Json::Null, |b| {
        json!({
            "service": b.service,
            "version": b.version,
            "commit": b.commit,
            "rust_version": crate::metrics::RUST_VERSION,
        })
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let start = u128::from(crate::metrics::start_unix_nanos());
    let uptime = (now.saturating_sub(start) / 1_000_000) as f64 / 1000.0;
    json!({
        "build": build,
        "cortex_version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": uptime,
        "features": FEATURES.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect::<Vec<_>>(),
    })
}

const FEATURES: &[(&str, bool)] = &[
    ("http", cfg!(feature = "http")),
    ("compression", cfg!(feature = "compression")),
    ("actors", cfg!(feature = "actors")),
    ("workers", cfg!(feature = "workers")),
    ("wasm", cfg!(feature = "wasm")),
    ("axum", cfg!(feature = "axum")),
    ("tracing-bridge", cfg!(feature = "tracing-bridge")),
    ("reqwest", cfg!(feature = "reqwest")),
    ("tls", cfg!(feature = "tls")),
];
