//! Running one check: under its timeout and the probe deadline, with panics
//! contained, cached when asked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::registry::{Check, Component};
use super::{Health, Status};
use crate::util::{panic_message, CatchUnwind};

/// How long a check may run in one probe, and what cuts it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limit {
    after: Duration,
    /// The probe deadline, not the check's own timeout, is the shorter.
    by_probe: bool,
}

impl Limit {
    pub(super) fn of(check: &Check, probe_deadline: Duration) -> Self {
        let own = check.options.time_limit();
        Limit {
            after: own.min(probe_deadline),
            by_probe: probe_deadline < own,
        }
    }

    /// The result of a check this limit cut short.
    fn cut(self, check: &Check, started: Instant) -> Component {
        let limit = self.after;
        let health = if self.by_probe {
            tracing::warn!(target: "cortex::health", check = %check.name, ?limit, "health check still running at the probe deadline");
            let status = if check.options.is_critical() {
                Status::Down
            } else {
                Status::Degraded
            };
            Health::new(status).with_detail(
                "error",
                format!("still running at the probe deadline ({limit:?})"),
            )
        } else {
            tracing::warn!(target: "cortex::health", check = %check.name, ?limit, "health check timed out");
            Health::down().with_detail("error", format!("timed out after {limit:?}"))
        };
        Component {
            name: check.name.clone(),
            health,
            critical: check.options.is_critical(),
            duration: started.elapsed(),
        }
    }
}

/// Runs the check once, in this task.
pub(super) async fn run_one(check: &Check, limit: Limit) -> Component {
    let started = Instant::now();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (check.run)()));
    let outcome = match run {
        Ok(fut) => tokio::time::timeout(limit.after, CatchUnwind::new(fut)).await,
        Err(payload) => Ok(Err(payload)),
    };
    let health = match outcome {
        Ok(Ok(health)) => health,
        Ok(Err(payload)) => {
            let message = panic_message(&payload);
            tracing::warn!(target: "cortex::health", check = %check.name, %message, "health check panicked");
            Health::down().with_detail("error", format!("panicked: {message}"))
        }
        Err(_) => return limit.cut(check, started),
    };
    Component {
        name: check.name.clone(),
        health,
        critical: check.options.is_critical(),
        duration: started.elapsed(),
    }
}

/// Runs the check in a task of its own unless a result younger than `ttl`
/// is cached, and waits for it up to the probe deadline. A run the deadline
/// cuts carries on (up to the check's own timeout) and caches its result,
/// and probes that come meanwhile wait for that run instead of starting one.
pub(super) async fn run_cached(check: Arc<Check>, ttl: Duration, deadline: Duration) -> Component {
    let started = Instant::now();
    let own = Limit::of(&check, Duration::MAX);
    let probe = Limit::of(&check, deadline);
    let task = tokio::spawn({
        let check = Arc::clone(&check);
        async move {
            let mut cache = check.cache.lock().await;
            if let Some((at, component)) = &*cache {
                if at.elapsed() < ttl {
                    return component.clone();
                }
            }
            let component = run_one(&check, own).await;
            *cache = Some((Instant::now(), component.clone()));
            component
        }
    });
    match tokio::time::timeout(probe.after, task).await {
        Ok(Ok(component)) => component,
        // `run_one` contains panics; a join error means the runtime is
        // shutting down.
        Ok(Err(_)) => Component {
            name: check.name.clone(),
            health: Health::down().with_detail("error", "cancelled"),
            critical: check.options.is_critical(),
            duration: started.elapsed(),
        },
        Err(_) => probe.cut(&check, started),
    }
}
