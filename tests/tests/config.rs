//! `cortex::config`: overrides from a file and the environment over the
//! compiled values, checked by the attributes' rules, with places in every
//! error, suggestions for typos, strict and lenient modes, and reloads that
//! apply all or nothing.
//!
//! One configuration per process: every test here loads under one lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cortex::config::{Mode, Options};
use cortex::resilience::{
    CircuitBreaker, CircuitBreakerConfig, Retry, RetryConfig, Timeout, Window,
};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn breaker(name: &str) -> CircuitBreaker {
    CircuitBreaker::new(name, CircuitBreakerConfig::default()).unwrap()
}

/// An attribute-made instance is configured like a hand-made one.
#[cortex::retry(name = "cfg-annotated", max = 2, delay = "10ms")]
async fn annotated() -> Result<(), cortex::resilience::Error> {
    Ok(())
}

#[test]
fn file_then_environment_over_the_compiled_values() {
    let _one = serial();
    let b = breaker("cfg-payments");
    let _ = annotated;
    let file = "\
[circuit_breaker.cfg-payments]
failure_rate = 60
open_for = \"30s\"

[retry.cfg-annotated]
max = 4
";
    let report = Options::new()
        .text("cortex.toml", file)
        .vars([
            ("CORTEX_CIRCUIT_BREAKER__CFG_PAYMENTS__FAILURE_RATE", "70"),
            ("CORTEX_CIRCUIT_BREAKER__CFG_PAYMENTS__WINDOW", "60s"),
        ])
        .load()
        .unwrap();
    let c = b.config();
    assert_eq!(c.failure_rate, 70, "the environment wins over the file");
    assert_eq!(
        c.open_for,
        Duration::from_secs(30),
        "the file wins over the compiled value"
    );
    assert_eq!(c.window, Window::Time(Duration::from_secs(60)));
    assert_eq!(c.half_open_calls, 10, "what nothing set stays compiled");
    assert_eq!(
        cortex::resilience::retry("cfg-annotated")
            .unwrap()
            .config()
            .max,
        4
    );
    let changes: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        [
            "circuit_breaker.cfg-payments.failure_rate = 70 (CORTEX_CIRCUIT_BREAKER__CFG_PAYMENTS__FAILURE_RATE)",
            "circuit_breaker.cfg-payments.window = \"1m\" (CORTEX_CIRCUIT_BREAKER__CFG_PAYMENTS__WINDOW)",
            "circuit_breaker.cfg-payments.open_for = \"30s\" (cortex.toml:3:12)",
            "retry.cfg-annotated.max = 4 (cortex.toml:6:7)",
        ]
    );
    let json: serde_json::Value = serde_json::from_str(&cortex::config::to_json()).unwrap();
    let view = &json["circuit_breaker"]["cfg-payments"];
    assert_eq!(
        view["failure_rate"].to_string(),
        r#"{"value":70,"source":"CORTEX_CIRCUIT_BREAKER__CFG_PAYMENTS__FAILURE_RATE"}"#
    );
    assert_eq!(
        view["open_for"].to_string(),
        r#"{"value":"30s","source":"cortex.toml:3:12"}"#
    );
    assert_eq!(
        view["minimum_calls"].to_string(),
        r#"{"value":100,"source":"compiled"}"#
    );
    assert_eq!(
        view["slow_call_threshold"].to_string(),
        r#"{"value":null,"source":"compiled"}"#
    );

    // Loading without those settings puts the compiled values back.
    let report = Options::new().load().unwrap();
    assert_eq!(b.config(), CircuitBreakerConfig::default());
    assert_eq!(
        cortex::resilience::retry("cfg-annotated")
            .unwrap()
            .config()
            .max,
        2
    );
    assert!(report
        .changes
        .iter()
        .any(|c| c.to_string() == "retry.cfg-annotated.max = 2 (compiled)"));
}

