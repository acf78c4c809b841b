//! `#[health_check]` functions and the default checks, through the global
//! registry and `cortex::http::serve`.

use std::time::Duration;

use cortex::health::{global, Health, Status};
use cortex_tests::raw;

#[cortex::health_check(group = "readiness")]
async fn database() -> Health {
    Health::up().with_detail("pool", 8)
}

#[cortex::health_check(name = "disk", critical = false, timeout = "2s")]
fn disk_writable() -> Result<(), std::io::Error> {
    Err(std::io::Error::other("read-only file system"))
}

#[cortex::health_check(group = "liveness", timeout = "100ms")]
async fn event_loop() -> bool {
    tokio::time::sleep(Duration::from_secs(10)).await;
    true
}

#[cortex::health_check(group = "liveness")]
fn sync_panics() -> bool {
    panic!("sync check bug")
}

// Named like the locals an expansion could bind: the check is still this
// function, not a recursion into itself.
#[cortex::health_check(group = "readiness")]
fn check() -> bool {
    true
}

#[cortex::health_check(group = "readiness")]
async fn run() -> Health {
    Health::up().with_detail("ran", true)
}

#[test]
fn annotated_checks_and_defaults_are_registered() {
    let names = global().names();
    for expected in [
        "check",
        "run",
        "database",
        "disk",
        "event_loop",
        "memory",
        "sync_panics",
        "uptime",
    ] {
        assert!(
            names.contains(&expected.to_string()),
            "{expected} missing from {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_over_http_with_every_check() {
    let server = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();

    let all = raw::get(addr, "/health", &[]).await;
    let body: serde_json::Value = serde_json::from_str(&all.body).unwrap();
    // A liveness check times out and one panics: DOWN, 503.
    assert_eq!(all.status, 503, "{body}");
    assert_eq!(body["components"]["database"]["details"]["pool"], 8);
    assert_eq!(body["components"]["check"]["status"], "UP", "{body}");
    assert_eq!(body["components"]["run"]["details"]["ran"], true, "{body}");
    assert_eq!(body["components"]["disk"]["status"], "DOWN");
    assert_eq!(
        body["components"]["disk"]["details"]["error"],
        "read-only file system"
    );
    assert_eq!(
        body["components"]["event_loop"]["details"]["error"],
        "timed out after 100ms"
    );
    assert_eq!(
        body["components"]["sync_panics"]["details"]["error"],
        "panicked: sync check bug"
    );
    assert!(
        body["components"]["memory"]["details"]["resident_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        body["components"]["uptime"]["details"]["start_time_seconds"]
            .as_u64()
            .unwrap()
            > 1_700_000_000
    );

    // Readiness: the database (UP), the non-critical disk (DOWN: so
    // DEGRADED) and memory.
    let ready = raw::get(addr, "/health/ready", &[]).await;
    let body: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(ready.status, 200, "{body}");
    assert_eq!(body["status"], "DEGRADED");
    assert!(body["components"].get("event_loop").is_none());
    server.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn default_checks() {
    let memory = cortex::health::checks::memory(Some(u64::MAX));
    assert_eq!(memory.status(), Status::Up);
    assert!(memory.details()["resident_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        cortex::health::checks::memory(Some(1024)).status(),
        Status::Degraded
    );
    assert_eq!(cortex::health::checks::uptime().status(), Status::Up);
}

/// The values a check returns and what each means on the wire: status
/// names, HTTP codes, the conversions from `bool` and `Result`, and which
/// probes a group answers.
#[test]
fn statuses_conversions_and_groups_mean_what_they_say() {
    use cortex::health::{Group, Health, IntoHealth, Status};
    let all = [
        (Status::Unknown, Health::unknown(), "UNKNOWN", 200),
        (Status::Up, Health::up(), "UP", 200),
        (Status::Degraded, Health::degraded(), "DEGRADED", 200),
        (
            Status::OutOfService,
            Health::out_of_service(),
            "OUT_OF_SERVICE",
            503,
        ),
        (Status::Down, Health::down(), "DOWN", 503),
    ];
    for (status, health, name, code) in all {
        assert_eq!(health.status(), status);
        assert_eq!(health, Health::new(status));
        assert_eq!((status.as_str(), status.to_string().as_str()), (name, name));
        assert_eq!(status.http_status(), code, "{name}");
    }
    // Worse is greater: the worst critical check decides.
    assert!(Status::Down > Status::OutOfService && Status::OutOfService > Status::Degraded);
    assert!(Status::Degraded > Status::Up && Status::Up > Status::Unknown);

    let detailed = Health::degraded()
        .with_detail("lag_ms", 250)
        .with_detail("primary", "db-1");
    assert_eq!(
        serde_json::Value::Object(detailed.details().clone()).to_string(),
        r#"{"lag_ms":250,"primary":"db-1"}"#
    );
    assert_eq!(true.into_health(), Health::up());
    assert_eq!(false.into_health(), Health::down());
    assert_eq!(Ok::<(), String>(()).into_health(), Health::up());
    assert_eq!(
        Err::<(), _>("connection refused").into_health(),
        Health::down().with_detail("error", "connection refused")
    );
    assert_eq!(Health::up().into_health(), Health::up());

    for (group, name, live, ready) in [
        (Group::Liveness, "liveness", true, false),
        (Group::Readiness, "readiness", false, true),
        (Group::Both, "both", true, true),
    ] {
        assert_eq!(group.as_str(), name);
        assert_eq!(group.includes(Group::Liveness), live, "{name}");
        assert_eq!(group.includes(Group::Readiness), ready, "{name}");
        assert!(group.includes(Group::Both), "/health asks every group");
    }
}
