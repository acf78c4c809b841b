//! The health registry: checks by name, run in parallel under timeouts,
//! cached if asked, and reported as JSON.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::RwLock;

pub use super::details::ShowDetails;
use super::run::{run_cached, run_one, Limit};
use super::{checks, Group, Health, Status, DEFAULT_TIMEOUT};

type BoxedCheck = Pin<Box<dyn Future<Output = Health> + Send + 'static>>;
type RunFn = Arc<dyn Fn() -> BoxedCheck + Send + Sync>;

/// How a check is run and counted.
///
/// ```
/// use cortex::health::{CheckOptions, Group};
/// use std::time::Duration;
///
/// let options = CheckOptions::default()
///     .group(Group::Readiness)
///     .critical(false)
///     .timeout(Duration::from_millis(500));
/// assert!(!options.is_critical());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    group: Group,
    critical: bool,
    timeout: Duration,
}

impl Default for CheckOptions {
    /// The readiness probe only, critical, a 5 s timeout (the probe
    /// deadline, 800 ms by default, cuts it shorter).
    ///
    /// Readiness, not liveness: a check that fails because a dependency
    /// (a database, another service) is down should take the pod out of
    /// rotation, not make Kubernetes restart it, which would not bring the
    /// dependency back and would restart every pod at once. Put a check in
    /// [`Group::Liveness`] only when its failure means this process itself
    /// is broken and a restart would fix it.
    fn default() -> Self {
        CheckOptions {
            group: Group::Readiness,
            critical: true,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl CheckOptions {
    /// Which probe the check answers.
    pub fn group(mut self, group: Group) -> Self {
        self.group = group;
        self
    }

    /// Whether a failure takes the service DOWN (critical) or only makes it
    /// DEGRADED.
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// How long the check may run before it reports DOWN.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether the check is critical.
    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// The probe group.
    pub fn probe_group(&self) -> Group {
        self.group
    }

    /// The timeout.
    pub fn time_limit(&self) -> Duration {
        self.timeout
    }
}

pub(super) struct Check {
    pub(super) name: String,
    pub(super) options: CheckOptions,
    pub(super) run: RunFn,
    // Held while the check runs, so a probe storm runs it once and the other
    // probes read the cached result.
    pub(super) cache: tokio::sync::Mutex<Option<(Instant, Component)>>,
}

/// One check's result in a [`Report`].
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub(super) name: String,
    pub(super) health: Health,
    pub(super) critical: bool,
    pub(super) duration: Duration,
}

impl Component {
    /// The check's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it found.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Whether it is critical.
    pub fn is_critical(&self) -> bool {
        self.critical
    }

    /// How long it took.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// The result of running the checks: an overall status and one component
/// per check, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    status: Status,
    components: Vec<Component>,
}

impl Report {
    /// The overall status: the worst of the critical checks; a non-critical
    /// check that is DEGRADED or DOWN makes it at least DEGRADED. `UNKNOWN`
    /// results do not count. With no checks at all, UP.
    pub fn status(&self) -> Status {
        self.status
    }

    /// 503 when DOWN, else 200.
    pub fn http_status(&self) -> u16 {
        self.status.http_status()
    }

    /// The components, sorted by name.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The component with this name.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The report as Actuator-style JSON:
    /// `{"status":"UP","components":{"db":{"status":"UP","details":{..},"durationMs":1.25}}}`.
    /// Without `details`, each component shows its status and duration only.
    pub fn to_json(&self, details: bool) -> String {
        // Written directly (no intermediate JSON tree): this runs on every probe.
        let mut out = String::with_capacity(64 + 96 * self.components.len());
        out.push_str("{\"status\":\"");
        out.push_str(self.status.as_str());
        out.push_str("\",\"components\":{");
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_string(&mut out, &c.name);
            out.push_str(":{\"status\":\"");
            out.push_str(c.health.status().as_str());
            out.push('"');
            if details && !c.health.details().is_empty() {
                out.push_str(",\"details\":");
                // A map of JSON values always serialises.
                if let Ok(text) = serde_json::to_string(c.health.details()) {
                    out.push_str(&text);
                }
            }
            out.push_str(",\"durationMs\":");
            let ms = (c.duration.as_secs_f64() * 1e6).round() / 1e3;
            out.push_str(ryu::Buffer::new().format(ms));
            if !c.critical {
                out.push_str(",\"critical\":false");
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A health check as a type, for checks that hold state (a connection pool,
/// a client).
///
/// ```
/// use cortex::health::{CheckOptions, Health, HealthCheck, HealthRegistry};
///
/// struct Queue { depth: usize }
///
/// impl HealthCheck for Queue {
///     async fn check(&self) -> Health {
///         if self.depth < 1000 { Health::up() } else { Health::degraded() }
///             .with_detail("depth", self.depth)
///     }
/// }
///
/// let registry = HealthRegistry::new();
/// registry.register_check("queue", CheckOptions::default(), Queue { depth: 3 });
/// assert_eq!(registry.names(), ["queue"]);
/// ```
pub trait HealthCheck: Send + Sync + 'static {
    /// Runs the check.
    fn check(&self) -> impl Future<Output = Health> + Send;
}

/// A set of named health checks.
pub struct HealthRegistry {
    checks: RwLock<Vec<Arc<Check>>>,
    cache_for: RwLock<Duration>,
    probe_deadline: RwLock<Duration>,
    out_of_service: AtomicBool,
}

/// The default [`HealthRegistry::probe_deadline`]: below Kubernetes'
/// default probe timeout (1 s) with room for the network.
pub const DEFAULT_PROBE_DEADLINE: Duration = Duration::from_millis(800);

impl HealthRegistry {
    /// An empty registry (no default checks).
    pub fn new() -> Self {
        HealthRegistry {
            checks: RwLock::new(Vec::new()),
            cache_for: RwLock::new(Duration::ZERO),
            probe_deadline: RwLock::new(DEFAULT_PROBE_DEADLINE),
            out_of_service: AtomicBool::new(false),
        }
    }

    /// Takes the service out of (or back into) service: while out, the
    /// readiness probe and `/health` report `OUT_OF_SERVICE` (503) with a
    /// `readinessState` component saying so, whatever the checks find;
    /// liveness is not affected. A [`Server`](crate::http::Server) that
    /// begins to shut down does this first, so Kubernetes stops sending it
    /// traffic.
    ///
    /// ```
    /// use cortex::health::{Group, HealthRegistry, Status};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let registry = HealthRegistry::new();
    /// registry.set_out_of_service(true);
    /// let ready = registry.check(Some(Group::Readiness)).await;
    /// assert_eq!(ready.status(), Status::OutOfService);
    /// assert_eq!(ready.http_status(), 503);
    /// assert_eq!(registry.check(Some(Group::Liveness)).await.status(), Status::Up);
    /// # });
    /// ```
    pub fn set_out_of_service(&self, out: bool) {
        self.out_of_service.store(out, Ordering::Release);
    }

    /// Whether [`set_out_of_service`](Self::set_out_of_service) took the
    /// service out.
    pub fn is_out_of_service(&self) -> bool {
        self.out_of_service.load(Ordering::Acquire)
    }

    /// Adds a check, replacing any check with the same name.
    pub fn register<F, Fut>(&self, name: impl Into<String>, options: CheckOptions, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Health> + Send + 'static,
    {
        let run: RunFn = Arc::new(move || Box::pin(check()) as BoxedCheck);
        self.insert(name.into(), options, run);
    }

    /// Adds a [`HealthCheck`] value, replacing any check with the same name.
    pub fn register_check<C: HealthCheck>(
        &self,
        name: impl Into<String>,
        options: CheckOptions,
        check: C,
    ) {
        let check = Arc::new(check);
        let run: RunFn = Arc::new(move || {
            let check = Arc::clone(&check);
            Box::pin(async move { check.check().await }) as BoxedCheck
        });
        self.insert(name.into(), options, run);
    }

    pub(crate) fn register_boxed(
        &self,
        name: &str,
        options: CheckOptions,
        run: fn() -> BoxedCheck,
    ) {
        self.insert(name.into(), options, Arc::new(run));
    }

    fn insert(&self, name: String, options: CheckOptions, run: RunFn) {
        let mut checks = self.checks.write();
        checks.retain(|c| c.name != name);
        checks.push(Arc::new(Check {
            name,
            options,
            run,
            cache: tokio::sync::Mutex::new(None),
        }));
        checks.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The options of the check named `name`.
    pub fn check_options(&self, name: &str) -> Option<CheckOptions> {
        self.checks
            .read()
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.options)
    }

    /// Changes the options of the check named `name` (its cached result is
    /// dropped); returns whether it exists.
    pub fn set_check_options(&self, name: &str, options: CheckOptions) -> bool {
        let mut checks = self.checks.write();
        let Some(slot) = checks.iter_mut().find(|c| c.name == name) else {
            return false;
        };
        *slot = Arc::new(Check {
            name: slot.name.clone(),
            options,
            run: Arc::clone(&slot.run),
            cache: tokio::sync::Mutex::new(None),
        });
        true
    }

    /// How long results are kept ([`cache_results_for`](Self::cache_results_for)).
    pub fn cached_for(&self) -> Duration {
        *self.cache_for.read()
    }

    /// The deadline of a whole probe ([`probe_deadline`](Self::probe_deadline)).
    pub fn deadline(&self) -> Duration {
        *self.probe_deadline.read()
    }

    /// Removes a check; returns whether it existed.
    pub fn remove(&self, name: &str) -> bool {
        let mut checks = self.checks.write();
        let before = checks.len();
        checks.retain(|c| c.name != name);
        checks.len() != before
    }

    /// The check names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.checks.read().iter().map(|c| c.name.clone()).collect()
    }

    /// Keeps each check's result for `ttl` (zero, the default, runs checks
    /// on every request), so a probe storm does not hammer a database.
    pub fn cache_results_for(&self, ttl: Duration) {
        *self.cache_for.write() = ttl;
    }

    /// The most a whole probe may take (default 800 ms, below Kubernetes'
    /// default probe timeout of 1 s): a check still running then is
    /// reported DOWN if critical, DEGRADED if not (with the reason as its
    /// `error` detail), and the report is sent on time. A check's own
    /// [`timeout`](CheckOptions::timeout) applies when it is shorter.
    ///
    /// ```
    /// use cortex::health::{CheckOptions, Health, HealthRegistry, Status};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let registry = HealthRegistry::new();
    /// registry.probe_deadline(Duration::from_millis(50));
    /// registry.register("slow", CheckOptions::default().critical(false), || async {
    ///     tokio::time::sleep(Duration::from_secs(10)).await;
    ///     Health::up()
    /// });
    /// let report = registry.check(None).await; // after 50 ms
    /// assert_eq!(report.component("slow").unwrap().health().status(), Status::Degraded);
    /// assert_eq!(report.status(), Status::Degraded);
    /// # });
    /// ```
    pub fn probe_deadline(&self, deadline: Duration) {
        *self.probe_deadline.write() = deadline;
    }

    /// Runs the checks of one probe group (`None`: all) in parallel, each
    /// under its own timeout and the [probe deadline](Self::probe_deadline),
    /// and aggregates them. A check that times out or panics reports DOWN
    /// with the reason (DEGRADED if it is not critical and the probe deadline
    /// cut it); the others are not affected.
    ///
    /// Must be called inside a Tokio runtime.
    pub async fn check(&self, probe: Option<Group>) -> Report {
        let selected: Vec<Arc<Check>> = self
            .checks
            .read()
            .iter()
            .filter(|c| probe.is_none_or(|p| c.options.group.includes(p)))
            .cloned()
            .collect();
        let ttl = *self.cache_for.read();
        let deadline = *self.probe_deadline.read();
        let mut components = if ttl.is_zero() {
            // All checks run concurrently in this task, each under its own
            // timeout and panic guard.
            crate::util::join_all(
                selected
                    .iter()
                    .map(|c| run_one(c, Limit::of(c, deadline)))
                    .collect(),
            )
            .await
        } else {
            // Each run is a task of its own, so one the probe deadline cuts
            // still finishes and fills the cache for the next probe.
            crate::util::join_all(
                selected
                    .into_iter()
                    .map(|check| run_cached(check, ttl, deadline))
                    .collect(),
            )
            .await
        };
        let mut status = aggregate(&components);
        if probe != Some(Group::Liveness) && self.is_out_of_service() {
            status = status.max(Status::OutOfService);
            let at = components.partition_point(|c| c.name.as_str() < READINESS_STATE);
            components.insert(
                at,
                Component {
                    name: READINESS_STATE.to_owned(),
                    health: Health::out_of_service(),
                    critical: true,
                    duration: Duration::ZERO,
                },
            );
        }
        Report { status, components }
    }
}

/// The component that says the service was taken out of service
/// (Actuator's name for it).
const READINESS_STATE: &str = "readinessState";

impl Default for HealthRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("checks", &self.names())
            .field("cache_for", &*self.cache_for.read())
            .finish()
    }
}

fn aggregate(components: &[Component]) -> Status {
    let mut status = Status::Up;
    for c in components {
        let s = c.health.status();
        let effect = match (c.critical, s) {
            (_, Status::Unknown | Status::Up) => Status::Up,
            (true, s) => s,
            (false, _) => Status::Degraded,
        };
        status = status.max(effect);
    }
    status
}

/// The process-wide health registry that `/health` serves: every
/// `#[health_check]` function, plus the default `memory` check (readiness:
/// memory pressure takes the pod out of rotation, it is not a reason to
/// restart it) and `uptime` check (liveness, always UP: it shows the process
/// answers). Remove them with [`HealthRegistry::remove`].
pub fn global() -> &'static HealthRegistry {
    static GLOBAL: LazyLock<HealthRegistry> = LazyLock::new(|| {
        let registry = HealthRegistry::new();
        checks::started();
        registry.register(
            "memory",
            CheckOptions::default().group(Group::Readiness),
            || async { checks::memory(None) },
        );
        registry.register(
            "uptime",
            CheckOptions::default().group(Group::Liveness),
            || async { checks::uptime() },
        );
        crate::__private::register_health_checks(&registry);
        registry
    });
    let registry = &*GLOBAL;
    crate::__private::registration::report_problems();
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(status: Status, critical: bool) -> Component {
        Component {
            name: "x".into(),
            health: Health::new(status),
            critical,
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn aggregation() {
        use Status::*;
        assert_eq!(aggregate(&[]), Up);
        assert_eq!(
            aggregate(&[component(Up, true), component(Unknown, true)]),
            Up
        );
        assert_eq!(
            aggregate(&[component(Up, true), component(Down, false)]),
            Degraded
        );
        assert_eq!(aggregate(&[component(Degraded, true)]), Degraded);
        assert_eq!(
            aggregate(&[component(Down, true), component(Degraded, false)]),
            Down
        );
        assert_eq!(
            aggregate(&[component(OutOfService, true), component(Degraded, true)]),
            OutOfService
        );
        assert_eq!(aggregate(&[component(OutOfService, false)]), Degraded);
    }

    #[test]
    fn json_is_valid_for_any_name_and_details() {
        let report = Report {
            status: Status::Down,
            components: vec![Component {
                name: "odd \"name\"\n\u{1}\\".into(),
                health: Health::down().with_detail("error", "x\"y"),
                critical: false,
                duration: Duration::from_micros(1500),
            }],
        };
        for details in [true, false] {
            let parsed: serde_json::Value = serde_json::from_str(&report.to_json(details)).unwrap();
            let c = &parsed["components"]["odd \"name\"\n\u{1}\\"];
            assert_eq!(c["status"], "DOWN");
            assert_eq!(c["durationMs"], 1.5);
            assert_eq!(c["critical"], false);
            assert_eq!(c.get("details").is_some(), details);
        }
    }

    #[test]
    fn details_policy_and_debug_hides_token() {
        let p = ShowDetails::WhenAuthorized("t".into());
        assert!(p.allows(Some("Bearer t")));
        assert!(!p.allows(Some("Basic t")));
        assert_eq!(
            format!("{p:?}"),
            "WhenAuthorized(..)",
            "the token is never printed"
        );
        assert!(!ShowDetails::Never.allows(Some("Bearer t")));
    }
}
