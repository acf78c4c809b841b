//! The `process_*` series (see the metrics module's docs): client_golang's
//! names and meanings, read from `/proc/self` on Linux when a scrape
//! encodes them.

use std::sync::Arc;

use super::series::Derived;
use super::Registry;

/// What one reading of `/proc/self/stat` gives.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Stat {
    pub(crate) cpu_seconds: f64,
    pub(crate) threads: f64,
    pub(crate) virtual_bytes: f64,
    pub(crate) resident_bytes: f64,
    /// Clock ticks since boot at the process's start.
    pub(crate) start_ticks: f64,
}

/// Parses the text of `/proc/<pid>/stat` (proc(5)): the fields after the
/// command name, which is in parentheses and may itself hold `)` or spaces.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn parse_stat(text: &str, ticks_per_second: f64, page_bytes: f64) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // `fields[0]` is field 3 of proc(5) (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse::<f64>().ok() };
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_bytes,
    })
}

/// The `btime` line of `/proc/stat`: boot time, Unix seconds.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn parse_boot_time(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Stat;

    pub(super) fn ticks_per_second() -> f64 {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 {
            v as f64
        } else {
            100.0
        }
    }

    pub(super) fn page_bytes() -> f64 {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if v > 0 {
            v as f64
        } else {
            4096.0
        }
    }

    pub(super) fn stat() -> Option<Stat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        super::parse_stat(&text, ticks_per_second(), page_bytes())
    }

    pub(super) fn open_fds() -> Option<f64> {
        // The directory handle itself is one of the entries while it is
        // read; the Go client counts it too.
        Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
    }

    pub(super) fn max_fds() -> Option<f64> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid, writable rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        Some(limit.rlim_cur as f64)
    }

    pub(super) fn start_time() -> Option<f64> {
        let boot = super::parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(boot + stat()?.start_ticks / ticks_per_second())
    }
}

/// When the process started, Unix nanoseconds (on Linux from `/proc`,
/// elsewhere the first time this is asked): where cumulative values begin.
pub(crate) fn start_unix_nanos() -> u64 {
    static START: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        #[cfg(target_os = "linux")]
        if let Some(seconds) = linux::start_time() {
            return (seconds * 1e9) as u64;
        }
        crate::trace::now_unix_nanos()
    });
    *START
}

/// Adds the process series to `registry` (the global registry has them
/// from the start). Calling it again is harmless.
pub(crate) fn register(registry: &Registry) {
    let start = start_unix_nanos() as f64 / 1e9;
    #[cfg(target_os = "linux")]
    {
        let stat = |read: fn(&Stat) -> f64| -> Derived {
            Arc::new(move || linux::stat().as_ref().map_or(0.0, read))
        };
        counter(
            registry,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            stat(|s| s.cpu_seconds),
        );
        let gauges: [(&str, &str, Derived); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                stat(|s| s.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                stat(|s| s.virtual_bytes),
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                stat(|s| s.threads),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                Arc::new(|| linux::open_fds().unwrap_or(0.0)),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                Arc::new(|| linux::max_fds().unwrap_or(0.0)),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                Arc::new(move || start),
            ),
        ];
        for (name, help, read) in gauges {
            gauge(registry, name, help, read);
        }
    }
    #[cfg(not(target_os = "linux"))]
    gauge(
        registry,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        Arc::new(move || start),
    );
}

fn gauge(registry: &Registry, name: &str, help: &str, read: Derived) {
    if let Ok(family) = registry.gauge_family(name, help, &[]) {
        family.core().replace_derived(&[], read);
    }
}

#[cfg(target_os = "linux")]
fn counter(registry: &Registry, name: &str, help: &str, read: Derived) {
    if let Ok(family) = registry.counter_family(name, help, &[]) {
        family.core().replace_derived(&[], read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        // A command name with a space and a `)` in it.
        let text = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0";
        let stat = parse_stat(text, 100.0, 4096.0).unwrap();
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.0,
                threads: 7.0,
                virtual_bytes: 104_857_600.0,
                resident_bytes: 2560.0 * 4096.0,
                start_ticks: 123_456.0,
            }
        );
        assert_eq!(parse_stat("garbage", 100.0, 4096.0), None);
        assert_eq!(parse_stat("1 (x) S 1 2", 100.0, 4096.0), None);
    }

    #[test]
    fn boot_time() {
        let text = "cpu  1 2 3\nintr 5\nbtime 1764650000\nprocesses 9\n";
        assert_eq!(parse_boot_time(text), Some(1_764_650_000.0));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }
}
