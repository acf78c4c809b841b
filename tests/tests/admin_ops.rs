//! The operations endpoints under `/cortex/`, over loopback: the exact
//! JSON of each view, breaker steering behind the admin token, the event
//! rings, the configuration and build info.

use std::time::Duration;

use cortex::http::{Admin, RunningServer, Server};
use cortex::resilience::{
    Bulkhead, BulkheadConfig, CircuitBreaker, CircuitBreakerConfig, RateLimiter, RateLimiterConfig,
    Retry, RetryConfig, Timeout, Window,
};
use cortex_tests::raw;

const TOKEN: &str = "s3cret-token";

async fn server(token: Option<&str>) -> RunningServer {
    Admin::new()
        .token(token)
        .mount(Server::new())
        .unwrap()
        .load_config(false)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
}

fn small_breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(
        name,
        CircuitBreakerConfig {
            minimum_calls: 2,
            window: Window::Count(4),
            ..Default::default()
        },
    )
    .unwrap()
}

const COMPILED_CONFIG: &str = r#""config":{"failure_rate":{"value":50,"source":"compiled"},"slow_call_rate":{"value":100,"source":"compiled"},"slow_call_threshold":{"value":null,"source":"compiled"},"minimum_calls":{"value":2,"source":"compiled"},"window":{"value":4,"source":"compiled"},"open_for":{"value":"1m","source":"compiled"},"half_open_calls":{"value":10,"source":"compiled"},"health":{"value":"degraded","source":"compiled"},"automatic_half_open":{"value":false,"source":"compiled"},"max_wait_in_half_open":{"value":null,"source":"compiled"},"open_for_multiplier":{"value":null,"source":"compiled"},"max_open_for":{"value":null,"source":"compiled"}}"#;

const RETRY_VIEW: &str = r#"{"name":"ops-fetch","successful_calls_without_retry":0,"successful_calls_with_retry":0,"failed_calls_without_retry":0,"failed_calls_with_retry":1,"retries":1,"config":{"max":{"value":2,"source":"compiled"},"delay":{"value":"1ms","source":"compiled"},"multiplier":{"value":null,"source":"compiled"},"max_delay":{"value":null,"source":"compiled"},"jitter":{"value":0.0,"source":"compiled"},"budget":{"value":null,"source":"compiled"},"max_elapsed":{"value":null,"source":"compiled"}}}"#;
const BULKHEAD_VIEW: &str = r#"{"name":"ops-reports","in_use":0,"waiting":0,"config":{"max_concurrent":{"value":25,"source":"compiled"},"max_wait":{"value":"0s","source":"compiled"},"fair":{"value":true,"source":"compiled"}}}"#;
const LIMITER_VIEW: &str = r#"{"name":"ops-search","available_permits":50,"waiting":0,"config":{"permits":{"value":50,"source":"compiled"},"period":{"value":"500ms","source":"compiled"},"max_wait":{"value":"5s","source":"compiled"}}}"#;
const TIMEOUT_VIEW: &str =
    r#"{"name":"ops-slow","config":{"after":{"value":"250ms","source":"compiled"}}}"#;

/// What `GET /cortex/circuitbreakers/ops-orders` answers first.
fn breaker_closed() -> String {
    format!(
        r#"{{"name":"ops-orders","state":"CLOSED","failure_rate":null,"slow_call_rate":null,"buffered_calls":0,"failed_calls":0,"slow_calls":0,"not_permitted_calls":0,{COMPILED_CONFIG}}}"#
    )
}

/// The README shows these shapes as they are.
#[test]
fn the_readme_shows_these_shapes() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    for shape in [
        breaker_closed(),
        RETRY_VIEW.into(),
        BULKHEAD_VIEW.into(),
        LIMITER_VIEW.into(),
        TIMEOUT_VIEW.into(),
    ] {
        assert!(
            readme.contains(&format!("{shape}\n")),
            "README.md lacks {shape}"
        );
    }
}

