//! The default checks: resident memory against a limit, and uptime.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Health;

/// Above this share of the limit, the memory check reports DEGRADED.
pub const MEMORY_DEGRADED_RATIO: f64 = 0.9;

/// Resident memory of this process, from `/proc/self/statm`, in bytes.
/// `None` where `/proc` is not available.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// The memory limit of this process' cgroup (v2 `memory.max`, else v1
/// `memory.limit_in_bytes`), if one is set.
pub fn cgroup_limit_bytes() -> Option<u64> {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok();
    let v1 = || std::fs::read_to_string("/sys/fs/cgroup/memory/memory.limit_in_bytes").ok();
    let text = v2.or_else(v1)?;
    let limit: u64 = text.trim().parse().ok()?; // "max" means no limit
                                                // cgroup v1 reports "no limit" as a huge page-aligned number.
    (limit < (1 << 60)).then_some(limit)
}

/// The memory check: UP below 90 % of `limit` (or of the cgroup limit when
/// `limit` is `None`), DEGRADED above; UP with no ratio when no limit is
/// known. Details: `resident_bytes`, `limit_bytes`, `ratio`.
///
/// ```
/// let h = cortex::health::checks::memory(Some(u64::MAX));
/// assert_eq!(h.status(), cortex::health::Status::Up);
/// let h = cortex::health::checks::memory(Some(1));
/// assert_eq!(h.status(), cortex::health::Status::Degraded);
/// ```
pub fn memory(limit: Option<u64>) -> Health {
    let Some(resident) = resident_bytes() else {
        return Health::unknown().with_detail("error", "/proc/self/statm is not readable");
    };
    let limit = limit.or_else(cgroup_limit_bytes);
    let health = match limit {
        Some(limit) if limit > 0 => {
            let ratio = resident as f64 / limit as f64;
            let h = if ratio > MEMORY_DEGRADED_RATIO {
                Health::degraded()
            } else {
                Health::up()
            };
            h.with_detail("limit_bytes", limit)
                .with_detail("ratio", (ratio * 1000.0).round() / 1000.0)
        }
        _ => Health::up().with_detail("limit_bytes", serde_json::Value::Null),
    };
    health.with_detail("resident_bytes", resident)
}

/// When the process started, as this module first saw it.
pub(crate) fn started() -> (Instant, SystemTime) {
    use std::sync::OnceLock;
    static START: OnceLock<(Instant, SystemTime)> = OnceLock::new();
    *START.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// The uptime check: always UP, with `start_time_seconds` (Unix time) and
/// `uptime_seconds`.
pub fn uptime() -> Health {
    let (instant, wall) = started();
    let start = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    Health::up()
        .with_detail("start_time_seconds", start.as_secs())
        .with_detail("uptime_seconds", instant.elapsed().as_secs())
}
