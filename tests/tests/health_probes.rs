//! Probes as Kubernetes means them: where checks go by default, the probe
//! deadline, a hanging sync check that holds one thread, and details hidden
//! on an application port.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cortex::health::{global, CheckOptions, Group, Health, HealthRegistry, ShowDetails, Status};
use cortex::http::{Admin, Server};
use cortex::metrics::Registry;
use cortex_tests::raw;

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

#[cortex::health_check]
async fn no_group_given() -> bool {
    true
}

static HANG: AtomicBool = AtomicBool::new(true);
static HANG_STARTS: AtomicUsize = AtomicUsize::new(0);

#[cortex::health_check(group = "liveness", timeout = "100ms")]
fn hangs_while_told() -> bool {
    HANG_STARTS.fetch_add(1, Ordering::SeqCst);
    while HANG.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[tokio::test]
async fn checks_without_a_group_and_memory_are_readiness_only() {
    let live = global().check(Some(Group::Liveness)).await;
    let ready = global().check(Some(Group::Readiness)).await;
    for name in ["no_group_given", "memory"] {
        assert!(live.component(name).is_none(), "{name} is not liveness");
        assert!(ready.component(name).is_some(), "{name} is readiness");
    }
    assert!(live.component("uptime").is_some());
    assert!(ready.component("uptime").is_none());

    // The same for checks registered by hand.
    let registry = HealthRegistry::new();
    registry.register("db", CheckOptions::default(), || async { Health::down() });
    assert_eq!(
        registry.check(Some(Group::Liveness)).await.http_status(),
        200
    );
    assert_eq!(
        registry.check(Some(Group::Readiness)).await.http_status(),
        503
    );
}

#[tokio::test]
async fn the_probe_deadline_sends_the_report_on_time() {
    let registry = HealthRegistry::new();
    registry.probe_deadline(Duration::from_millis(200));
    registry.register("stuck_db", CheckOptions::default(), || async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Health::up()
    });
    registry.register(
        "stuck_cache",
        CheckOptions::default().critical(false),
        || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Health::up()
        },
    );
    registry.register("quick", CheckOptions::default(), || async { Health::up() });
    for cached in [false, true] {
        if cached {
            registry.cache_results_for(Duration::from_secs(60));
        }
        let started = Instant::now();
        let report = registry.check(None).await;
        assert!(started.elapsed() < Duration::from_secs(2), "on time");
        let status = |name: &str| report.component(name).unwrap().health().status();
        assert_eq!(status("stuck_db"), Status::Down);
        assert_eq!(status("stuck_cache"), Status::Degraded);
        assert_eq!(status("quick"), Status::Up);
        assert_eq!(report.status(), Status::Down);
        assert_eq!(report.http_status(), 503);
        assert_eq!(
            report.component("stuck_db").unwrap().health().details()["error"],
            "still running at the probe deadline (200ms)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_sync_check_holds_one_thread_not_one_per_probe() {
    for _ in 0..5 {
        let report = global().check(Some(Group::Liveness)).await;
        let hung = report.component("hangs_while_told").unwrap();
        assert_eq!(hung.health().status(), Status::Down);
    }
    assert_eq!(HANG_STARTS.load(Ordering::SeqCst), 1, "one run, reused");
    // The run still going ends UP, and its result answers the probe that
    // waits on it: the probe joins the run first, then the check is let go
    // (well within its 100 ms timeout).
    let waiting = tokio::spawn(async { global().check(Some(Group::Liveness)).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    HANG.store(false, Ordering::SeqCst);
    let report = waiting.await.unwrap();
    assert_eq!(
        report
            .component("hangs_while_told")
            .unwrap()
            .health()
            .status(),
        Status::Up
    );
    // Once it has ended, the next probe starts a fresh run.
    assert_eq!(HANG_STARTS.load(Ordering::SeqCst), 1);
    let report = global().check(Some(Group::Liveness)).await;
    assert_eq!(
        report
            .component("hangs_while_told")
            .unwrap()
            .health()
            .status(),
        Status::Up
    );
    assert_eq!(HANG_STARTS.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn details_are_hidden_on_an_application_port_and_shown_on_the_admin_port() {
    let health = leak(HealthRegistry::new());
    health.register("db", CheckOptions::default(), || async {
        Health::up().with_detail("host", "db.internal:5432")
    });
    let registry = leak(Registry::new());
    let app = Admin::with_registries(registry, health)
        .mount(Server::new().metrics_registry(registry))
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    let r = raw::get(app.local_addr(), "/health", &[]).await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("db.internal"), "{}", r.body);

    let authorized = leak(HealthRegistry::new());
    authorized.register("db", CheckOptions::default(), || async {
        Health::up().with_detail("host", "db.internal:5432")
    });
    let registry = leak(Registry::new());
    let guarded = Admin::with_registries(registry, authorized)
        .show_details(ShowDetails::WhenAuthorized("t0ken".into()))
        .mount(Server::new().metrics_registry(registry))
        .unwrap()
        .bind("127.0.0.1:0")
        .await
        .unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let header = format!("Authorization: {scheme} t0ken");
        let r = raw::get(guarded.local_addr(), "/health", &[&header]).await;
        assert!(r.body.contains("db.internal"), "{scheme}: {}", r.body);
    }

    let admin = cortex::http::serve("127.0.0.1:0").await.unwrap();
    let r = raw::get(admin.local_addr(), "/health", &[]).await;
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        json["components"]["memory"].get("details").is_some(),
        "the separate admin port shows details: {}",
        r.body
    );
}
