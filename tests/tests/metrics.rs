//! The metrics runtime: exact exposition text in both formats, escaping,
//! registry rules, concurrency, and acceptance by the reference validators.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use cortex::metrics::{negotiate, Buckets, Error, Format, Registry};
use cortex_tests::{openmetrics_parse, promtool_check_metrics, Verdict};

fn assert_accepted(verdict: Verdict, text: &str) {
    if let Verdict::Refused(why) = verdict {
        panic!("validator refused the exposition:\n{why}\n--- text ---\n{text}");
    }
}

#[test]
fn counter_exposition_in_both_formats() {
    let r = Registry::new();
    let c = r
        .counter_family("jobs_total", "Jobs done.", &["queue"])
        .unwrap();
    c.with_labels(&["fast"]).unwrap().inc_by(2);
    c.with_labels(&["bulk"]).unwrap().inc_by_f64(1.5).unwrap();
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP jobs_total Jobs done.\n\
         # TYPE jobs_total counter\n\
         jobs_total{queue=\"bulk\"} 1.5\n\
         jobs_total{queue=\"fast\"} 2\n"
    );
    assert_eq!(
        r.encode(Format::OpenMetrics),
        "# HELP jobs Jobs done.\n\
         # TYPE jobs counter\n\
         jobs_total{queue=\"bulk\"} 1.5\n\
         jobs_total{queue=\"fast\"} 2\n\
         # EOF\n"
    );
}

#[test]
fn gauge_exposition_in_both_formats() {
    let r = Registry::new();
    let g = r.gauge("temperature_celsius", "Room temperature.").unwrap();
    g.set(21.5);
    g.dec();
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP temperature_celsius Room temperature.\n\
         # TYPE temperature_celsius gauge\n\
         temperature_celsius 20.5\n"
    );
    assert_eq!(
        r.encode(Format::OpenMetrics),
        "# HELP temperature_celsius Room temperature.\n\
         # TYPE temperature_celsius gauge\n\
         temperature_celsius 20.5\n\
         # EOF\n"
    );
}