/// The events as JSON with each `at` checked and replaced by `AT`.
fn events_without_time(body: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    for e in v["events"].as_array_mut().unwrap() {
        let at = e["at"].as_str().unwrap();
        assert!(
            at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "{at}"
        );
        e["at"] = "AT".into();
    }
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_views_are_exact_and_writes_need_the_token() {
    let b = small_breaker("ops-orders");
    let s = server(Some(TOKEN)).await;
    let at = s.local_addr();
    let r = raw::get(at, "/cortex/circuitbreakers/ops-orders", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, breaker_closed());
    for _ in 0..2 {
        b.acquire().unwrap().failure();
    }
    assert!(b.acquire().is_err());
    let r = raw::get(at, "/cortex/circuitbreakers", &[]).await;
    let all: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let mine = all["circuit_breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "ops-orders")
        .unwrap();
    assert_eq!(
        mine.to_string(),
        format!(
            r#"{{"name":"ops-orders","state":"OPEN","failure_rate":100.0,"slow_call_rate":0.0,"buffered_calls":2,"failed_calls":2,"slow_calls":0,"not_permitted_calls":1,{COMPILED_CONFIG}}}"#
        )
    );

    // Writes: no token, a wrong one, then the right one (any case of
    // `Bearer`).
    let path = "/cortex/circuitbreakers/ops-orders";
    let body = r#"{"state":"CLOSED"}"#;
    let r = raw::request(at, "POST", path, &[], body).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some("Bearer"))
    );
    assert_eq!(
        r.body,
        r#"{"error":"a write needs `Authorization: Bearer <token>` with the admin token"}"#
    );
    let r = raw::request(
        at,
        "POST",
        path,
        &["Authorization: Bearer s3cret-tokem"],
        body,
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        b.state(),
        cortex::resilience::State::Open,
        "refused writes change nothing"
    );
    let auth = format!("Authorization: bearer {TOKEN}");
    let r = raw::request(at, "POST", path, &[&auth], body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .starts_with(r#"{"name":"ops-orders","state":"CLOSED","#),
        "{}",
        r.body
    );
    assert_eq!(b.state(), cortex::resilience::State::Closed);
    for (state, expect) in [
        ("FORCED_OPEN", cortex::resilience::State::ForcedOpen),
        ("DISABLED", cortex::resilience::State::Disabled),
        ("CLOSED", cortex::resilience::State::Closed),
    ] {
        let r = raw::request(
            at,
            "POST",
            path,
            &[&auth],
            &format!(r#"{{"state":"{state}"}}"#),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(b.state(), expect);
    }
    // Bad bodies and unknown names.
    let r = raw::request(at, "POST", path, &[&auth], "closed please").await;
    assert_eq!(r.status, 400);
    assert!(
        r.body.starts_with(r#"{"error":"the body is not JSON ("#),
        "{}",
        r.body
    );
    let r = raw::request(at, "POST", path, &[&auth], r#"{"state":"HALF_OPEN"}"#).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            r#"{"error":"unknown state `HALF_OPEN`; the body must be {\"state\": \"CLOSED\"}, {\"state\": \"FORCED_OPEN\"} or {\"state\": \"DISABLED\"}"}"#
        )
    );
    let r = raw::request(at, "POST", path, &[&auth], r#"{"status":"CLOSED"}"#).await;
    assert_eq!(r.status, 400);
    let r = raw::request(
        at,
        "POST",
        "/cortex/circuitbreakers/ops-nope",
        &[&auth],
        body,
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"{"error":"no circuit breaker is named `ops-nope`"}"#)
    );
    let r = raw::get(at, "/cortex/circuitbreakers/ops-nope", &[]).await;
    assert_eq!(r.status, 404);
    s.shutdown(Duration::from_secs(1)).await;

    // Without a token, writes are off.
    let s = server(None).await;
    let r = raw::request(s.local_addr(), "POST", path, &[&auth], body).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            403,
            r#"{"error":"writes are off: set CORTEX_ADMIN_TOKEN (or Admin::token) to allow them"}"#
        )
    );
    s.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_policies_have_read_views() {
    let retry = Retry::new(
        "ops-fetch",
        RetryConfig {
            max: 2,
            delay: Duration::from_millis(1),
            ..Default::default()
        },
    )
    .unwrap();
    let failing: Result<(), &str> = retry.call(|| async { Err("down") }).await;
    assert!(failing.is_err());
    Bulkhead::new("ops-reports", BulkheadConfig::default()).unwrap();
    RateLimiter::new("ops-search", RateLimiterConfig::default()).unwrap();
    Timeout::new("ops-slow", Duration::from_millis(250)).unwrap();
    let s = server(Some(TOKEN)).await;
    let at = s.local_addr();
    let get = |path: &'static str| async move {
        let r = raw::get(at, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        r.body
    };
    assert_eq!(get("/cortex/retries/ops-fetch").await, RETRY_VIEW);
    assert_eq!(get("/cortex/bulkheads/ops-reports").await, BULKHEAD_VIEW);
    assert_eq!(get("/cortex/ratelimiters/ops-search").await, LIMITER_VIEW);
    assert_eq!(get("/cortex/timeouts/ops-slow").await, TIMEOUT_VIEW);
    for list in [
        "/cortex/retries",
        "/cortex/bulkheads",
        "/cortex/ratelimiters",
        "/cortex/timeouts",
    ] {
        let body = get(list).await;
        assert!(body.contains(r#""name":"ops-"#), "{list}: {body}");
    }
    let r = raw::get(at, "/cortex/retries/ops-none", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, r#"{"error":"no retry is named `ops-none`"}"#)
    );
    // The retry's events: one retry, then the give-up.
    let events = get("/cortex/events?policy=retry&name=ops-fetch").await;
    assert_eq!(
        events_without_time(&events),
        r#"{"events":[{"policy":"retry","name":"ops-fetch","kind":"ERROR","at":"AT","message":"max attempts reached after 2 attempts"},{"policy":"retry","name":"ops-fetch","kind":"RETRY","at":"AT","message":"attempt 1 failed, next in 1ms"}]}"#
    );
    s.shutdown(Duration::from_secs(1)).await;
}

/// Each instance keeps its newest 100 events, newest first, and the
/// filters select by policy, name, kind and count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_rings_are_bounded_and_newest_first() {
    let b = small_breaker("ops-ring");
    for _ in 0..75 {
        b.force_open();
        b.reset();
    }
    assert!(b.acquire().is_ok());
    b.force_open();
    assert!(b.acquire().is_err());
    let s = server(None).await;
    let at = s.local_addr();
    let r = raw::get(at, "/cortex/events?name=ops-ring", &[]).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let list = v["events"].as_array().unwrap();
    assert_eq!(list.len(), 100, "bounded");
    let messages: Vec<&str> = list
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "FORCED_OPEN", "the rejection, newest");
    assert_eq!(messages[1], "CLOSED -> FORCED_OPEN");
    assert_eq!(messages[2], "FORCED_OPEN -> CLOSED");
    assert_eq!(messages[3], "CLOSED -> FORCED_OPEN");
    let r = raw::get(at, "/cortex/events?name=ops-ring&kind=NOT_PERMITTED", &[]).await;
    assert_eq!(
        events_without_time(&r.body),
        r#"{"events":[{"policy":"circuit_breaker","name":"ops-ring","kind":"NOT_PERMITTED","at":"AT","message":"FORCED_OPEN"}]}"#
    );
    let r = raw::get(
        at,
        "/cortex/events?policy=circuit_breaker&name=ops-ring&limit=2",
        &[],
    )
    .await;
    assert_eq!(
        events_without_time(&r.body),
        r#"{"events":[{"policy":"circuit_breaker","name":"ops-ring","kind":"NOT_PERMITTED","at":"AT","message":"FORCED_OPEN"},{"policy":"circuit_breaker","name":"ops-ring","kind":"STATE_TRANSITION","at":"AT","message":"CLOSED -> FORCED_OPEN"}]}"#
    );
    // Rejections at the rate of calls: one kept per 100 ms.
    for _ in 0..1000 {
        assert!(b.acquire().is_err());
    }
    let rejections = |body: &str| body.matches(r#""kind":"NOT_PERMITTED""#).count();
    let r = raw::get(at, "/cortex/events?name=ops-ring&kind=NOT_PERMITTED", &[]).await;
    assert_eq!(rejections(&r.body), 1);
    tokio::time::sleep(cortex::resilience::REJECTIONS_EVERY + Duration::from_millis(20)).await;
    assert!(b.acquire().is_err());
    let r = raw::get(at, "/cortex/events?name=ops-ring&kind=NOT_PERMITTED", &[]).await;
    assert_eq!(rejections(&r.body), 2);
    assert_eq!(
        b.stats().not_permitted,
        1002,
        "every rejection is still counted"
    );
    let r = raw::get(at, "/cortex/events?limit=many", &[]).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, r#"{"error":"`limit` is a whole number, not `many`"}"#)
    );
    let r = raw::get(at, "/cortex/events?colour=red", &[]).await;
    assert_eq!(r.status, 400);
    s.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_and_info() {
    let info = cortex::build_info!();
    let s = server(Some(TOKEN)).await;
    let at = s.local_addr();
    let r = raw::get(at, "/cortex/config", &[]).await;
    assert_eq!(r.status, 200);
    let config: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let sections: Vec<&str> = config
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        sections,
        [
            "circuit_breaker",
            "retry",
            "bulkhead",
            "rate_limiter",
            "timeout",
            "health",
            "server",
            "traces"
        ]
    );
    let r = raw::request(at, "POST", "/cortex/config/reload", &[], "").await;
    assert_eq!(r.status, 401);
    let auth = format!("Authorization: Bearer {TOKEN}");
    let r = raw::request(at, "POST", "/cortex/config/reload", &[&auth], "").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            200,
            r#"{"status":"applied","changes":[],"restart_needed":[]}"#
        )
    );
    let r = raw::request(at, "GET", "/cortex/config/reload", &[], "").await;
    assert_eq!(r.status, 405);

    let r = raw::get(at, "/cortex/info", &[]).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["build"].to_string(),
        format!(
            r#"{{"service":"cortex-tests","version":"{}","commit":"{}","rust_version":"{}"}}"#,
            info.version,
            info.commit,
            cortex::metrics::RUST_VERSION
        )
    );
    assert_eq!(v["cortex_version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0);
    let features: Vec<&str> = v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        features.contains(&"http") && features.contains(&"tls"),
        "{features:?}"
    );
    s.shutdown(Duration::from_secs(1)).await;
}

/// The same endpoints through `Admin` as a tower service (in axum, say):
/// the body of a write is read there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_service_answers_the_same() {
    use tower::ServiceExt;
    let b = small_breaker("ops-tower");
    let admin = Admin::new().token(Some(TOKEN));
    let request = http::Request::post("/cortex/circuitbreakers/ops-tower")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(String::from(r#"{"state":"FORCED_OPEN"}"#))
        .unwrap();
    let response = admin.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(b.state(), cortex::resilience::State::ForcedOpen);
    let get = http::Request::get("/cortex/circuitbreakers/ops-tower")
        .body(String::new())
        .unwrap();
    let response = admin.clone().oneshot(get).await.unwrap();
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.starts_with(br#"{"name":"ops-tower","state":"FORCED_OPEN","#));
    let big = http::Request::post("/cortex/circuitbreakers/ops-tower")
        .body("x".repeat(100_000))
        .unwrap();
    assert_eq!(admin.oneshot(big).await.unwrap().status(), 413);
}

/// Through the tower service: a method an endpoint does not take is 405
/// with `Allow`, a name is percent-decoded, an unknown path is 404, and the
/// other admin endpoints still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_service_routes_like_the_server() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    small_breaker("ops-routes");
    let admin = Admin::new().token(None);
    let call = |method: &str, path: &str| {
        let admin = admin.clone();
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .body(String::new())
            .unwrap();
        async move {
            let r = admin.oneshot(req).await.unwrap();
            let status = r.status().as_u16();
            let allow = r
                .headers()
                .get("allow")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = r.into_body().collect().await.unwrap().to_bytes();
            (status, allow, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, allow, body) = call("DELETE", "/cortex/circuitbreakers").await;
    assert_eq!((status, allow.as_deref()), (405, Some("GET")));
    assert_eq!(body, r#"{"error":"/cortex/circuitbreakers takes GET"}"#);
    let (status, allow, _) = call("PUT", "/cortex/config/reload").await;
    assert_eq!((status, allow.as_deref()), (405, Some("POST")));
    let (status, _, body) = call("GET", "/cortex/circuitbreakers/ops%2Droutes").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"name":"ops-routes","#), "{body}");
    let (status, _, body) = call("POST", "/cortex/circuitbreakers/ops-routes").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(call("GET", "/cortex/nothing").await.0, 404);
    assert_eq!(call("GET", "/cortex/circuitbreakers/a/b").await.0, 404);
    assert_eq!(
        call("GET", "/cortex/events?kind=STATE_TRANSITION&limit=1")
            .await
            .0,
        200
    );
    assert_eq!(call("GET", "/cortex/info").await.0, 200);
    assert_eq!(call("GET", "/cortex/slo").await.0, 200);
    assert_eq!(call("GET", "/health/live").await.0, 200);
}
