//! Health checks: a registry of checks, run in parallel under timeouts, and
//! an Actuator-style JSON report.
//!
//! Checks come from three places: `#[cortex::health_check]` functions
//! (registered at link time), the default [memory](checks::memory) and
//! [uptime](checks::uptime) checks, and [`HealthRegistry::register`].
//!
//! ```
//! use cortex::health::{CheckOptions, Health, HealthRegistry, Status};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let registry = HealthRegistry::new();
//! registry.register("db", CheckOptions::default(), || async {
//!     Health::up().with_detail("connections", 4)
//! });
//! registry.register("cache", CheckOptions::default().critical(false), || async {
//!     Health::down().with_detail("error", "connection refused")
//! });
//! let report = registry.check(None).await;
//! // A failing non-critical check degrades the service; it does not take it down.
//! assert_eq!(report.status(), Status::Degraded);
//! assert_eq!(report.http_status(), 200);
//! # });
//! ```

pub mod checks;
mod details;
pub(crate) use details::bearer_matches;
mod registry;
mod run;

use std::fmt;
use std::time::Duration;

pub use registry::{
    global, CheckOptions, Component, HealthCheck, HealthRegistry, Report, ShowDetails,
    DEFAULT_PROBE_DEADLINE,
};

/// The status of a check, or of the whole service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Not known yet (a check reports it before its first real result).
    /// It never makes the overall status worse.
    Unknown,
    /// Working.
    Up,
    /// Working, but impaired (or a non-critical check is failing).
    Degraded,
    /// Working, but taken out of service on purpose: a server that is
    /// shutting down reports it on readiness (Actuator's `OUT_OF_SERVICE`).
    OutOfService,
    /// Not working.
    Down,
}

impl Status {
    /// The name in the JSON report: `UP`, `DEGRADED`, `OUT_OF_SERVICE`,
    /// `DOWN`, `UNKNOWN`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "UNKNOWN",
            Status::Up => "UP",
            Status::Degraded => "DEGRADED",
            Status::OutOfService => "OUT_OF_SERVICE",
            Status::Down => "DOWN",
        }
    }

    /// The HTTP status for a report with this overall status: 503 for
    /// `DOWN` and `OUT_OF_SERVICE`, 200 otherwise.
    pub const fn http_status(self) -> u16 {
        match self {
            Status::Down | Status::OutOfService => 503,
            _ => 200,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one check found: a status and optional details.
///
/// ```
/// use cortex::health::{Health, Status};
///
/// let h = Health::degraded().with_detail("lag_seconds", 12.5);
/// assert_eq!(h.status(), Status::Degraded);
/// assert_eq!(h.details()["lag_seconds"], 12.5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    status: Status,
    details: serde_json::Map<String, serde_json::Value>,
}

impl Health {
    /// A result with this status and no details.
    pub fn new(status: Status) -> Self {
        Health {
            status,
            details: serde_json::Map::new(),
        }
    }

    /// `UP`.
    pub fn up() -> Self {
        Self::new(Status::Up)
    }

    /// `DEGRADED`.
    pub fn degraded() -> Self {
        Self::new(Status::Degraded)
    }

    /// `DOWN`.
    pub fn down() -> Self {
        Self::new(Status::Down)
    }

    /// `OUT_OF_SERVICE`.
    pub fn out_of_service() -> Self {
        Self::new(Status::OutOfService)
    }

    /// `UNKNOWN`.
    pub fn unknown() -> Self {
        Self::new(Status::Unknown)
    }

    /// Adds a detail shown (when details are shown) under the check.
    pub fn with_detail(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The details.
    pub fn details(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.details
    }
}

/// What a health check function may return: [`Health`], `bool` (`true` is
/// UP), or `Result<(), E: Display>` (`Err` is DOWN with the message as the
/// `error` detail).
pub trait IntoHealth {
    /// Converts the value.
    fn into_health(self) -> Health;
}

impl IntoHealth for Health {
    fn into_health(self) -> Health {
        self
    }
}

impl IntoHealth for bool {
    fn into_health(self) -> Health {
        if self {
            Health::up()
        } else {
            Health::down()
        }
    }
}

impl<E: fmt::Display> IntoHealth for Result<(), E> {
    fn into_health(self) -> Health {
        match self {
            Ok(()) => Health::up(),
            Err(e) => Health::down().with_detail("error", e.to_string()),
        }
    }
}

/// Which probe a check answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// `/health/live`: is the process alive (restart it if not)?
    Liveness,
    /// `/health/ready`: can it take traffic now?
    Readiness,
    /// Both probes.
    Both,
}

impl Group {
    /// Whether a check in this group answers the probe `probe`.
    pub fn includes(self, probe: Group) -> bool {
        self == Group::Both || probe == Group::Both || self == probe
    }

    /// The name used in configuration: `liveness`, `readiness`, `both`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Group::Liveness => "liveness",
            Group::Readiness => "readiness",
            Group::Both => "both",
        }
    }
}

/// The default time a check may take before it reports DOWN.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