#[test]
fn every_rule_is_refused_with_its_place_and_nothing_changes() {
    let _one = serial();
    let b = breaker("cfg-rules");
    let r = Retry::new("cfg-rules", RetryConfig::default()).unwrap();
    let file = "\
[circuit_breaker.cfg-rules]
failure_rate = 150
window = 10
minimum_calls = 20
half_open_calls = 1
open_for = \"soon\"

[retry.cfg-rules]
jitter = 2.5
";
    let err = Options::new()
        .text("cortex.toml", file)
        .vars([("CORTEX_RETRY__CFG_RULES__MAX", "0")])
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cortex.toml:6:12: circuit_breaker.cfg-rules.open_for: duration \"soon\" has no number; write a whole number and a unit, like \"250ms\", \"2s\", \"1m\" or \"1h\"\n\
         CORTEX_RETRY__CFG_RULES__MAX: retry.cfg-rules.max: must be at least 1 (it counts the first attempt)\n\
         cortex.toml:9:10: retry.cfg-rules.jitter: 2.5 is outside 0..=1: jitter is the share of each delay to randomise, like `jitter = 0.2` for +-20 %"
    );
    assert_eq!(
        b.config(),
        CircuitBreakerConfig::default(),
        "nothing was applied"
    );
    assert_eq!(r.config(), RetryConfig::default());

    // Without the bad duration, the breaker's own rules speak, each on
    // the value that broke it (a rule between two keys on the one set).
    let file = "\
[circuit_breaker.cfg-rules]
failure_rate = 150
window = 10
";
    let err = Options::new().text("cortex.toml", file).load().unwrap_err();
    assert_eq!(
        err.to_string(),
        "cortex.toml:2:16: circuit_breaker.cfg-rules.failure_rate: 150 is outside 1..=100 (a percentage, like `failure_rate = 50`)\n\
         cortex.toml:3:10: circuit_breaker.cfg-rules.minimum_calls: 100 is more than the window holds (10 calls), so the breaker could never open"
    );
    Timeout::new("cfg-rules", Duration::from_secs(1)).unwrap();
    let err = Options::new()
        .text(
            "cortex.toml",
            "[timeout.cfg-rules]\nafter = 5\n[server]\nmax_header_bytes = 100\n",
        )
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cortex.toml:2:9: timeout.cfg-rules.after: expects a duration like `after = \"250ms\"`, not the integer 5\n\
         cortex.toml:4:20: server.max_header_bytes: 100 is below 8192, the least `max_header_bytes` can be"
    );
    assert_eq!(b.config(), CircuitBreakerConfig::default());
}

#[test]
fn unknown_names_are_errors_that_suggest_the_nearest() {
    let _one = serial();
    breaker("cfg-inventory");
    let file = "\
[circuit_breaker.cfg-inventroy]
failure_rate = 60

[circuit_breaker.cfg-inventory]
failure_rat = 60
record_if = \"is_transient\"

[circuit_breker.cfg-inventory]
open_for = \"1s\"

[traces]
sampler_ration = 0.5
";
    let err = Options::new()
        .text("cortex.toml", file)
        .vars([
            ("CORTEX_CIRCUT_BREAKER__CFG_INVENTORY__OPEN_FOR", "1s"),
            ("CORTEX_SERVER_MAX_CONECTIONS", "5"),
        ])
        .load()
        .unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "cortex.toml:8:2: circuit_breker: unknown section `circuit_breker`; did you mean `circuit_breaker`?",
            "CORTEX_CIRCUT_BREAKER__CFG_INVENTORY__OPEN_FOR: unknown variable: `circut_breaker` is not a section; did you mean `circuit_breaker` (CORTEX_CIRCUIT_BREAKER__..)?",
            "cortex.toml:2:16: circuit_breaker.cfg-inventroy: no circuit breaker is named `cfg-inventroy`; did you mean `cfg-inventory`?",
            "cortex.toml:5:15: circuit_breaker.cfg-inventory.failure_rat: unknown key `failure_rat`; did you mean `failure_rate`?",
            "cortex.toml:6:13: circuit_breaker.cfg-inventory.record_if: `record_if` names code, so only the attribute can set it",
            "cortex.toml:12:18: traces.sampler_ration: unknown key `sampler_ration`; did you mean `sampler_ratio`?",
            "CORTEX_SERVER_MAX_CONECTIONS: server.max_conections: unknown key `max_conections`; did you mean `max_connections`?",
        ]
    );
}

