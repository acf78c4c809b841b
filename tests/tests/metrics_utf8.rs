//! Prometheus 3's UTF-8 names: refused by default, accepted once a registry
//! allows them, served as they are to a scraper that asks with
//! `escaping=allow-utf-8` and escaped to underscores for every other one.

use cortex::http::{Admin, HeaderMap, HeaderValue};
use cortex::metrics::{Buckets, Error, Escaping, Format, Registry};
use cortex_tests::prometheus_model::families;

fn utf8_registry() -> &'static Registry {
    let registry: &'static Registry = Box::leak(Box::new(Registry::new()));
    registry.allow_utf8_names();
    registry
        .counter_family(
            "http.server.requests_total",
            "Requests.",
            &["url.scheme", "method"],
        )
        .unwrap()
        .with_labels(&["https", "GET"])
        .unwrap()
        .inc_by(2);
    registry
        .histogram(
            "db.query.duration_seconds",
            "Query time.",
            Buckets::new([0.5]).unwrap(),
        )
        .unwrap()
        .observe(0.25);
    registry
}

#[test]
fn names_beyond_the_classic_rules_need_the_registry_to_allow_them() {
    let plain = Registry::new();
    assert!(matches!(
        plain.gauge("queue.depth", ""),
        Err(Error::InvalidName(_))
    ));
    assert!(matches!(
        plain.gauge_family("depth", "", &["queue.name"]),
        Err(Error::InvalidName(_))
    ));
    let registry = Registry::new();
    registry.allow_utf8_names();
    registry.gauge("queue.depth", "").unwrap().set(1.0);
    // Still refused: an empty name, a reserved label, and a name that
    // escapes like one already registered.
    assert!(registry.gauge("", "").is_err());
    assert!(registry.gauge_family("g", "", &["__x"]).is_err());
    assert!(matches!(
        registry.gauge("queue_depth", ""),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn escaped_to_underscores_by_default_and_promtool_accepts_it() {
    let text = utf8_registry().encode(Format::PrometheusText);
    assert_eq!(
        text,
        "# HELP db_query_duration_seconds Query time.\n\
         # TYPE db_query_duration_seconds histogram\n\
         db_query_duration_seconds_bucket{le=\"0.5\"} 1\n\
         db_query_duration_seconds_bucket{le=\"+Inf\"} 1\n\
         db_query_duration_seconds_sum 0.25\n\
         db_query_duration_seconds_count 1\n\
         # HELP http_server_requests_total Requests.\n\
         # TYPE http_server_requests_total counter\n\
         http_server_requests_total{url_scheme=\"https\",method=\"GET\"} 2\n"
    );
    cortex_tests::promtool_check_metrics(&text).assert_ok();
}

#[test]
fn served_as_they_are_when_the_scraper_allows_utf8() {
    let registry = utf8_registry();
    assert_eq!(
        registry.encode_with(Format::PrometheusText, Escaping::AllowUtf8),
        "# HELP \"db.query.duration_seconds\" Query time.\n\
         # TYPE \"db.query.duration_seconds\" histogram\n\
         {\"db.query.duration_seconds_bucket\",le=\"0.5\"} 1\n\
         {\"db.query.duration_seconds_bucket\",le=\"+Inf\"} 1\n\
         {\"db.query.duration_seconds_sum\"} 0.25\n\
         {\"db.query.duration_seconds_count\"} 1\n\
         # HELP \"http.server.requests_total\" Requests.\n\
         # TYPE \"http.server.requests_total\" counter\n\
         {\"http.server.requests_total\",\"url.scheme\"=\"https\",method=\"GET\"} 2\n"
    );
    let om = registry.encode_with(Format::OpenMetrics, Escaping::AllowUtf8);
    assert!(
        om.contains("# TYPE \"http.server.requests\" counter\n"),
        "{om}"
    );
    assert!(om.ends_with("# EOF\n"));

    // Through the admin endpoint, with the Accept header Prometheus 3 sends.
    let admin = Admin::with_registries(registry, cortex::health::global());
    let mut headers = HeaderMap::new();
    headers.insert(
        "accept",
        HeaderValue::from_static("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"),
    );
    let r = admin.metrics_response(&headers);
    assert_eq!(
        r.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    );
    headers.insert(
        "accept",
        HeaderValue::from_static("text/plain;version=1.0.0;escaping=allow-utf-8"),
    );
    let r = admin.metrics_response(&headers);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    );
    // Without the parameter, the classic text format and escaped names.
    let r = admin.metrics_response(&HeaderMap::new());
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

#[test]
fn protobuf_names_are_raw_or_escaped_as_asked() {
    let registry = utf8_registry();
    let escaped = families(&registry.encode_protobuf());
    assert_eq!(escaped[1].name, "http_server_requests_total");
    assert_eq!(escaped[1].metric[0].label[0].name, "url_scheme");
    let negotiated = cortex::metrics::negotiate_exposition(Some(
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=allow-utf-8",
    ));
    assert_eq!(negotiated.escaping, Escaping::AllowUtf8);
    let raw = families(&registry.encode_negotiated(&negotiated));
    assert_eq!(raw[1].name, "http.server.requests_total");
    assert_eq!(raw[1].metric[0].label[0].name, "url.scheme");
}
