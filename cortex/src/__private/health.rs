//! What `#[health_check]` expands to.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use linkme::distributed_slice;

use crate::health::{CheckOptions, Group, Health, HealthRegistry, IntoHealth};

/// A boxed, running health check.
pub type BoxedHealth = Pin<Box<dyn Future<Output = Health> + Send + 'static>>;

/// One `#[health_check]` function, gathered by the linker.
#[derive(Debug)]
pub struct HealthEntry {
    /// Check name.
    pub name: &'static str,
    /// Probe group.
    pub group: Group,
    /// Whether a failure takes the service down.
    pub critical: bool,
    /// Timeout in nanoseconds (checked at compile time).
    pub timeout_nanos: u64,
    /// Starts the check.
    pub run: fn() -> BoxedHealth,
    /// The function's name, module, file and line, to name it in errors.
    pub function: &'static str,
    /// See `function`.
    pub module: &'static str,
    /// See `function`.
    pub file: &'static str,
    /// See `function`.
    pub line: u32,
}

impl HealthEntry {
    fn location(&self) -> String {
        format!(
            "`{}::{}` ({}:{})",
            self.module, self.function, self.file, self.line
        )
    }
}

/// Every `#[health_check]` function of the program.
#[distributed_slice]
pub static HEALTH_CHECKS: [HealthEntry];

/// Adds every linked `#[health_check]` to `registry`. Two checks with one
/// name never replace each other: both are kept, each under its name
/// prefixed with its module (`billing::database`), and the clash is
/// reported, naming both functions, once the registry is built.
pub(crate) fn register_health_checks(registry: &HealthRegistry) {
    let mut entries: Vec<&'static HealthEntry> = HEALTH_CHECKS.iter().collect();
    entries.sort_by_key(|e| (e.file, e.line));
    for entry in &entries {
        let clash: Vec<&&HealthEntry> = entries.iter().filter(|e| e.name == entry.name).collect();
        let name = if clash.len() > 1 {
            if std::ptr::eq(*clash[0], *entry) {
                let all = clash
                    .iter()
                    .map(|e| e.location())
                    .collect::<Vec<_>>()
                    .join(" and ");
                super::registration::problem(
                    "cortex::health",
                    format!(
                        "{} health checks are named `{}`: {all}; each is kept under its module's name (`module::{}`). Give them distinct `name`s",
                        clash.len(),
                        entry.name,
                        entry.name
                    ),
                );
            }
            format!("{}::{}", entry.module, entry.name)
        } else {
            entry.name.to_owned()
        };
        let options = CheckOptions::default()
            .group(entry.group)
            .critical(entry.critical)
            .timeout(Duration::from_nanos(entry.timeout_nanos));
        registry.register_boxed(&name, options, entry.run);
    }
}

/// Converts what a check function returned.
pub fn to_health<T: IntoHealth>(value: T) -> Health {
    value.into_health()
}

/// Runs an async check function.
pub fn health_async<F>(future: F) -> BoxedHealth
where
    F: Future<Output = Health> + Send + 'static,
{
    Box::pin(future)
}

/// Runs a sync check function on the blocking pool, so it cannot stall the
/// async workers. While a run of the function is still going (it hangs past
/// its timeout, say), later probes wait for that run's result instead of
/// starting another thread: a hanging sync check holds one thread, never one
/// per probe. A panic in it reports DOWN with the message.
pub fn health_blocking<T>(check: fn() -> T) -> BoxedHealth
where
    T: IntoHealth + Send + 'static,
{
    Box::pin(async move {
        let mut result = blocking_run(check);
        let health = match result.wait_for(Option::is_some).await {
            Ok(health) => health.clone().unwrap_or_else(Health::unknown),
            Err(_) => Health::down().with_detail("error", "cancelled"),
        };
        health
    })
}

type BlockingResult = tokio::sync::watch::Receiver<Option<Health>>;

/// The run of `check` still going, or a new one on the blocking pool.
fn blocking_run<T>(check: fn() -> T) -> BlockingResult
where
    T: IntoHealth + Send + 'static,
{
    static RUNNING: std::sync::LazyLock<
        parking_lot::Mutex<std::collections::HashMap<usize, BlockingResult>>,
    > = std::sync::LazyLock::new(Default::default);
    let key = check as usize;
    let mut running = RUNNING.lock();
    if let Some(result) = running.get(&key) {
        if result.borrow().is_none() {
            return result.clone();
        }
    }
    let (tx, rx) = tokio::sync::watch::channel(None);
    running.insert(key, rx.clone());
    drop(running);
    tokio::task::spawn_blocking(move || {
        let health = match std::panic::catch_unwind(check) {
            Ok(value) => value.into_health(),
            Err(payload) => {
                let message = crate::util::panic_message(&payload);
                tracing::warn!(target: "cortex::health", %message, "health check panicked");
                Health::down().with_detail("error", format!("panicked: {message}"))
            }
        };
        let _ = tx.send(Some(health));
    });
    rx
}