#[test]
fn lenient_keeps_the_compiled_values_strict_refuses() {
    let _one = serial();
    let b = breaker("cfg-lenient");
    let bad = "[circuit_breaker.cfg-lenient]\nfailure_rate = 0\nopen_for = \"5s\"\n";
    let report = Options::new()
        .text("cortex.toml", bad)
        .mode(Mode::Lenient)
        .load()
        .unwrap();
    assert!(report.changes.is_empty());
    assert_eq!(
        report.refused.unwrap().to_string(),
        "cortex.toml:2:16: circuit_breaker.cfg-lenient.failure_rate: 0 is outside 1..=100 (a percentage, like `failure_rate = 50`)"
    );
    assert_eq!(
        b.config(),
        CircuitBreakerConfig::default(),
        "not even open_for"
    );
    // The mode from the environment.
    let refused = Options::new()
        .text("cortex.toml", bad)
        .vars([("CORTEX_CONFIG_MODE", "strict")])
        .load();
    assert!(refused.is_err());
    let unknown = Options::new()
        .vars([("CORTEX_CONFIG_MODE", "relaxed")])
        .load()
        .unwrap_err();
    assert_eq!(
        unknown.to_string(),
        "CORTEX_CONFIG_MODE: unknown mode `relaxed`; the modes are strict and lenient"
    );
}

#[test]
fn health_checks_traces_and_the_server_are_configured_too() {
    let _one = serial();
    let health = cortex::health::global();
    health.register(
        "cfg-db",
        cortex::health::CheckOptions::default(),
        || async { cortex::health::Health::up() },
    );
    let file = "\
[health]
cache = \"2s\"
[health.cfg-db]
timeout = \"250ms\"
group = \"liveness\"
critical = false

[traces]
sampler_ratio = 0.25
";
    Options::new()
        .text("cortex.toml", file)
        .vars([("CORTEX_SERVER_MAX_BODY_BYTES", "1024")])
        .load()
        .unwrap();
    let options = health.check_options("cfg-db").unwrap();
    assert_eq!(options.time_limit(), Duration::from_millis(250));
    assert_eq!(options.probe_group(), cortex::health::Group::Liveness);
    assert!(!options.is_critical());
    assert_eq!(health.cached_for(), Duration::from_secs(2));
    let json: serde_json::Value = serde_json::from_str(&cortex::config::to_json()).unwrap();
    assert_eq!(
        json["traces"].to_string(),
        r#"{"sampler_ratio":{"value":0.25,"source":"cortex.toml:9:17"}}"#
    );
    assert_eq!(
        json["server"].to_string(),
        r#"{"max_body_bytes":{"value":1024,"source":"CORTEX_SERVER_MAX_BODY_BYTES"}}"#
    );
    assert_eq!(
        json["health"]["checks"]["cfg-db"]["group"].to_string(),
        r#"{"value":"liveness","source":"cortex.toml:5:9"}"#
    );

    // A server that loads the configuration takes `[server]` over its own
    // limits: a 2 KiB body is now too large.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = cortex::http::Server::new()
            .route(
                cortex::http::Method::POST,
                "/cfg-echo",
                |r: cortex::http::Request| async move { r.body().len().to_string() },
            )
            .unwrap()
            .load_config(true)
            .bind("127.0.0.1:0")
            .await
            .unwrap();
        let at = server.local_addr();
        let big = "x".repeat(2048);
        let r = cortex_tests::raw::request(at, "POST", "/cfg-echo", &[], &big).await;
        assert_eq!(r.status, 413);
        let r = cortex_tests::raw::request(at, "POST", "/cfg-echo", &[], &big[..512]).await;
        assert_eq!((r.status, r.body.as_str()), (200, "512"));
        server.shutdown(Duration::from_secs(1)).await;
    });

    Options::new().load().unwrap();
    assert_eq!(
        health.check_options("cfg-db").unwrap(),
        cortex::health::CheckOptions::default()
    );
    assert_eq!(health.cached_for(), Duration::ZERO);
}

