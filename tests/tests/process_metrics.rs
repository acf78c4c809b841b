//! The process series of the global registry move when the process does,
//! and `cortex::build_info!()` exports what is running.

use std::time::{Duration, Instant};

use cortex::metrics::{global, Format, Registry};
use cortex_tests::{promtool_check_metrics, value};

fn scrape() -> String {
    global().encode(Format::PrometheusText)
}

fn read(series: &str) -> f64 {
    let text = scrape();
    value(&text, series).unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
}

#[cfg(target_os = "linux")]
#[test]
fn cpu_time_grows_under_a_busy_loop() {
    let before = read("process_cpu_seconds_total");
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < Duration::from_millis(300) {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
    let after = read("process_cpu_seconds_total");
    // 300 ms of one busy core, counted in 10 ms ticks.
    assert!(
        after - before >= 0.2,
        "cpu seconds {before} -> {after} after a 300 ms busy loop"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn open_fds_grow_when_files_are_opened() {
    let before = read("process_open_fds");
    let files: Vec<std::fs::File> = (0..50)
        .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
        .collect();
    let during = read("process_open_fds");
    drop(files);
    // Other tests of this binary run at once and open files too: at least
    // the 50 opened here are seen.
    assert!(during - before >= 50.0, "open fds {before} -> {during}");
    let max = read("process_max_fds");
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    assert_eq!(max, limit.rlim_cur as f64);
}

#[cfg(target_os = "linux")]
#[test]
fn threads_memory_and_start_time() {
    let threads = read("process_threads");
    let tasks = std::fs::read_dir("/proc/self/task").unwrap().count() as f64;
    assert!(
        threads >= 1.0 && (threads - tasks).abs() <= 4.0,
        "{threads} vs {tasks}"
    );
    let release = std::sync::Arc::new(std::sync::Barrier::new(9));
    let parked: Vec<_> = (0..8)
        .map(|_| {
            let release = std::sync::Arc::clone(&release);
            std::thread::spawn(move || {
                release.wait();
            })
        })
        .collect();
    let more = read("process_threads");
    release.wait();
    for t in parked {
        t.join().unwrap();
    }
    // Other tests of this binary start and end threads meanwhile.
    assert!(more >= threads + 4.0, "threads {threads} -> {more}");

    let rss = read("process_resident_memory_bytes");
    let vsize = read("process_virtual_memory_bytes");
    assert!(
        rss > 1_000_000.0 && vsize >= rss,
        "rss {rss}, vsize {vsize}"
    );
    // Touch 64 MiB: resident memory follows.
    let block = vec![1u8; 64 << 20];
    let touched = read("process_resident_memory_bytes");
    assert!(
        touched - rss >= 60.0 * 1024.0 * 1024.0,
        "rss {rss} -> {touched}"
    );
    drop(std::hint::black_box(block));

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = read("process_start_time_seconds");
    // This test binary started a moment ago.
    assert!(
        start <= now && now - start < 600.0,
        "start {start}, now {now}"
    );
}

#[test]
fn process_series_pass_promtool_and_a_fresh_registry_has_none() {
    let text = scrape();
    for line in [
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_open_fds gauge",
        "# TYPE process_max_fds gauge",
        "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_start_time_seconds gauge",
        "# TYPE process_threads gauge",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    promtool_check_metrics(&text).assert_ok();
    let own = Registry::new();
    assert!(!own.encode(Format::PrometheusText).contains("process_"));
    own.register_process_metrics();
    own.register_process_metrics();
    let text = own.encode(Format::PrometheusText);
    assert_eq!(text.matches("# TYPE process_threads gauge").count(), 1);
}

#[test]
fn build_info_names_this_crate() {
    let info = cortex::build_info!();
    assert_eq!(info.service, "cortex-tests");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    let expected_commit = option_env!("CORTEX_BUILD_COMMIT")
        .or(option_env!("GIT_COMMIT"))
        .unwrap_or("unknown");
    assert_eq!(info.commit, expected_commit);
    let series = format!(
        "cortex_build_info{{commit=\"{expected_commit}\",rust_version=\"{}\",service=\"cortex-tests\",version=\"{}\"}}",
        cortex::metrics::RUST_VERSION,
        env!("CARGO_PKG_VERSION"),
    );
    assert_eq!(value(&scrape(), &series), Some(1.0));
    // The compiler's own version, as `rustc --version` prints it.
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .unwrap();
    let printed = String::from_utf8(rustc.stdout).unwrap();
    assert!(
        printed.starts_with(&format!("rustc {} ", cortex::metrics::RUST_VERSION)),
        "{printed}"
    );
    // Twice: still one series.
    cortex::build_info!();
    let text = scrape();
    assert_eq!(text.matches("cortex_build_info{").count(), 1, "{text}");
    let target = format!(
        "target_info{{service_name=\"cortex-tests\",service_version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &target), Some(1.0), "{text}");
    let om = global().encode(Format::OpenMetrics);
    assert!(om.contains("# TYPE target info\n"), "{om}");
    cortex_tests::openmetrics_parse(&om).assert_ok();
    promtool_check_metrics(&text).assert_ok();
}
