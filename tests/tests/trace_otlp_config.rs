//! Configuring the OTLP exporter: IPv6 endpoints, headers, resource
//! attributes and batch settings from the OpenTelemetry variables, one
//! deadline per request, and `Retry-After` as an HTTP date.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};

use cortex::trace::{
    ConfigError, ExportError, InMemoryExporter, OtlpExporter, OtlpOptions, SpanExporter, Tracer,
};
use cortex_tests::receiver::Receiver;
use cortex_tests::spans::one_span;
use cortex_tests::{otlp_validate, vars, Verdict};

#[test]
fn ipv6_endpoints_are_parsed_and_reached() {
    assert_eq!(
        OtlpOptions::new("http://[::1]:4318").unwrap().url(),
        "http://[::1]:4318/v1/traces"
    );
    assert_eq!(
        OtlpOptions::new("http://[2001:db8::7]/otel").unwrap().url(),
        "http://[2001:db8::7]:80/otel/v1/traces"
    );
    for bad in [
        "http://::1:4318",
        "http://[::1",
        "http://[nothex]:1",
        "http://[::1]x",
    ] {
        match OtlpOptions::new(bad) {
            Err(ConfigError::Invalid(why)) => assert!(why.starts_with(bad), "{why}"),
            other => panic!("accepted {bad}: {other:?}"),
        }
    }
    let Ok(received) = Receiver::replying("[::1]:0", Vec::new()) else {
        eprintln!("no IPv6 loopback here; only the parsing was checked");
        return;
    };
    let mut e = OtlpExporter::new(
        OtlpOptions::new(&format!("http://[::1]:{}", received.addr.port())).unwrap(),
    );
    e.export(&one_span()).unwrap();
    let got = received.requests();
    assert_eq!(got.len(), 1);
    let host = format!("host: [::1]:{}", received.addr.port());
    assert!(
        got[0].head.to_ascii_lowercase().contains(&host),
        "{}",
        got[0].head
    );
}

#[test]
fn headers_and_resource_attributes_come_from_the_variables() {
    let received = Receiver::replying("127.0.0.1:0", Vec::new()).unwrap();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", received.url()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret%20value, x-tenant=acme".into()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-resource,service.version=1.2.3,deployment.environment.name=prod%2Ceu".into(),
        ),
        ("OTEL_SERVICE_NAME", "checkout".into()),
    ];
    let tracer = Tracer::builder().from_vars(vars(&env)).unwrap().build();
    tracer.start("work").end();
    assert!(tracer.force_flush());
    let got = received.requests();
    assert_eq!(got.len(), 1);
    let head = got[0].head.to_ascii_lowercase();
    assert!(head.contains("\r\napi-key: secret value\r\n"), "{head}");
    assert!(head.contains("\r\nx-tenant: acme"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    let resource: Vec<(String, String)> = json["resourceSpans"][0]["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["key"].as_str().unwrap().to_owned(),
                a["value"]["stringValue"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("service.name", "checkout"),
        ("telemetry.sdk.language", "rust"),
        ("telemetry.sdk.name", "cortex"),
        ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ("service.version", "1.2.3"),
        ("deployment.environment.name", "prod,eu"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        resource, expected,
        "OTEL_SERVICE_NAME wins over the resource's"
    );
    match otlp_validate(&[got[0].body.clone()]) {
        Verdict::Accepted | Verdict::Unavailable => {}
        Verdict::Refused(why) => panic!("otlp_validate refused the body: {why}"),
    }
}

#[test]
fn bad_variables_are_named() {
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "k=%zz"),
        ("OTEL_RESOURCE_ATTRIBUTES", "=value"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-5"),
        ("OTEL_BSP_EXPORT_TIMEOUT", "1.5"),
    ] {
        let env = [(variable, value.to_owned())];
        match Tracer::builder().from_vars(vars(&env)) {
            Err(ConfigError::BadVariable {
                variable: v,
                value: got,
                ..
            }) => {
                assert_eq!((v, got.as_str()), (variable, value));
            }
            other => panic!("{variable}={value} accepted: {:?}", other.err()),
        }
    }
}

#[test]
fn the_batch_variables_set_the_batches() {
    let memory = InMemoryExporter::default();
    let env = [
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "3600000".to_owned()),
    ];
    let tracer = Tracer::builder()
        .exporter(memory.clone())
        .from_vars(vars(&env))
        .unwrap()
        .build();
    for i in 0..10 {
        tracer.start(format!("span {i}")).end();
    }
    assert!(tracer.force_flush());
    let sizes = memory.batch_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 10);
    assert!(sizes.iter().all(|&n| n <= 3), "{sizes:?}");
}

/// A receiver that answers one byte every 100 ms, forever.
fn trickling() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                for b in b"HTTP/1.1 200 OK\r\n".iter().cycle() {
                    if stream.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
    });
    addr
}

#[test]
fn a_receiver_that_trickles_its_answer_hits_one_overall_deadline() {
    let addr = trickling();
    let mut e = OtlpExporter::new(
        OtlpOptions::new(&format!("http://{addr}"))
            .unwrap()
            .timeout(Duration::from_millis(500))
            .export_timeout(Duration::from_millis(1200))
            .retries(10, Duration::from_millis(1), Duration::from_millis(1)),
    );
    let started = Instant::now();
    let err = e.export(&one_span()).unwrap_err();
    let took = started.elapsed();
    // Each request gives up at 500 ms though bytes keep coming (a read
    // timeout alone would wait forever), and the export at 1.2 s: two or
    // three attempts, not ten.
    match err {
        ExportError::GaveUp { attempts, .. } => assert!((2..=3).contains(&attempts), "{attempts}"),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

fn http_date(at: SystemTime) -> String {
    // Formats with the same rules the exporter parses: IMF-fixdate.
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Civil from days (Howard Hinnant).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {d:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        months[month as usize - 1]
    )
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let date = http_date(SystemTime::now() + Duration::from_secs(2));
    let reply = format!(
        "HTTP/1.1 503 Busy\r\nRetry-After: {date}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let received = Receiver::replying("127.0.0.1:0", vec![reply]).unwrap();
    let mut e = OtlpExporter::new(OtlpOptions::new(&received.url()).unwrap().retries(
        3,
        Duration::from_millis(1),
        Duration::from_secs(10),
    ));
    let started = Instant::now();
    e.export(&one_span()).unwrap();
    assert_eq!(received.requests().len(), 2);
    // The date is 2 s ahead, to the second: at least one whole second
    // waited, where the backoff alone would have waited 1 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}