/// A reload validates the whole new configuration first: one bad value and
/// not even the good ones apply, while calls go on on other threads; each
/// instance then switches at once.
#[test]
fn reload_is_all_or_nothing_under_concurrent_calls() {
    let _one = serial();
    let b = CircuitBreaker::new(
        "cfg-reload",
        CircuitBreakerConfig {
            minimum_calls: 10,
            window: Window::Count(10),
            ..Default::default()
        },
    )
    .unwrap();
    let r = Retry::new("cfg-reload", RetryConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("cortex-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cortex.toml");
    let write = |text: &str| std::fs::write(&path, text).unwrap();
    write("[circuit_breaker.cfg-reload]\nfailure_rate = 40\n[retry.cfg-reload]\nmax = 5\n");
    Options::new().file(&path).load().unwrap();
    assert_eq!((b.config().failure_rate, r.config().max), (40, 5));

    let stop = Arc::new(AtomicBool::new(false));
    let seen_bad = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (b, r) = (b.clone(), r.clone());
            let (stop, seen_bad, calls) = (stop.clone(), seen_bad.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(p) = b.acquire() {
                        p.success();
                    }
                    let (rate, max) = (b.config().failure_rate, r.config().max);
                    // Only the configurations applied as a whole.
                    if !matches!((rate, max), (40, 5) | (40, _) | (70, _)) || max == 9 {
                        seen_bad.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while calls.load(Ordering::Relaxed) < 1000 {
        std::thread::yield_now();
    }
    // A good retry value beside a bad breaker value: neither applies.
    write("[circuit_breaker.cfg-reload]\nfailure_rate = 400\n[retry.cfg-reload]\nmax = 9\n");
    let refused = cortex::config::reload().unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!("{}:2:16: circuit_breaker.cfg-reload.failure_rate: 400 is out of range for `failure_rate`", path.display())
    );
    assert_eq!((b.config().failure_rate, r.config().max), (40, 5));
    // A good one applies whole; the retry's override is gone, so it goes
    // back to its compiled value.
    write("[circuit_breaker.cfg-reload]\nfailure_rate = 70\n");
    let report = cortex::config::reload().unwrap();
    assert_eq!(
        report
            .changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            format!(
                "circuit_breaker.cfg-reload.failure_rate = 70 ({}:2:16)",
                path.display()
            ),
            "retry.cfg-reload.max = 3 (compiled)".to_owned(),
        ]
    );
    let before = calls.load(Ordering::Relaxed);
    while calls.load(Ordering::Relaxed) < before + 1000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(seen_bad.load(Ordering::Relaxed), 0);
    assert_eq!((b.config().failure_rate, r.config().max), (70, 3));
    assert_eq!(
        b.state(),
        cortex::resilience::State::Closed,
        "the state is kept"
    );

    // SIGHUP reloads too.
    write("[circuit_breaker.cfg-reload]\nfailure_rate = 55\n");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert!(cortex::config::reload_on_sighup());
        // SAFETY: raising a signal the process now handles.
        unsafe { libc::raise(libc::SIGHUP) };
        for _ in 0..200 {
            if b.config().failure_rate == 55 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(b.config().failure_rate, 55);
    Options::new().load().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

/// Every rule of every policy kind, broken from a file: the error is the
/// rule's own message (the one the attribute gives at compile time), at
/// the value's line and column, naming the setting.
#[test]
fn every_policy_rule_is_reached_and_placed() {
    use cortex::resilience::{Bulkhead, BulkheadConfig, RateLimiter, RateLimiterConfig};
    use cortex_rules::config::{self as rules, Value};
    let _one = serial();
    breaker("cfg-every");
    Retry::new("cfg-every", RetryConfig::default()).unwrap();
    Bulkhead::new("cfg-every", BulkheadConfig::default()).unwrap();
    RateLimiter::new("cfg-every", RateLimiterConfig::default()).unwrap();
    Timeout::new("cfg-every", Duration::from_secs(1)).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("circuit_breaker", "failure_rate", "0"),
        ("circuit_breaker", "slow_call_rate", "101"),
        ("circuit_breaker", "slow_call_threshold", "\"0ms\""),
        ("circuit_breaker", "minimum_calls", "0"),
        ("circuit_breaker", "minimum_calls", "101"),
        ("circuit_breaker", "window", "0"),
        ("circuit_breaker", "window", "2000000"),
        ("circuit_breaker", "window", "\"500ms\""),
        ("circuit_breaker", "window", "\"2h\""),
        ("circuit_breaker", "open_for", "\"0s\""),
        ("circuit_breaker", "half_open_calls", "0"),
        ("circuit_breaker", "half_open_calls", "5000"),
        ("circuit_breaker", "health", "\"sick\""),
        ("circuit_breaker", "automatic_half_open", "\"yes\""),
        ("circuit_breaker", "max_wait_in_half_open", "\"0s\""),
        ("circuit_breaker", "open_for_multiplier", "1.0"),
        ("circuit_breaker", "max_open_for", "\"1s\""),
        ("retry", "max", "0"),
        ("retry", "delay", "\"0s\""),
        ("retry", "multiplier", "0.5"),
        ("retry", "max_delay", "\"1ms\""),
        ("retry", "jitter", "-0.5"),
        ("retry", "jitter", "\"wild\""),
        ("retry", "budget", "2.0"),
        ("retry", "max_elapsed", "\"0s\""),
        ("bulkhead", "max_concurrent", "0"),
        ("bulkhead", "fair", "1"),
        ("rate_limiter", "permits", "0"),
        ("rate_limiter", "period", "\"0s\""),
        ("rate_limiter", "permits", "4000000000"),
        ("timeout", "after", "\"0s\""),
    ];
    for (section, key, value) in cases {
        let text = format!("[{section}.cfg-every]\n{key} = {value}\n");
        let err = Options::new()
            .text("cortex.toml", &text)
            .load()
            .unwrap_err();
        // What the rules say of that one value over the compiled config.
        let v = if let Some(s) = value.strip_prefix('"') {
            Value::Str(s.trim_end_matches('"'))
        } else if value.contains('.') {
            Value::Float(value.parse().unwrap())
        } else {
            Value::Int(value.parse().unwrap())
        };
        let expected = match *section {
            "circuit_breaker" => judge(rules::set_breaker, CircuitBreakerConfig::problems, key, &v),
            "retry" => judge(rules::set_retry, RetryConfig::problems, key, &v),
            "bulkhead" => judge(rules::set_bulkhead, BulkheadConfig::problems, key, &v),
            "rate_limiter" => judge(
                rules::set_rate_limiter,
                RateLimiterConfig::problems,
                key,
                &v,
            ),
            _ => judge(
                rules::set_timeout,
                |d: &Duration| {
                    cortex_rules::resilience::check_timeout(*d)
                        .err()
                        .into_iter()
                        .collect()
                },
                key,
                &v,
            ),
        }
        .unwrap_or_else(|| panic!("{section}.{key} = {value} breaks no rule"));
        // A rule's problem names its own key (`minimum_calls` for a window
        // too small for it); a setter's error is the key's.
        let (rule_key, message) = match expected.split_once('\u{1}') {
            Some((k, m)) => (k.to_owned(), m.to_owned()),
            None => ((*key).to_owned(), expected.clone()),
        };
        let column = key.len() + 4;
        assert_eq!(
            err.to_string(),
            format!("cortex.toml:2:{column}: {section}.cfg-every.{rule_key}: {message}"),
            "{section}.{key} = {value}"
        );
    }
}

/// What the rules say of one value set over a default configuration: the
/// setter's error, or the first rule it breaks as `key\u{1}message`.
fn judge<C: Default>(
    set: fn(&mut C, &str, &cortex_rules::config::Value<'_>) -> Result<(), String>,
    problems: impl Fn(&C) -> Vec<cortex_rules::resilience::ConfigError>,
    key: &str,
    value: &cortex_rules::config::Value<'_>,
) -> Option<String> {
    let mut c = C::default();
    set(&mut c, key, value).err().or_else(|| {
        problems(&c)
            .into_iter()
            .next()
            .map(|e| format!("{}\u{1}{}", e.key, e.message))
    })
}

#[test]
fn unreadable_and_malformed_files_are_refused_with_their_place() {
    let _one = serial();
    let err = Options::new()
        .file("/nonexistent/cortex.toml")
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/cortex.toml: cannot read the configuration file: No such file or directory (os error 2)"
    );
    let err = Options::new()
        .text("cortex.toml", "[circuit_breaker.x]\nfailure_rate = = 3\n")
        .load()
        .unwrap_err();
    assert!(err.to_string().starts_with("cortex.toml:2:"), "{err}");
    assert!(err.to_string().contains(": not valid TOML: "), "{err}");
    let err = Options::new()
        .text(
            "cortex.toml",
            "retry = 3\n[server]\nidle_timeout = [1, 2]\n",
        )
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cortex.toml:1:9: retry: must be a table: `[retry]`\n\
         cortex.toml:3:16: server.idle_timeout: expects a duration like `idle_timeout = \"250ms\"`, not an array"
    );
}

/// `traces.sampler_ratio` decides every tracer's root spans (children
/// follow their parent), and removing it gives the tracer's own sampler
/// back.
#[test]
fn the_sampler_ratio_decides_root_spans() {
    let _one = serial();
    let tracer = cortex::trace::Tracer::builder()
        .sampler(cortex::trace::Sampler::AlwaysOn)
        .build();
    let sampled = |n: usize| {
        (0..n)
            .filter(|_| tracer.start("root").is_recording())
            .count()
    };
    assert_eq!(sampled(100), 100);
    Options::new()
        .vars([("CORTEX_TRACES_SAMPLER_RATIO", "0")])
        .load()
        .unwrap();
    assert_eq!(sampled(100), 0);
    Options::new()
        .vars([("CORTEX_TRACES_SAMPLER_RATIO", "0.5")])
        .load()
        .unwrap();
    let half = sampled(2000);
    assert!((800..1200).contains(&half), "{half} of 2000");
    Options::new().load().unwrap();
    assert_eq!(sampled(100), 100);
}

/// Every `[server]` key and the health registry's own keys, with the
/// value the configuration shows for each (typed, whatever wrote it), and
/// the mistakes each can make.
#[test]
fn every_server_and_health_key_is_read_and_shown() {
    let _one = serial();
    let file = "\
[server]
header_read_timeout = \"5s\"
idle_timeout = \"30s\"
body_read_timeout = \"20s\"
request_timeout = \"none\"
max_header_bytes = 16384
max_buffered_body_bytes = 1048576
at_connection_limit = \"close\"
http2_max_concurrent_streams = 50
http2_keep_alive_interval = \"10s\"
http2_keep_alive_timeout = \"5s\"

[health]
probe_deadline = \"500ms\"
";
    Options::new()
        .text("cortex.toml", file)
        .vars([("CORTEX_SERVER_MAX_CONNECTIONS", "500")])
        .load()
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&cortex::config::to_json()).unwrap();
    let shown: Vec<String> = json["server"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v["value"]))
        .collect();
    assert_eq!(
        shown,
        [
            "header_read_timeout=\"5s\"",
            "idle_timeout=\"30s\"",
            "body_read_timeout=\"20s\"",
            "request_timeout=null",
            "max_header_bytes=16384",
            "max_buffered_body_bytes=1048576",
            "at_connection_limit=\"close\"",
            "http2_max_concurrent_streams=50",
            "http2_keep_alive_interval=\"10s\"",
            "http2_keep_alive_timeout=\"5s\"",
            "max_connections=500",
        ]
    );
    assert_eq!(
        json["health"]["probe_deadline"].to_string(),
        r#"{"value":"500ms","source":"cortex.toml:14:18"}"#
    );
    assert_eq!(
        cortex::health::global().deadline(),
        Duration::from_millis(500)
    );
    // A reload that changes a server limit says it waits for a restart.
    let report = Options::new()
        .vars([("CORTEX_SERVER_IDLE_TIMEOUT", "1m")])
        .load()
        .unwrap();
    assert_eq!(
        report
            .restart_needed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["server.idle_timeout = \"1m\" (CORTEX_SERVER_IDLE_TIMEOUT)"]
    );
    assert!(report
        .changes
        .iter()
        .any(|c| c.to_string() == "health.probe_deadline = \"800ms\" (compiled)"));

    let bad = "\
[server]
at_connection_limit = \"queue\"
http2_max_concurrent_streams = 0
request_timeout = 5
[health]
cache = \"-1s\"
colour = \"red\"
[health.cfg-dbx]
timeout = \"1s\"
";
    cortex::health::global().register(
        "cfg-db",
        cortex::health::CheckOptions::default(),
        || async { cortex::health::Health::up() },
    );
    let err = Options::new()
        .text("cortex.toml", bad)
        .vars([
            ("CORTEX_SERVER__X__IDLE_TIMEOUT", "1s"),
            ("CORTEX_RETRY__ONLY_KEY", "1"),
        ])
        .load()
        .unwrap_err();
    let lines: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "CORTEX_RETRY__ONLY_KEY: retry: a retry setting names its instance: CORTEX_RETRY__<NAME>__<KEY>",
            "cortex.toml:9:11: health.cfg-dbx: no health check is named `cfg-dbx`; did you mean `cfg-db`?",
            "cortex.toml:6:9: health.cache: duration \"-1s\" has no number; write a whole number and a unit, like \"250ms\", \"2s\", \"1m\" or \"1h\"",
            "cortex.toml:7:10: health.colour: unknown key `colour`; the keys are cache, probe_deadline",
            "cortex.toml:2:23: server.at_connection_limit: unknown `queue`; a server at its limit does \"wait\" or \"close\"",
            "cortex.toml:3:32: server.http2_max_concurrent_streams: 0 is below 1, the least `http2_max_concurrent_streams` can be",
            "cortex.toml:4:19: server.request_timeout: expects a duration like `request_timeout = \"250ms\"`, not the integer 5",
            "CORTEX_SERVER__X__IDLE_TIMEOUT: server.idle_timeout: server settings name no instance: CORTEX_SERVER_<KEY>",
        ]
    );
    Options::new().load().unwrap();
}