#[test]
fn histogram_exposition_is_cumulative_with_inf_equal_to_count() {
    let r = Registry::new();
    let h = r
        .histogram_family(
            "payload_bytes",
            "Payload sizes.",
            &["route"],
            Buckets::new([100.0, 1000.0]).unwrap(),
        )
        .unwrap();
    let s = h.with_labels(&["/up"]).unwrap();
    for v in [50.0, 100.0, 500.0, 5000.0] {
        s.observe(v);
    }
    let expected_series = "\
payload_bytes_bucket{route=\"/up\",le=\"100\"} 2
payload_bytes_bucket{route=\"/up\",le=\"1000\"} 3
payload_bytes_bucket{route=\"/up\",le=\"+Inf\"} 4
payload_bytes_sum{route=\"/up\"} 5650
payload_bytes_count{route=\"/up\"} 4
";
    assert_eq!(
        r.encode(Format::PrometheusText),
        format!("# HELP payload_bytes Payload sizes.\n# TYPE payload_bytes histogram\n{expected_series}")
    );
    assert_eq!(
        r.encode(Format::OpenMetrics),
        format!(
            "# HELP payload_bytes Payload sizes.\n# TYPE payload_bytes histogram\n{expected_series}# EOF\n"
        )
    );
}

#[test]
fn default_buckets_are_the_prometheus_ones() {
    let r = Registry::new();
    let h = r.histogram("op_seconds", "", Buckets::default()).unwrap();
    assert_eq!(
        h.bounds(),
        &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    );
    h.observe(0.003);
    let text = r.encode(Format::PrometheusText);
    assert!(text.starts_with("# TYPE op_seconds histogram\nop_seconds_bucket{le=\"0.005\"} 1\n"));
    assert!(text
        .contains("op_seconds_bucket{le=\"+Inf\"} 1\nop_seconds_sum 0.003\nop_seconds_count 1\n"));
}

#[test]
fn escaping_of_label_values_and_help() {
    let r = Registry::new();
    let c = r
        .counter_family(
            "odd_total",
            "Back\\slash, \"quotes\"\nand newline.",
            &["path"],
        )
        .unwrap();
    c.with_labels(&["C:\\dir \"x\"\nnext"]).unwrap().inc();
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP odd_total Back\\\\slash, \"quotes\"\\nand newline.\n\
         # TYPE odd_total counter\n\
         odd_total{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n"
    );
    // OpenMetrics also escapes `"` in HELP.
    assert!(r
        .encode(Format::OpenMetrics)
        .starts_with("# HELP odd Back\\\\slash, \\\"quotes\\\"\\nand newline.\n"));
}

#[test]
fn order_is_deterministic() {
    let a = Registry::new();
    let b = Registry::new();
    for (r, order) in [(&a, ["z", "m", "a"]), (&b, ["a", "z", "m"])] {
        for name in order {
            let fam = r.gauge_family(&format!("{name}_g"), "", &["k"]).unwrap();
            for k in order {
                fam.with_labels(&[k]).unwrap().set(1.0);
            }
        }
    }
    let text = a.encode(Format::PrometheusText);
    assert_eq!(text, b.encode(Format::PrometheusText));
    assert!(text.find("# TYPE a_g").unwrap() < text.find("# TYPE m_g").unwrap());
    assert!(text.find("a_g{k=\"a\"}").unwrap() < text.find("a_g{k=\"z\"}").unwrap());
    assert!(text.ends_with('\n'));
}

#[test]
fn registry_returns_the_existing_family_or_a_conflict() {
    let r = Registry::new();
    let first = r.counter_family("hits_total", "", &["route"]).unwrap();
    first.with_labels(&["/a"]).unwrap().inc();
    let again = r.counter_family("hits_total", "", &["route"]).unwrap();
    assert_eq!(again.with_labels(&["/a"]).unwrap().get(), 1.0);

    let other_labels = r.counter_family("hits_total", "", &["method"]).unwrap_err();
    assert!(matches!(other_labels, Error::Conflict { .. }));
    assert!(
        other_labels.to_string().contains("labels [route]"),
        "{other_labels}"
    );
    let other_type = r.gauge_family("hits_total", "", &["route"]).unwrap_err();
    assert!(other_type.to_string().contains("counter"), "{other_type}");
    let h = r.histogram("lat_seconds", "", Buckets::default()).unwrap();
    h.observe(1.0);
    assert!(matches!(
        r.histogram("lat_seconds", "", Buckets::new([1.0]).unwrap()),
        Err(Error::Conflict { .. })
    ));
    // A gauge cannot take a sample name a histogram writes.
    assert!(matches!(
        r.gauge("lat_seconds_count", ""),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn bad_names_say_which_rule_they_broke() {
    let r = Registry::new();
    let err = r.gauge("http-requests", "").unwrap_err().to_string();
    assert!(
        err.contains('-') && err.contains("[a-zA-Z_:][a-zA-Z0-9_:]*"),
        "{err}"
    );
    let err = r.gauge_family("g", "", &["a:b"]).unwrap_err().to_string();
    assert!(
        err.contains("label") && err.contains("[a-zA-Z_][a-zA-Z0-9_]*"),
        "{err}"
    );
    let err = r
        .gauge_family("g", "", &["__meta"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("reserved"), "{err}");
    let err = r.counter("requests", "").unwrap_err().to_string();
    assert!(err.contains("_total"), "{err}");
    assert!(r.is_empty(), "nothing is registered after an error");
}

#[test]
fn counter_refuses_bad_float_increments_and_keeps_its_value() {
    let r = Registry::new();
    let c = r.counter("x_total", "").unwrap();
    c.inc();
    for bad in [-1.0, f64::NAN, f64::INFINITY, -0.5] {
        let err = c.inc_by_f64(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidIncrement { .. }));
    }
    assert_eq!(c.get(), 1.0);
    c.inc_by_f64(0.25).unwrap();
    assert_eq!(c.get(), 1.25);
}

#[test]
fn bad_buckets_are_refused() {
    for bad in [
        vec![],
        vec![1.0, 1.0],
        vec![2.0, 1.0],
        vec![f64::NAN],
        vec![-1.0],
        vec![1.0, f64::INFINITY],
    ] {
        assert!(
            matches!(Buckets::new(bad.clone()), Err(Error::InvalidBuckets(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn label_count_must_match() {
    let r = Registry::new();
    let f = r.counter_family("a_total", "", &["x", "y"]).unwrap();
    let err = f.with_labels(&["1"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "metric `a_total` has 2 label(s) [x, y] but 1 value(s) were given"
    );
    assert_eq!(f.len(), 0);
}

#[test]
fn concurrent_increments_lose_nothing() {
    const THREADS: usize = 8;
    const PER_THREAD: u64 = 100_000;
    let r = Arc::new(Registry::new());
    let fam = r.counter_family("work_total", "", &["kind"]).unwrap();
    let hist = r.histogram("work_seconds", "", Buckets::default()).unwrap();
    let gauge = r.gauge("work_level", "").unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let fam = fam.clone();
            let hist = hist.clone();
            let gauge = gauge.clone();
            thread::spawn(move || {
                let kind = if t % 2 == 0 { "even" } else { "odd" };
                for i in 0..PER_THREAD {
                    // Half the time through the lookup, half through a kept handle.
                    if i % 2 == 0 {
                        fam.with_labels(&[kind]).unwrap().inc();
                    } else {
                        fam.with(&["all"], |c| c.inc_by(1)).unwrap();
                    }
                    hist.observe(0.001);
                    gauge.inc();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = THREADS as u64 * PER_THREAD;
    assert_eq!(fam.with_labels(&["all"]).unwrap().get(), (total / 2) as f64);
    assert_eq!(
        fam.with_labels(&["even"]).unwrap().get(),
        (total / 4) as f64
    );
    assert_eq!(fam.with_labels(&["odd"]).unwrap().get(), (total / 4) as f64);
    assert_eq!(hist.count(), total);
    assert_eq!(gauge.get(), total as f64);
}

#[test]
fn accept_header_negotiation() {
    let prometheus_default = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert_eq!(negotiate(Some(prometheus_default)), Format::OpenMetrics);
    // Prometheus with `scrape_protocols: [PrometheusText0.0.4]`.
    assert_eq!(
        negotiate(Some("text/plain;version=0.0.4;q=1,*/*;q=0.1")),
        Format::PrometheusText
    );
    assert_eq!(negotiate(Some("*/*")), Format::PrometheusText);
    assert_eq!(negotiate(None), Format::PrometheusText);
}

fn busy_registry() -> Registry {
    let r = Registry::new();
    let c = r
        .counter_family(
            "api_requests_total",
            "Requests with \"odd\" help\\text.",
            &["method", "path"],
        )
        .unwrap();
    c.with_labels(&["GET", "/a\"b\\c\nd"]).unwrap().inc_by(7);
    c.with_labels(&["POST", "/"])
        .unwrap()
        .inc_by_f64(2.5)
        .unwrap();
    r.gauge("queue_depth", "Depth.").unwrap().set(-3.25);
    r.gauge("huge_value", "A very large value.")
        .unwrap()
        .set(1e21);
    let h = r
        .histogram_family(
            "api_latency_seconds",
            "Latency.",
            &["method"],
            Buckets::default(),
        )
        .unwrap();
    for (i, m) in ["GET", "PUT"].iter().enumerate() {
        let s = h.with_labels(&[m]).unwrap();
        for k in 0..20 {
            s.observe(0.0007 * (k * (i + 1)) as f64);
        }
    }
    r
}

#[test]
fn promtool_accepts_the_text_format() {
    let text = busy_registry().encode(Format::PrometheusText);
    assert_accepted(promtool_check_metrics(&text), &text);
}

#[test]
fn reference_parser_accepts_openmetrics() {
    let text = busy_registry().encode(Format::OpenMetrics);
    assert_accepted(openmetrics_parse(&text), &text);
}

#[test]
fn validators_really_refuse_broken_text() {
    // Guards the two tests above against a validator that accepts anything.
    let broken = "# TYPE x counter\nx_total{a=\"1\" 1\n";
    assert!(!matches!(promtool_check_metrics(broken), Verdict::Accepted));
    assert!(
        !matches!(openmetrics_parse("x 1\n"), Verdict::Accepted),
        "missing # EOF must be refused"
    );
}

#[test]
fn exposition_follows_new_and_removed_series() {
    // Scrapes reuse a sorted view; it must follow every change.
    let r = Registry::new();
    let f = r.gauge_family("level", "Level.", &["k"]).unwrap();
    f.with_labels(&["b"]).unwrap().set(1.0);
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP level Level.\n# TYPE level gauge\nlevel{k=\"b\"} 1\n"
    );
    f.with_labels(&["a"]).unwrap().set(2.0);
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP level Level.\n# TYPE level gauge\nlevel{k=\"a\"} 2\nlevel{k=\"b\"} 1\n"
    );
    assert!(f.remove(&["b"]));
    assert!(!f.remove(&["b"]));
    f.with_labels(&["a"]).unwrap().set(3.0);
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP level Level.\n# TYPE level gauge\nlevel{k=\"a\"} 3\n"
    );
    assert!(f.remove(&["a"]));
    assert_eq!(r.encode(Format::PrometheusText), "");
    // A removed series comes back at zero, through either lookup.
    assert_eq!(f.with_labels(&["a"]).unwrap().get(), 0.0);
    f.with(&["a"], |g| g.set(4.0)).unwrap();
    assert_eq!(f.with_labels(&["a"]).unwrap().get(), 4.0);
    assert_eq!(
        r.encode(Format::PrometheusText),
        "# HELP level Level.\n# TYPE level gauge\nlevel{k=\"a\"} 4\n"
    );
}

#[test]
fn a_family_past_its_series_limit_sends_new_label_sets_to_one_overflow_series() {
    let registry = cortex::metrics::Registry::new();
    assert_eq!(
        registry
            .counter_family("limited_total", "h", &["user"])
            .unwrap()
            .series_limit(),
        cortex::metrics::DEFAULT_SERIES_LIMIT
    );
    registry.set_series_limit(3);
    let family = registry
        .counter_family("by_user_total", "Requests by user.", &["user", "kind"])
        .unwrap();
    assert_eq!(family.series_limit(), 3);
    for i in 0..10 {
        let user = format!("u{i}");
        family
            .with(&[&user, "a"], cortex::metrics::Counter::inc)
            .unwrap();
    }
    // The first three kept their series, and still count there.
    family
        .with(&["u0", "a"], cortex::metrics::Counter::inc)
        .unwrap();
    assert_eq!(
        registry.encode(cortex::metrics::Format::PrometheusText),
        "# HELP by_user_total Requests by user.\n\
         # TYPE by_user_total counter\n\
         by_user_total{user=\"\",kind=\"\",otel_metric_overflow=\"true\"} 7\n\
         by_user_total{user=\"u0\",kind=\"a\"} 2\n\
         by_user_total{user=\"u1\",kind=\"a\"} 1\n\
         by_user_total{user=\"u2\",kind=\"a\"} 1\n\
         # HELP cortex_metrics_series_dropped_total Updates of new label sets sent to a family's overflow series because the family was at its series limit.\n\
         # TYPE cortex_metrics_series_dropped_total counter\n\
         cortex_metrics_series_dropped_total{family=\"by_user_total\"} 7\n"
    );
    assert_eq!(family.len(), 4, "three series and the overflow");
    // Removing a series frees its place.
    assert!(family.remove(&["u2", "a"]));
    family
        .with(&["u9", "b"], cortex::metrics::Counter::inc)
        .unwrap();
    let text = registry.encode(cortex::metrics::Format::PrometheusText);
    assert!(
        text.contains("by_user_total{user=\"u9\",kind=\"b\"} 1\n"),
        "{text}"
    );
    // A family's own limit wins over the registry's.
    family.set_series_limit(100);
    family
        .with(&["u10", "a"], cortex::metrics::Counter::inc)
        .unwrap();
    assert!(registry
        .encode(cortex::metrics::Format::PrometheusText)
        .contains("by_user_total{user=\"u10\",kind=\"a\"} 1\n"));
}

#[test]
fn series_unchanged_past_their_ttl_expire_at_a_scrape_and_free_their_place() {
    use cortex::metrics::{Counter, Format, Registry};
    let registry = Registry::new();
    let family = registry
        .counter_family("tenant_calls_total", "Calls by tenant.", &["tenant"])
        .unwrap();
    family.set_series_limit(2);
    family.expire_after(Some(Duration::from_millis(50)));
    family.with(&["old"], Counter::inc).unwrap();
    family.with(&["live"], Counter::inc).unwrap();
    let _ = registry.encode(Format::PrometheusText);
    std::thread::sleep(Duration::from_millis(70));
    family.with(&["live"], Counter::inc).unwrap();
    let text = registry.encode(Format::PrometheusText);
    assert_eq!(
        text,
        "# HELP tenant_calls_total Calls by tenant.\n\
         # TYPE tenant_calls_total counter\n\
         tenant_calls_total{tenant=\"live\"} 2\n"
    );
    // Its place under the limit is free: a new tenant gets a real series.
    family.with(&["new"], Counter::inc).unwrap();
    let text = registry.encode(Format::PrometheusText);
    assert!(
        text.contains("tenant_calls_total{tenant=\"new\"} 1\n"),
        "{text}"
    );
    assert!(!text.contains("otel_metric_overflow"), "{text}");
    // Seen again, the expired one starts over at zero.
    family.with(&["old"], Counter::inc).unwrap();
    family.with(&["old"], Counter::inc).unwrap();
    assert_eq!(family.with(&["old"], Counter::get).unwrap(), 2.0);
}
